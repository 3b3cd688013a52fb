"""2D shallow water, radial dam break: PDEBench's ``2D_rdb`` set-up.

    h_t + (hu)_x + (hv)_y = 0
    (hu)_t + (hu^2 + g h^2 / 2)_x + (huv)_y = 0
    (hv)_t + (huv)_x + (hv^2 + g h^2 / 2)_y = 0

g = 1 on [-2.5, 2.5]^2 with outflow boundaries; h = 2 inside a radius R ~ U(0.3, 0.7)
around the origin, 1 outside, at rest (Takamoto et al., PDEBench, 2022), averaged over each
cell (PDEBench samples the disc at cell centres; see ``initial_state``). Second-order
finite volume: MUSCL reconstruction of (h, u, v) with the MC limiter (face depths stay
between neighbouring cell depths, so they stay positive), the HLL flux with Davis
wave speeds, SSP-RK2 in time at CFL 0.4 (positivity-preserving for HLL).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from scifm.pde.finite_volume import flux_divergence, ssp_rk2
from scifm.pde.grid import Grid
from scifm.pde.stepping import integrate

DEFAULTS: dict[str, float] = {
    "g": 1.0,  # gravitational acceleration
    "h_in": 2.0,  # depth inside the dam
    "h_out": 1.0,  # depth outside the dam
}
OPTIONS: dict[str, Any] = {"boundary": "outflow", "limiter": "mc", "cfl": 0.4}
RADIUS_RANGE = (0.3, 0.7)  # PDEBench's dam radius range
# Per-trajectory values initial_state draws uniformly: name -> (low, high).
SAMPLED: dict[str, tuple[float, float]] = {"radius": RADIUS_RANGE}
DEPTH_FLOOR = 1e-12
SUBCELLS = 128  # sub-cell points per side in the cells the initial dam's edge cuts


def initial_state(
    n: int,
    grid: Grid,
    params: Mapping[str, Any],
    gen: torch.Generator,
    *,
    device: Any,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Depth (N, 1, X, Y) of radial dam breaks with radii drawn from U(0.3, 0.7).

    Each cell holds the average of the exact initial depth over its area (the finite-volume
    initial condition), so every radius gives its own state. A sharp disc (cell centre
    inside or not, as PDEBench does) allows only ~20 distinct states at 64^2, and held-out
    trajectories would repeat training ones exactly.
    """
    lo, hi = RADIUS_RANGE
    radius = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
    frac = torch.stack([disc_fraction(grid, float(r)) for r in radius])  # (N, X, Y)
    h_in = torch.as_tensor(params["h_in"], dtype=torch.float64)
    h_out = torch.as_tensor(params["h_out"], dtype=torch.float64)
    h = (h_out + (h_in - h_out) * frac)[:, None]
    return h.to(device=device, dtype=dtype), {"radius": radius.to(device=device, dtype=dtype)}


def disc_fraction(grid: Grid, radius: float, sub: int = SUBCELLS) -> torch.Tensor:
    """Fraction (X, Y) of each cell's area inside the centred disc of ``radius``.

    Cells wholly inside or outside get 1 or 0; cells the circle cuts get the midpoint rule
    on ``sub`` x ``sub`` points (a fraction resolved to 1 / sub^2).
    """
    xx, yy = grid.mesh()  # (X, Y) cell centres
    half = 0.5 * math.hypot(grid.dx, grid.dy)  # centre-to-corner distance
    r = torch.sqrt(xx**2 + yy**2)
    frac = (r < radius).double()
    cut = (r - radius).abs() <= half  # (X, Y) cells the circle may cross
    off = (torch.arange(sub, dtype=torch.float64) + 0.5) / sub - 0.5  # (S,)
    px = xx[cut][:, None, None] + off[:, None] * grid.dx  # (K, S, 1)
    py = yy[cut][:, None, None] + off[None, :] * grid.dy  # (K, 1, S)
    frac[cut] = ((px**2 + py**2) < radius**2).double().mean(dim=(1, 2))
    return frac


def hll_flux(g: torch.Tensor) -> Any:
    """The HLL flux along x for primitive face states (h, u, v), g broadcastable (N,1,1,1)."""

    def flux(ql: torch.Tensor, qr: torch.Tensor) -> torch.Tensor:
        def phys(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h, u, v = q[:, 0:1], q[:, 1:2], q[:, 2:3]
            cons = torch.cat([h, h * u, h * v], dim=1)
            f = torch.cat([h * u, h * u * u + 0.5 * g * h * h, h * u * v], dim=1)
            return cons, f

        (ul, fl), (ur, fr) = phys(ql), phys(qr)
        cl, cr = torch.sqrt(g * ql[:, 0:1]), torch.sqrt(g * qr[:, 0:1])
        sl = torch.minimum(ql[:, 1:2] - cl, qr[:, 1:2] - cr)
        sr = torch.maximum(ql[:, 1:2] + cl, qr[:, 1:2] + cr)
        f_mid = (sr * fl - sl * fr + sl * sr * (ur - ul)) / (sr - sl)
        return torch.where(sl >= 0, fl, torch.where(sr <= 0, fr, f_mid))

    return flux


def to_primitive(u: torch.Tensor) -> torch.Tensor:
    """(h, hu, hv) -> (h, u, v)."""
    h = u[:, 0:1]
    return torch.cat([h, u[:, 1:] / h.clamp_min(DEPTH_FLOOR)], dim=1)


def solve(
    state: torch.Tensor,
    grid: Grid,
    params: Mapping[str, Any],
    t_frames: torch.Tensor,
    *,
    options: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Depth frames (N, T, 1, X, Y) from depth ``state`` (N, 1, X, Y), starting at rest."""
    opts = {**OPTIONS, **(options or {})}
    n = state.shape[0]
    g_all = params["g"].view(n, 1, 1, 1)
    u0 = torch.cat([state, torch.zeros_like(state), torch.zeros_like(state)], dim=1)

    def rhs(u: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        q = to_primitive(u)
        return flux_divergence(
            q,
            hll_flux(g),
            dx=grid.dx,
            dy=grid.dy,
            boundary=opts["boundary"],
            limiter=opts["limiter"],
            vel=(1, 2),
            positive=(0,),
        )

    def step(u: torch.Tensor, dt: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        g = g_all[idx]
        return ssp_rk2(u, dt.view(-1, 1, 1, 1), lambda w: rhs(w, g))

    def stable_dt(u: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        q = to_primitive(u)
        c = torch.sqrt(g_all[idx] * q[:, 0:1].clamp_min(0))
        rate = (q[:, 1:2].abs() + c) / grid.dx + (q[:, 2:3].abs() + c) / grid.dy
        return opts["cfl"] / rate.flatten(1).amax(1)  # (A,)

    return integrate(
        "swe",
        u0,
        t_frames,
        step=step,
        stable_dt=stable_dt,
        to_frame=lambda u, idx: u[:, 0:1],
        positive=((0, "depth h"),),
        progress=progress,
    )
