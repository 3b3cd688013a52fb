"""Training windows for MPP: (T context frames, next frame) from trajectories in memory.

``TrajectoryWindows`` is a map-style torch Dataset over in-memory trajectories
(N, T, C, X, Y); item ``i`` is window start ``(i % per_traj) * stride`` of trajectory
``i // per_traj``. Files are read lazily by ``scifm.pde.filewindows.FileWindows``, whose
items are the same dicts. ``system_batches`` is MPP's task balancing (McCabe et al.,
arXiv:2310.02994) on the core batch sources: each micro-batch holds one system, drawn
uniformly, so every sample in it shares fields; each system's windows are visited
without replacement (one shuffled epoch after another).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from scifm.core.batches import DatasetBatches, MixtureBatches
from scifm.pde.systems import SYSTEMS
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
    """(n_ctx frames, next frame) windows of one system's trajectories.

    ``system`` labels the batches; for one of ``SYSTEMS`` it also gives the default
    ``field_index`` (embedding slots) and ``periodic``; any other label must pass both.
    """

    def __init__(
        self,
        fields: torch.Tensor,
        *,
        system: str,
        n_ctx: int = 16,
        field_names: Sequence[str] | None = None,
        stride: int = 1,
        field_index: Sequence[int] | None = None,
        periodic: bool | None = None,
    ) -> None:
        spec = SYSTEMS.get(system)
        if spec is None and (field_index is None or periodic is None):
            raise ValueError(
                f"system {system!r}: not one of {sorted(SYSTEMS)}; pass field_index and periodic"
            )
        index = tuple(field_index) if field_index is not None else spec.field_index  # type: ignore[union-attr]
        if fields.ndim != 5 or fields.shape[2] != len(index):
            raise ValueError(
                f"fields: shape {tuple(fields.shape)}; expected (N, T, {len(index)}, X, Y) "
                f"for {system} (field_index {index})"
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
        default_names = spec.field_names if spec else tuple(f"f{i}" for i in index)
        self.field_names = tuple(field_names or default_names)
        self.field_index = torch.tensor(index, dtype=torch.int64)
        self.periodic = torch.tensor(spec.periodic if periodic is None else periodic)  # type: ignore[union-attr]
        self.per_traj = (fields.shape[1] - n_ctx - 1) // stride + 1
        self._stats: FieldStats | None = None

    @property
    def stats(self) -> FieldStats:
        """Per-field statistics of all frames (computed on first use)."""
        if self._stats is None:
            self._stats = FieldStats.of(self.fields, self.field_names)
        return self._stats

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


def system_batches(
    datasets: Mapping[str, Dataset] | Sequence[Dataset],
    batch_size: int,
    seed: int = 0,
    *,
    accum_steps: int = 1,
) -> MixtureBatches:
    """MPP's batch source: one system per micro-batch, drawn uniformly (``MixtureBatches``).

    ``batch_size`` is the global micro-batch (all ranks). System ``k`` shuffles its windows
    with its own seed (from ``(seed, k)``) and goes through them without replacement.
    """
    items = dict(datasets) if isinstance(datasets, Mapping) else dict(enumerate(datasets))
    sources = {}
    for k, (name, ds) in enumerate(items.items()):
        if len(ds) < batch_size:  # type: ignore[arg-type]
            raise ValueError(
                f"system {name!r} has {len(ds)} windows, fewer than batch_size={batch_size}; "  # type: ignore[arg-type]
                "use a smaller batch or more trajectories"
            )
        sub = int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
        sources[str(name)] = DatasetBatches(ds, batch_size, sub, collate=collate_windows)
    return MixtureBatches(sources, seed, accum_steps=accum_steps)
