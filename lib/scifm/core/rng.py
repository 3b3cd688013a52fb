"""One seeding policy: local generators, forked global state, and keyed draws.

No library function touches the global RNGs of torch or numpy. Randomness comes from

* local generators (``torch_generator``, ``numpy_rng``) that data code receives;
* ``seeded(seed)``: where an API gives no choice (``nn.Module`` weight init, ``nn.Dropout``)
  the global torch state is forked, seeded, used and restored, so the caller's stream is
  unchanged and the result is a function of ``seed``;
* keyed draws (``sample_keys`` + ``keyed_uniform``): a random choice made for one sample of a
  training batch (DropPath, augmentations) is a hash of ``(seed, step, global position of the
  sample, draw number)``. It does not depend on which rank holds the sample or on how the
  global batch is split, so two data-parallel ranks draw different masks and a 2-process run
  equals one process with the same global batch; resume needs no saved state.

Global positions: in micro-batch ``micro`` of a step whose global micro-batch has ``G``
samples split over ``W`` ranks, sample ``i`` of rank ``r`` sits at ``micro * G + i * W + r``
(rank ``r`` holds positions ``r, r + W, ...``, the ``idx[rank::world_size]`` sharding that
every batch source in ``core/batches.py`` uses).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = [
    "BatchRandom", "SampleRandom", "batch_positions", "batch_random", "derive_seed", "drop_path",
    "keyed_uniform", "numpy_rng", "reseed", "sample_generators", "sample_keys", "seeded",
    "torch_generator",
]  # fmt: skip

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_U64 = (1 << 64) - 1


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh torch generator seeded with ``seed`` (local: global RNG untouched)."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed))
    return g


def numpy_rng(seed: int | np.random.SeedSequence | list[int]) -> np.random.Generator:
    """A fresh numpy ``Generator``; a list seeds a ``SeedSequence`` (e.g. ``[seed, object_id]``)."""
    return np.random.default_rng(seed)


def derive_seed(*keys: int) -> int:
    """A 63-bit seed that is a well-mixed function of the integer ``keys``."""
    state = np.random.SeedSequence([int(k) & _U64 for k in keys]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def _fork_devices(device: torch.device | None) -> tuple[list[int], str | None]:
    if device is not None and device.type == "cuda":
        return [device.index if device.index is not None else torch.cuda.current_device()], "cuda"
    return [], None


def reseed(seed: int, device: torch.device | None = None) -> None:
    """Seed the global CPU stream (and ``device``'s, if CUDA); only inside ``seeded``."""
    torch.default_generator.manual_seed(int(seed) & _U64)
    if device is not None and device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(int(seed) & _U64)


@contextlib.contextmanager
def seeded(seed: int, device: str | torch.device | None = None) -> Iterator[None]:
    """Run the block on a forked global torch state seeded with ``seed``; restore it after.

    For the APIs that only draw from the global stream (module initialisation,
    ``nn.Dropout``). ``device``: a CUDA device's stream is forked and seeded too (other
    devices are left alone; on MPS only the CPU stream is forked).
    """
    dev = torch.device(device) if device is not None else None
    devices, device_type = _fork_devices(dev)
    kwargs = {"device_type": device_type} if device_type else {}
    with torch.random.fork_rng(devices=devices, **kwargs):
        reseed(seed, dev)  # inside the fork: the caller's state comes back on exit
        yield


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wraps mod 2**64 by numpy's definition)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _words(w: np.ndarray | int) -> np.ndarray:
    if isinstance(w, np.ndarray):
        return np.atleast_1d(w.astype(np.int64).astype(np.uint64))
    return np.full(1, int(w) & _U64, dtype=np.uint64)


def _hash(*words: np.ndarray | int) -> np.ndarray:
    """A uint64 per element of the broadcast ``words`` (arrays wrap, never warn)."""
    h = np.full(1, _GOLDEN, dtype=np.uint64)
    for w in words:
        h = _mix(h ^ (_words(w) + _GOLDEN))
    return h


def batch_positions(n: int, micro: int, rank: int, world_size: int) -> np.ndarray:
    """Global positions of the ``n`` samples rank ``rank`` holds in micro-batch ``micro``."""
    return micro * n * world_size + np.arange(n, dtype=np.int64) * world_size + rank


@dataclass
class _Keys:
    seed: int
    step: int
    positions: np.ndarray  # (n,) global positions of this rank's samples
    draws: int = field(default=0)  # keyed draws made so far in this batch (the stream number)


_KEYS: contextvars.ContextVar[_Keys | None] = contextvars.ContextVar("scifm_keys", default=None)


@contextlib.contextmanager
def sample_keys(seed: int, step: int, positions: Sequence[int] | np.ndarray) -> Iterator[None]:
    """Key the random draws of the model's forward and backward on this batch.

    Inside the block every ``keyed_uniform`` call is the next stream of ``(seed, step)``
    for the samples at ``positions`` (see ``batch_positions``). The training loop opens
    one block per micro-batch.
    """
    token = _KEYS.set(_Keys(int(seed), int(step), np.asarray(positions, dtype=np.int64)))
    try:
        yield
    finally:
        _KEYS.reset(token)


def keyed_uniform(n: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """``n`` uniforms in [0, 1) for rows of a batch, keyed by sample (float32, on ``device``).

    ``n`` is the batch size times ``k`` (rows in sample-major order, e.g. ``(b t)``):
    row ``j`` belongs to sample ``j // k``. Outside ``sample_keys`` (a model run in training
    mode outside ``train``) the draw comes from the global torch stream, as ``nn.Dropout``'s
    (inside ``train`` that stream is the forked one, reseeded per micro-batch).
    Each call is the next stream (draw number), so activation checkpointing, which
    runs a forward twice, would need the draw number reset for its recomputation.
    """
    keys = _KEYS.get()
    if keys is None or len(keys.positions) == 0:  # no keys, or a batch without tensors
        return torch.rand(n, device=device)
    b = len(keys.positions)
    if n % b:
        raise ValueError(
            f"keyed_uniform: {n} rows for a batch of {b} samples; expected a multiple of {b}"
        )
    k = n // b
    stream = keys.draws
    keys.draws += 1
    pos = np.repeat(keys.positions, k)
    sub = np.tile(np.arange(k, dtype=np.int64), b)
    bits = _hash(keys.seed, keys.step, stream, pos, sub) >> np.uint64(40)  # 24 bits: exact fp32
    u = bits.astype(np.float32) * np.float32(2.0**-24)
    return torch.from_numpy(u).to(device)


def sample_generators(seed: int, step: int, positions: Sequence[int] | np.ndarray) -> list:
    """One torch generator per sample, seeded from ``(seed, step, global position)``.

    For augmentations made in the data pipeline: drawing each sample's choices from its
    own generator keeps them independent of the rank and of the batch split.
    """
    return [torch_generator(derive_seed(seed, step, int(p))) for p in positions]


class BatchRandom:
    """Batch-shaped draws (leading size = batch) from one generator, or the global stream
    when ``generator`` is None: ``rand``, ``randn``, ``randint`` as torch's."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator)

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.generator)

    def randint(self, low: int, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randint(low, high, shape, generator=self.generator)


class SampleRandom(BatchRandom):
    """Batch-shaped draws whose row ``i`` comes from sample ``i``'s own generator.

    ``SampleRandom.keyed(seed, step, positions)`` keys them by global sample position
    (``sample_generators``), so a sample's augmentation is the same whichever rank or
    micro-batch holds it.
    """

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        super().__init__(None)
        self.generators = list(generators)

    @classmethod
    def keyed(cls, seed: int, step: int, positions: Sequence[int] | np.ndarray) -> SampleRandom:
        return cls(sample_generators(seed, step, positions))

    def _rows(self, shape: tuple[int, ...], draw: Callable[[torch.Generator], torch.Tensor]):
        if not shape or shape[0] != len(self.generators):
            raise ValueError(
                f"SampleRandom: shape {shape} for {len(self.generators)} samples; "
                "the leading size must be the number of samples"
            )
        return torch.stack([draw(g) for g in self.generators])

    def rand(self, *shape: int) -> torch.Tensor:
        return self._rows(shape, lambda g: torch.rand(shape[1:], generator=g))

    def randn(self, *shape: int) -> torch.Tensor:
        return self._rows(shape, lambda g: torch.randn(shape[1:], generator=g))

    def randint(self, low: int, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        return self._rows(shape, lambda g: torch.randint(low, high, shape[1:], generator=g))


def batch_random(generator: torch.Generator | BatchRandom | None) -> BatchRandom:
    """What draws a batch's random choices: a ``BatchRandom``/``SampleRandom`` as given,
    else one wrapping the single ``generator`` (None: the global stream)."""
    return generator if isinstance(generator, BatchRandom) else BatchRandom(generator)


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero the rows of ``x`` (B*k, ...) with probability ``p``, keyed.

    Kept rows are scaled by ``1 / (1 - p)``. The mask comes from ``keyed_uniform``, so
    in ``train`` it depends on (seed, step, sample), not on the rank.
    """
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    u = keyed_uniform(x.shape[0], x.device)
    mask = (u < keep).to(x.dtype).view((x.shape[0],) + (1,) * (x.ndim - 1))
    return x * mask / keep
