"""2D diffusion-reaction (FitzHugh-Nagumo), PDEBench's ``2D_diff-react`` set-up.

    u_t = Du lap u + u - u^3 - k - v
    v_t = Dv lap v + u - v

Du = 1e-3, Dv = 5e-3, k = 5e-3 on [-1, 1]^2 with no-flux walls and u, v ~ N(0, 1)
per cell at t = 0 (Takamoto et al., PDEBench, 2022). Second-order finite volume in
space (the no-flux wall is a mirrored ghost cell) and classical RK4 in time with a
step re-chosen from the linear stability bound of diffusion plus the reaction
Jacobian, so every run is stable by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from scifm.pde.grid import Grid, per_sample
from scifm.pde.stepping import integrate

DEFAULTS: dict[str, float] = {
    "Du": 1e-3,  # diffusion of the activator u
    "Dv": 5e-3,  # diffusion of the inhibitor v
    "k": 5e-3,  # excitation threshold
    "reaction": 1.0,  # 0 switches the reaction terms off (verification against pure diffusion)
}
RK4_STABILITY = 2.78  # RK4's stability interval on the negative real axis
SAFETY = 0.9


def laplacian_noflux(f: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Five-point Laplacian of f (N, C, X, Y) with zero normal gradient at the walls."""
    g = F.pad(f, (1, 1, 1, 1), mode="replicate")
    lap_x = (g[:, :, 2:, 1:-1] - 2 * f + g[:, :, :-2, 1:-1]) / grid.dx**2
    lap_y = (g[:, :, 1:-1, 2:] - 2 * f + g[:, :, 1:-1, :-2]) / grid.dy**2
    return lap_x + lap_y


OPTIONS: dict[str, Any] = {"safety": SAFETY}  # fraction of the RK4 stability limit used
SAMPLED: dict[str, tuple[float, float]] = {}  # u, v ~ N(0, 1) per cell: no scalar drawn


def initial_state(
    n: int,
    grid: Grid,
    params: Mapping[str, Any],
    gen: torch.Generator,
    *,
    device: Any,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PDEBench's initial condition: u, v ~ N(0, 1) independently per cell, (N, 2, X, Y)."""
    z = torch.randn((n, 2, grid.nx, grid.ny), generator=gen, dtype=torch.float64)
    return z.to(device=device, dtype=dtype), {}


def solve(
    state: torch.Tensor,
    grid: Grid,
    params: Mapping[str, Any],
    t_frames: torch.Tensor,
    *,
    options: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Frames (N, T, 2, X, Y) of (u, v) at ``t_frames`` starting from ``state`` (N, 2, X, Y)."""
    safety = float({**OPTIONS, **(options or {})}["safety"])
    n, dev, dt_ = state.shape[0], state.device, state.dtype
    p = {k: per_sample(params, k, n, device=dev, dtype=dt_).view(n, 1, 1) for k in DEFAULTS}
    diff_all = torch.stack([p["Du"], p["Dv"]], dim=1)  # (N, 2, 1, 1)
    # Each trajectory's diffusion eigenvalue bound and reaction switch.
    lam_diff = 4 * diff_all.flatten(1).amax(1).double() * (1 / grid.dx**2 + 1 / grid.dy**2)  # (N,)
    r_on = p["reaction"].flatten().abs().double()  # (N,)

    def rhs(s: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        u, v = s[:, 0], s[:, 1]
        k, react_on = p["k"][idx], p["reaction"][idx]
        react = torch.stack([u - u**3 - k - v, u - v], dim=1) * react_on.unsqueeze(1)
        return diff_all[idx] * laplacian_noflux(s, grid) + react

    def step(s: torch.Tensor, dt: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        dt = dt.view(-1, 1, 1, 1)
        k1 = rhs(s, idx)
        k2 = rhs(s + 0.5 * dt * k1, idx)
        k3 = rhs(s + 0.5 * dt * k2, idx)
        k4 = rhs(s + dt * k3, idx)
        return s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    def stable_dt(s: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        # Reaction Jacobian: |1 - 3u^2| + coupling terms (|-1|, |1|, |-1|) bound its spectrum.
        u_max = s[:, 0].flatten(1).abs().amax(1).double()  # (A,)
        lam_react = r_on[idx] * (3 * u_max**2 + 3)
        return safety * RK4_STABILITY / (lam_diff[idx] + lam_react)

    return integrate(
        "diffreact",
        state,
        t_frames,
        step=step,
        stable_dt=stable_dt,
        to_frame=lambda s, idx: s,
        progress=progress,
    )
