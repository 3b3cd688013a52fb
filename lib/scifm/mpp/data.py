"""Training windows from simulated trajectories, and MPP's balanced multi-system sampler.

McCabe et al. (arXiv:2310.02994), section 4: every micro-batch holds samples of one system
only (so the field embedding sees one set of columns), and the system of each micro-batch
is drawn uniformly at random, which balances systems of very different sizes.
Both classes are pure functions of their arguments (the batch of a step is recomputed, not
remembered), which is what the core loop's exact resume needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class WindowSet:
    """All (T-frame input, next frame) windows of a batch of trajectories of one system.

    ``fields`` is (N, F, C, H, W); window ``k`` starts at trajectory ``k // per_traj``,
    frame ``(k % per_traj) * stride``.
    """

    system: str  # system name (key into scifm.pde.SYSTEMS)
    fields: torch.Tensor  # (N, F, C, H, W) trajectories, float32
    field_index: tuple[int, ...]  # slot of each channel in the shared embedding
    periodic: bool  # both spatial axes periodic
    n_frames: int  # input window length T
    stride: int = 1  # frames between successive window starts

    def __post_init__(self) -> None:
        if self.fields.ndim != 5:
            raise ValueError(
                f"WindowSet {self.system}: fields {tuple(self.fields.shape)}; expected "
                "(N, F, C, H, W)"
            )
        if self.fields.shape[1] < self.n_frames + 1:
            raise ValueError(
                f"WindowSet {self.system}: trajectories have {self.fields.shape[1]} frames; "
                f"need at least n_frames + 1 = {self.n_frames + 1}"
            )
        if len(self.field_index) != self.fields.shape[2]:
            raise ValueError(
                f"WindowSet {self.system}: {len(self.field_index)} field indices for "
                f"{self.fields.shape[2]} channels"
            )

    @classmethod
    def from_trajectories(cls, traj, n_frames: int, stride: int = 1) -> WindowSet:
        """Build from a ``scifm.pde.Trajectories``."""
        spec = traj.spec
        return cls(
            traj.system,
            traj.fields.float().cpu(),
            spec.field_index,
            spec.periodic,
            n_frames,
            stride,
        )

    @property
    def per_traj(self) -> int:
        return (self.fields.shape[1] - self.n_frames - 1) // self.stride + 1

    def __len__(self) -> int:
        return self.fields.shape[0] * self.per_traj

    def batch(self, indices: Sequence[int] | np.ndarray) -> dict:
        """Collate windows into the dict the model's loss takes."""
        idx = np.asarray(indices, dtype=np.int64)
        traj, start = np.divmod(idx, self.per_traj)
        start = start * self.stride
        offs = np.arange(self.n_frames + 1)
        frames = self.fields[torch.as_tensor(traj)[:, None], torch.as_tensor(start[:, None] + offs)]
        return {
            "x": frames[:, :-1].contiguous(),  # (B, T, C, H, W)
            "y": frames[:, -1].contiguous(),  # (B, C, H, W)
            "field_index": torch.tensor(self.field_index),
            "periodic": torch.tensor(self.periodic),
        }


class BalancedBatches:
    """``get(step, micro, rank, world_size)``: a micro-batch of one uniformly chosen system.

    ``batch_size`` is global; each rank takes its slice of the same global batch, and every
    rank draws the same system (the draw depends only on ``seed, step, micro``).
    """

    def __init__(
        self, sets: Sequence[WindowSet], batch_size: int, seed: int = 0, *, accum_steps: int = 1
    ) -> None:
        if not sets:
            raise ValueError("BalancedBatches: expected at least one WindowSet")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: expected a positive integer")
        self.sets = list(sets)
        self.batch_size = batch_size
        self.seed = seed
        self.accum_steps = accum_steps

    def choose(self, step: int, micro: int) -> tuple[int, np.ndarray]:
        rng = np.random.default_rng([self.seed, step, micro])
        k = int(rng.integers(len(self.sets)))
        n = len(self.sets[k])
        return k, rng.choice(n, size=self.batch_size, replace=n < self.batch_size)

    def get(self, step: int, micro: int, rank: int = 0, world_size: int = 1) -> dict:
        if self.batch_size % world_size:
            raise ValueError(f"batch_size={self.batch_size} not divisible by {world_size}")
        k, idx = self.choose(step, micro)
        return self.sets[k].batch(idx[rank::world_size])
