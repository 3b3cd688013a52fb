"""Uniform cell-centred grids and per-trajectory parameters shared by the solvers.

Every solver in this package is a finite-volume or pseudo-spectral method on a
uniform grid of ``nx x ny`` cells; values live at cell centres.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Grid:
    """A uniform cell-centred grid on ``[x0, x1] x [y0, y1]``."""

    nx: int  # cells along x (first spatial axis)
    ny: int  # cells along y (second spatial axis)
    domain: tuple[float, float, float, float]  # (x0, x1, y0, y1)

    def __post_init__(self) -> None:
        if self.nx < 2 or self.ny < 2:
            raise ValueError(f"grid {self.nx}x{self.ny}: expected at least 2 cells per side")
        x0, x1, y0, y1 = self.domain
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"domain {self.domain}: expected x1 > x0 and y1 > y0")

    @classmethod
    def make(cls, res: int | tuple[int, int], domain: tuple[float, float, float, float]) -> Grid:
        nx, ny = (res, res) if isinstance(res, int) else (int(res[0]), int(res[1]))
        return cls(nx, ny, tuple(float(d) for d in domain))  # type: ignore[arg-type]

    @property
    def dx(self) -> float:
        return (self.domain[1] - self.domain[0]) / self.nx

    @property
    def dy(self) -> float:
        return (self.domain[3] - self.domain[2]) / self.ny

    @property
    def lx(self) -> float:
        return self.domain[1] - self.domain[0]

    @property
    def ly(self) -> float:
        return self.domain[3] - self.domain[2]

    def x(self, device: Any = "cpu", dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Cell centres along x, shape (nx,)."""
        return self.domain[0] + (torch.arange(self.nx, device=device, dtype=dtype) + 0.5) * self.dx

    def y(self, device: Any = "cpu", dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Cell centres along y, shape (ny,)."""
        return self.domain[2] + (torch.arange(self.ny, device=device, dtype=dtype) + 0.5) * self.dy

    def mesh(
        self, device: Any = "cpu", dtype: torch.dtype = torch.float64
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell-centre coordinates ``(X, Y)``, each (nx, ny)."""
        return torch.meshgrid(self.x(device, dtype), self.y(device, dtype), indexing="ij")


def per_sample(
    params: Mapping[str, Any],
    name: str,
    n: int,
    *,
    device: Any,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Parameter ``name`` as a tensor of shape (n,): a scalar is broadcast, a sequence checked."""
    value = params[name]
    if isinstance(value, torch.Tensor):  # e.g. the params of earlier Trajectories, any device
        t = value.detach().to(device=device, dtype=dtype)
    else:
        t = torch.as_tensor(np.asarray(value, dtype=np.float64), device=device).to(dtype)
    if t.ndim == 0:
        return t.expand(n).clone()
    if t.shape != (n,):
        raise ValueError(
            f"parameter {name!r}: shape {tuple(t.shape)}; expected a scalar or ({n},) "
            "(one value per trajectory)"
        )
    return t
