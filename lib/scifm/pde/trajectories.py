"""``Trajectories``: what every solver returns and every file format stores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from scifm.pde.systems import SystemSpec, get_system


@dataclass
class Trajectories:
    """A batch of simulated trajectories of one system.

    ``params`` holds per-trajectory physical parameters, each with leading dim N:
    scalars (N,) such as a viscosity, or fields such as INS forcing (N, 2, X, Y).
    """

    system: str  # key of SYSTEMS
    fields: torch.Tensor  # (N, T, C, X, Y)
    field_names: tuple[str, ...]  # channel names, length C
    t: torch.Tensor  # (T,) frame times
    x: torch.Tensor  # (X,) cell centres
    y: torch.Tensor  # (Y,) cell centres
    params: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fields.ndim != 5:
            raise ValueError(f"fields: shape {tuple(self.fields.shape)}; expected (N, T, C, X, Y)")
        n, t, c, nx, ny = self.fields.shape
        if len(self.field_names) != c:
            raise ValueError(f"field_names {self.field_names}: expected {c} names")
        if self.t.shape != (t,) or self.x.shape != (nx,) or self.y.shape != (ny,):
            raise ValueError(
                f"coordinates t{tuple(self.t.shape)} x{tuple(self.x.shape)} "
                f"y{tuple(self.y.shape)}: expected ({t},), ({nx},), ({ny},)"
            )
        for k, v in self.params.items():
            if v.shape[:1] != (n,):
                raise ValueError(f"params[{k!r}]: shape {tuple(v.shape)}; expected leading {n}")

    @property
    def spec(self) -> SystemSpec:
        return get_system(self.system)

    def __len__(self) -> int:
        return int(self.fields.shape[0])

    def field(self, name: str) -> torch.Tensor:
        """The frames of one field, (N, T, X, Y)."""
        if name not in self.field_names:
            raise KeyError(f"field {name!r}: not in {self.field_names}")
        return self.fields[:, :, self.field_names.index(name)]

    def to(self, device: str | torch.device) -> Trajectories:
        return Trajectories(
            self.system,
            self.fields.to(device),
            self.field_names,
            self.t.to(device),
            self.x.to(device),
            self.y.to(device),
            {k: v.to(device) for k, v in self.params.items()},
        )

    def select(self, index: Sequence[int] | slice) -> Trajectories:
        idx = index if isinstance(index, slice) else torch.as_tensor(list(index))
        return Trajectories(
            self.system,
            self.fields[idx],
            self.field_names,
            self.t,
            self.x,
            self.y,
            {k: v[idx] for k, v in self.params.items()},
        )

    def numpy_params(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.params.items()}

    @staticmethod
    def concat(parts: Sequence[Trajectories]) -> Trajectories:
        if not parts:
            raise ValueError("concat: expected at least one Trajectories")
        first = parts[0]
        for p in parts[1:]:
            if p.system != first.system or p.fields.shape[1:] != first.fields.shape[1:]:
                raise ValueError(
                    f"concat: {p.system} {tuple(p.fields.shape)} does not match "
                    f"{first.system} {tuple(first.fields.shape)}"
                )
        return Trajectories(
            first.system,
            torch.cat([p.fields for p in parts]),
            first.field_names,
            first.t,
            first.x,
            first.y,
            {k: torch.cat([p.params[k] for p in parts]) for k in first.params},
        )
