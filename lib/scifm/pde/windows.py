"""Training windows for MPP: (T context frames, next frame) from any system or file.

``TrajectoryWindows`` is a map-style torch Dataset over in-memory trajectories
(N, T, C, X, Y); item ``i`` is window start ``i % (T - n_ctx)`` of trajectory
``i // (T - n_ctx)``. ``MultiSystemBatches`` implements the batch-source protocol of
``scifm.core.train`` with MPP's task balancing (McCabe et al., arXiv:2310.02994): each
micro-batch holds one system, drawn uniformly, so every sample in it shares fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from scifm.pde.files import read_any
from scifm.pde.systems import get_system
from scifm.pde.trajectories import Trajectories


@dataclass(frozen=True)
class FieldStats:
    """Per-field statistics over all (trajectory, frame, x, y) of a dataset."""

    field_names: tuple[str, ...]
    mean: tuple[float, ...]  # per field
    std: tuple[float, ...]  # per field
    mean_delta: tuple[float, ...]  # mean of frame-to-frame differences, per field
    std_delta: tuple[float, ...]  # std of frame-to-frame differences, per field

    @classmethod
    def of(cls, fields: torch.Tensor, field_names: Sequence[str]) -> FieldStats:
        """Statistics of fields (N, T, C, X, Y), accumulated in float64."""
        f = fields.detach().to(torch.float64)
        d = f[:, 1:] - f[:, :-1]
        dims = (0, 1, 3, 4)

        def tup(t: torch.Tensor) -> tuple[float, ...]:
            return tuple(float(v) for v in t)

        return cls(
            tuple(field_names),
            tup(f.mean(dims)),
            tup(f.std(dims)),
            tup(d.mean(dims)),
            tup(d.std(dims)),
        )

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std with channels on dim -3 (..., C, X, Y)."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device)[:, None, None]
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device)[:, None, None]
        return (x - mean) / std.clamp_min(1e-12)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) for k, v in self.__dict__.items()}


class TrajectoryWindows(Dataset):
    """(n_ctx frames, next frame) windows of one system's trajectories."""

    def __init__(
        self,
        fields: torch.Tensor,
        *,
        system: str,
        n_ctx: int = 16,
        field_names: Sequence[str] | None = None,
        stride: int = 1,
    ) -> None:
        spec = get_system(system)
        if fields.ndim != 5 or fields.shape[2] != spec.n_fields:
            raise ValueError(
                f"fields: shape {tuple(fields.shape)}; expected (N, T, {spec.n_fields}, X, Y) "
                f"for {system} ({', '.join(spec.field_names)})"
            )
        if not 1 <= n_ctx < fields.shape[1]:
            raise ValueError(
                f"n_ctx={n_ctx}: expected 1 <= n_ctx < T={fields.shape[1]} (frames per trajectory)"
            )
        if stride < 1:
            raise ValueError(f"stride={stride}: expected a positive integer")
        self.fields = fields.detach().to("cpu", torch.float32)  # (N, T, C, X, Y)
        self.system = system
        self.n_ctx = n_ctx
        self.stride = stride
        self.field_names = tuple(field_names or spec.field_names)
        self.field_index = torch.tensor(spec.field_index, dtype=torch.int64)
        self.periodic = torch.tensor(spec.periodic)
        self.per_traj = (fields.shape[1] - n_ctx - 1) // stride + 1
        self.stats = FieldStats.of(self.fields, self.field_names)

    @classmethod
    def from_trajectories(
        cls, traj: Trajectories, n_ctx: int = 16, stride: int = 1
    ) -> TrajectoryWindows:
        return cls(
            traj.fields,
            system=traj.system,
            n_ctx=n_ctx,
            field_names=traj.field_names,
            stride=stride,
        )

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        n_ctx: int = 16,
        *,
        system: str | None = None,
        stride: int = 1,
        limit: int | None = None,
    ) -> TrajectoryWindows:
        """Windows from a PDEBench or The Well file (format detected from its keys).

        ``limit`` reads only the first trajectories (the public PDEBench files are large).
        """
        return cls.from_trajectories(read_any(path, system=system, limit=limit), n_ctx, stride)

    def __len__(self) -> int:
        return int(self.fields.shape[0]) * self.per_traj

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i}: out of range for {len(self)} windows")
        traj, start = divmod(i % len(self), self.per_traj)
        start *= self.stride
        frames = self.fields[traj, start : start + self.n_ctx + 1]  # (n_ctx+1, C, X, Y)
        return {
            "x": frames[:-1],  # (T_ctx, C, X, Y)
            "y": frames[-1],  # (C, X, Y)
            "field_index": self.field_index,  # (C,)
            "periodic": self.periodic,  # () bool
            "system": self.system,
        }


def collate_windows(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack windows of ONE system: x (B, T, C, X, Y), y (B, C, X, Y), field_index (C,)."""
    systems = {it["system"] for it in items}
    if len(systems) != 1:
        raise ValueError(f"collate_windows: a batch must hold one system, got {sorted(systems)}")
    return {
        "x": torch.stack([it["x"] for it in items]),
        "y": torch.stack([it["y"] for it in items]),
        "field_index": items[0]["field_index"],
        "periodic": items[0]["periodic"],
        "system": items[0]["system"],
    }


class MultiSystemBatches:
    """Batch source balancing systems: one system per micro-batch, drawn uniformly.

    ``batch_size`` is the global micro-batch (all ranks); rank r of w gets items
    ``r::w`` of it. Everything derives from ``numpy.random.default_rng([seed, step,
    micro])``, so a position always gives the same batch (exact resume, DDP shards).
    """

    def __init__(
        self,
        datasets: Mapping[str, TrajectoryWindows] | Sequence[TrajectoryWindows],
        batch_size: int,
        seed: int = 0,
    ) -> None:
        items = list(datasets.values()) if isinstance(datasets, Mapping) else list(datasets)
        if not items:
            raise ValueError("datasets: expected at least one TrajectoryWindows")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: expected a positive integer")
        self.datasets = items
        self.batch_size = batch_size
        self.seed = seed

    @property
    def systems(self) -> list[str]:
        return [d.system for d in self.datasets]

    def choice(self, step: int, micro: int) -> tuple[int, np.ndarray]:
        """(dataset index, global item indices) of micro-batch ``micro`` of ``step``."""
        rng = np.random.default_rng([self.seed, step, micro])
        k = int(rng.integers(len(self.datasets)))
        n = len(self.datasets[k])
        return k, rng.integers(0, n, size=self.batch_size)

    def get(self, step: int, micro: int, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
        if self.batch_size % world_size:
            raise ValueError(
                f"batch_size={self.batch_size} is not divisible by world_size={world_size}"
            )
        k, idx = self.choice(step, micro)
        data = self.datasets[k]
        return collate_windows([data[int(i)] for i in idx[rank::world_size]])
