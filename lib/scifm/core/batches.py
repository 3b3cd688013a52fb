"""Batch sources: where the training loop gets its data, deterministically by position.

A batch source answers ``get(step, micro, rank, world_size)`` with the same batch
every time for the same arguments. That is what makes resume exact (the loop
restarts at the saved step) and data-parallel training equal to one process with
the same global batch (each rank takes its shard of the same global batch).

One family:

- ``DatasetBatches``: shuffled batches of a map-style Dataset (in memory or lazily
  read from files), WITHOUT replacement: epoch ``e`` is one permutation, drawn
  from ``(seed, e)``, cut into ``len // batch_size`` batches (the remainder of a
  permutation is skipped that epoch, a different remainder each epoch).
- ``MixtureBatches``: one source per micro-batch, drawn uniformly from
  ``(seed, position)`` (MPP: one physical system per micro-batch). Each source
  keeps its own epochs: its k-th draw takes its k-th batch, so every source is
  still sampled without replacement, whatever the mixture draws around it.
- ``iter_batches``: a torch DataLoader over the positions (step, micro) of a run,
  so worker processes assemble (and pin) upcoming batches while the model trains;
  each batch is still the source's pure function of its position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from scifm.core.devices import torch_generator
from scifm.core.rng import SampleRandom, batch_positions

MakeFn = Callable[[np.ndarray, torch.Generator], Any]


@runtime_checkable
class BatchSource(Protocol):
    def get(self, step: int, micro: int, rank: int, world_size: int) -> Any:
        """The batch (CPU tensors) of optimizer ``step``, micro-batch ``micro``, for ``rank``."""
        ...


def _check_world(batch_size: int, world_size: int) -> None:
    if batch_size % world_size:
        raise ValueError(
            f"batch_size={batch_size} is not divisible by world_size={world_size}; "
            "use a global batch that splits evenly over the ranks"
        )


class DatasetBatches:
    """Shuffled global batches over a map-style Dataset, one permutation per epoch.

    ``batch_size`` is the global micro-batch size (all ranks together); each rank
    gets items ``rank::world_size`` of it. The permutation of epoch ``e`` comes
    from ``numpy.random.default_rng([seed, e])``, so any position can be recomputed.
    Items are stacked by ``collate`` (default: torch's ``default_collate``); or, with
    ``make``, the batch is ``make(indices, rand)`` where ``rand`` is a
    ``core.rng.SampleRandom``: row ``i`` of its draws comes from sample ``i``'s own
    generator keyed by ``(seed, step, global position)``, so a 2-rank run draws the same
    augmentations as one process with the same global batch.
    """

    def __init__(
        self,
        dataset: Dataset | Sequence[Any],
        batch_size: int,
        seed: int = 0,
        *,
        accum_steps: int = 1,
        collate: Callable[[Sequence[Any]], Any] | None = None,
        make: MakeFn | None = None,
    ) -> None:
        n = len(dataset)  # type: ignore[arg-type]
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: expected a positive integer")
        if accum_steps < 1:
            raise ValueError(f"accum_steps={accum_steps}: expected a positive integer")
        if n < batch_size:
            raise ValueError(
                f"dataset has {n} items, fewer than batch_size={batch_size}; "
                "use a smaller batch or more data"
            )
        if collate is not None and make is not None:
            raise ValueError("DatasetBatches: give collate or make, not both")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.accum_steps = accum_steps
        self.collate = collate or default_collate
        self.make = make
        self.batches_per_epoch = n // batch_size
        self._perm_epoch = -1
        self._perm: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._perm = rng.permutation(len(self))
            self._perm_epoch = epoch
        assert self._perm is not None
        return self._perm

    def indices_at(self, position: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
        """Dataset indices of the ``position``-th global batch, this rank's share."""
        _check_world(self.batch_size, world_size)
        epoch, j = divmod(position, self.batches_per_epoch)
        idx = self._permutation(epoch)[j * self.batch_size : (j + 1) * self.batch_size]
        return idx[rank::world_size]

    def indices(self, step: int, micro: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
        return self.indices_at(step * self.accum_steps + micro, rank, world_size)

    def batch_at(self, position: int, rank: int = 0, world_size: int = 1) -> Any:
        idx = self.indices_at(position, rank, world_size)
        if self.make is not None:
            # one generator per sample, keyed by its global position: a sample's
            # augmentation is the same whichever rank or micro-batch holds it
            step, micro = divmod(position, self.accum_steps)
            positions = batch_positions(len(idx), micro, rank, world_size)
            return self.make(idx, SampleRandom.keyed(self.seed, step, positions))
        return self.collate([self.dataset[int(i)] for i in idx])

    def get(self, step: int, micro: int, rank: int = 0, world_size: int = 1) -> Any:
        return self.batch_at(step * self.accum_steps + micro, rank, world_size)


class MixtureBatches:
    """One source per micro-batch, drawn uniformly; each source walks its own epochs.

    Draw ``q`` (global position ``step * accum_steps + micro``) picks source ``k``
    from ``default_rng([seed, q // BLOCK])``; the batch is source ``k``'s batch number
    ``c``, where ``c`` counts the earlier draws of ``k``. Counting uses per-block
    tallies, so resuming at step 200k costs a few hundred small draws, not a replay.
    Every rank draws the same source and takes its shard of the same global batch.
    """

    BLOCK = 4096  # draws per random block

    def __init__(
        self,
        sources: Mapping[str, DatasetBatches] | Sequence[DatasetBatches],
        seed: int = 0,
        *,
        accum_steps: int = 1,
    ) -> None:
        if isinstance(sources, Mapping):
            self.names = [str(k) for k in sources]
            self.sources = list(sources.values())
        else:
            self.sources = list(sources)
            self.names = [str(i) for i in range(len(self.sources))]
        if not self.sources:
            raise ValueError("MixtureBatches: expected at least one source")
        if accum_steps < 1:
            raise ValueError(f"accum_steps={accum_steps}: expected a positive integer")
        self.seed = seed
        self.accum_steps = accum_steps
        self._tally: list[np.ndarray] = [np.zeros(len(self.sources), dtype=np.int64)]
        self._block: tuple[int, np.ndarray] | None = None

    def _draws(self, block: int) -> np.ndarray:
        if self._block is None or self._block[0] != block:
            rng = np.random.default_rng([self.seed, block])
            self._block = (block, rng.integers(len(self.sources), size=self.BLOCK))
        return self._block[1]

    def choice(self, position: int) -> tuple[int, int]:
        """(source index, that source's batch number) of global draw ``position``."""
        block, j = divmod(position, self.BLOCK)
        while len(self._tally) <= block:  # tally[b] = draws per source before block b
            b = len(self._tally) - 1
            counts = np.bincount(self._draws(b), minlength=len(self.sources))
            self._tally.append(self._tally[b] + counts)
        draws = self._draws(block)
        k = int(draws[j])
        return k, int(self._tally[block][k] + np.count_nonzero(draws[:j] == k))

    def get(self, step: int, micro: int, rank: int = 0, world_size: int = 1) -> Any:
        k, c = self.choice(step * self.accum_steps + micro)
        return self.sources[k].batch_at(c, rank, world_size)


class _Positions(Dataset):
    """Item ``i`` = the batch of the ``i``-th (step, micro) from ``start`` on."""

    def __init__(
        self, source: BatchSource, start: int, stop: int, accum: int, rank: int, world: int
    ) -> None:
        self.source, self.start, self.stop = source, start, stop
        self.accum, self.rank, self.world = accum, rank, world

    def __len__(self) -> int:
        return (self.stop - self.start) * self.accum

    def __getitem__(self, i: int) -> Any:
        step, micro = divmod(i, self.accum)
        return self.source.get(self.start + step, micro, self.rank, self.world)


def iter_batches(
    source: BatchSource,
    *,
    start: int,
    stop: int,
    accum_steps: int = 1,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    prefetch: int = 2,
    pin_memory: bool = False,
) -> Iterator[Any]:
    """Batches of steps ``start..stop-1`` (each with ``accum_steps`` micro-batches), in order.

    A torch DataLoader without auto-batching: ``num_workers`` processes each build
    whole batches (``prefetch`` each ahead), delivered in position order, so the
    result equals calling ``source.get`` in a loop. Its base seed comes from a local
    generator, so creating it leaves the global torch RNG (dropout, resume) untouched.
    Workers are forked copies of ``source``: a source must not rely on state the
    main process changes later (file handles are opened per process, see scifm.pde).
    """
    if num_workers < 0 or prefetch < 1:
        raise ValueError(f"num_workers={num_workers}, prefetch={prefetch}: expected >= 0, >= 1")
    positions = _Positions(source, start, stop, accum_steps, rank, world_size)
    loader = DataLoader(
        positions,
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        prefetch_factor=prefetch if num_workers else None,
        pin_memory=pin_memory,
        persistent_workers=False,
        generator=torch_generator(0),
    )
    return iter(loader)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor inside nested dicts/lists/tuples to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def batch_len(batch: Any) -> int:
    """Number of samples in a batch: the leading size of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, dict):
        for v in batch.values():
            n = batch_len(v)
            if n:
                return n
    if isinstance(batch, list | tuple):
        for v in batch:
            n = batch_len(v)
            if n:
                return n
    return 0
