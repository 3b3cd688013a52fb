"""Batch sources: where the training loop gets its data, deterministically by position.

A batch source answers ``get(step, micro, rank, world_size)`` with the same batch
every time for the same arguments. That is what makes resume exact (the loop
restarts at the saved step) and data-parallel training equal to one process with
the same global batch (each rank takes its shard of the same global batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate


@runtime_checkable
class BatchSource(Protocol):
    def get(self, step: int, micro: int, rank: int, world_size: int) -> Any:
        """The batch (CPU tensors) of optimizer ``step``, micro-batch ``micro``, for ``rank``."""
        ...


class DatasetBatches:
    """Shuffled global batches over a map-style Dataset, one permutation per epoch.

    ``batch_size`` is the global micro-batch size (all ranks together); each rank
    gets ``batch_size // world_size`` of it. The permutation of epoch ``e`` comes
    from ``numpy.random.default_rng([seed, e])``, so any position can be recomputed.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int = 0,
        *,
        accum_steps: int = 1,
        collate: Callable[[Sequence[Any]], Any] | None = None,
    ) -> None:
        n = len(dataset)  # type: ignore[arg-type]
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: expected a positive integer")
        if n < batch_size:
            raise ValueError(
                f"dataset has {n} items, fewer than batch_size={batch_size}; "
                "use a smaller batch or more data"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.accum_steps = accum_steps
        self.collate = collate or default_collate
        self.batches_per_epoch = n // batch_size
        self._perm_epoch = -1
        self._perm: np.ndarray | None = None

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._perm = rng.permutation(len(self.dataset))  # type: ignore[arg-type]
            self._perm_epoch = epoch
        assert self._perm is not None
        return self._perm

    def indices(self, step: int, micro: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
        if self.batch_size % world_size:
            raise ValueError(
                f"batch_size={self.batch_size} is not divisible by world_size={world_size}"
            )
        k = step * self.accum_steps + micro
        epoch, j = divmod(k, self.batches_per_epoch)
        idx = self._permutation(epoch)[j * self.batch_size : (j + 1) * self.batch_size]
        return idx[rank::world_size]

    def get(self, step: int, micro: int, rank: int, world_size: int) -> Any:
        idx = self.indices(step, micro, rank, world_size)
        return self.collate([self.dataset[int(i)] for i in idx])


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
