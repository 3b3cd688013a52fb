"""PDEBench's random initial conditions for compressible Navier-Stokes.

Following Takamoto et al. (PDEBench, 2022), ``2D_CFD_Rand``: base density and
temperature d0, T0 ~ U(0.1, 10), pressure p0 = d0 T0, sound speed cs = sqrt(Gamma T0);
the velocity is a sum of random-phase sines with integer wavenumbers in [-4, 4],
scaled to a mean speed of M cs; density and pressure are d0 (1 + delta_rho s) and
p0 (1 + delta_p s') with delta ~ U(0.01, 0.2) and s, s' random sine sums of unit
maximum; half the samples are windowed (perturbations confined to a random smooth
box). ``turbulent=1`` uses broadband velocity (wavenumbers up to res/8, amplitude
~ |k|^(-5/6), i.e. a k^(-5/3) energy spectrum), as in the ``2D_CFD_Turb`` sets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from scifm.pde.grid import Grid

BASE_RANGE = (0.1, 10.0)  # range of d0 and T0
DELTA_RANGE = (0.01, 0.2)  # range of the density/pressure perturbation factor
K_MAX = 4  # largest |wavenumber| of the smooth sets
N_MODES = 4  # sines per random field (smooth sets)
N_MODES_TURB = 48  # sines per velocity component (turbulent sets)
# Per-trajectory values random_initial_state draws (its ``extra``): name -> (low, high).
SAMPLED: dict[str, tuple[float, float]] = {
    "d0": BASE_RANGE,
    "T0": BASE_RANGE,
    "delta_rho": DELTA_RANGE,
    "delta_p": DELTA_RANGE,
    "windowed": (0.0, 1.0),  # half the samples windowed (0 or 1)
}


def random_sines(
    n: int, grid: Grid, gen: torch.Generator, *, n_modes: int, k_max: int, slope: float = 0.0
) -> torch.Tensor:
    """Sums of random-phase sines with integer wavenumbers, unit max per sample, (N, X, Y)."""
    xx, yy = grid.mesh()
    xs, ys = (xx - grid.domain[0]) / grid.lx, (yy - grid.domain[2]) / grid.ly
    k = torch.randint(-k_max, k_max + 1, (n, n_modes, 2), generator=gen).double()
    k[..., 0] = torch.where((k == 0).all(-1), torch.ones_like(k[..., 0]), k[..., 0])
    amp = torch.rand((n, n_modes), generator=gen, dtype=torch.float64)
    amp = amp * k.norm(dim=-1) ** slope
    phase = 2 * math.pi * torch.rand((n, n_modes), generator=gen, dtype=torch.float64)
    arg = 2 * math.pi * (k[..., 0, None, None] * xs + k[..., 1, None, None] * ys)
    field = (amp[..., None, None] * torch.sin(arg + phase[..., None, None])).sum(1)
    return field / field.flatten(1).abs().amax(1).clamp_min(1e-12)[:, None, None]


def smooth_window(n: int, grid: Grid, gen: torch.Generator) -> torch.Tensor:
    """A random smooth box in [0, 1] per sample, (N, X, Y)."""
    xx, yy = grid.mesh()
    xs, ys = (xx - grid.domain[0]) / grid.lx, (yy - grid.domain[2]) / grid.ly
    lo = 0.1 + 0.35 * torch.rand((n, 2), generator=gen, dtype=torch.float64)
    hi = 0.55 + 0.35 * torch.rand((n, 2), generator=gen, dtype=torch.float64)
    width = 0.01 + 0.02 * torch.rand((n, 1), generator=gen, dtype=torch.float64)

    def box(s: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b, w = a[:, None, None], b[:, None, None], width[:, :, None]
        return 0.5 * (torch.tanh((s - a) / w) - torch.tanh((s - b) / w))

    return box(xs, lo[:, 0], hi[:, 0]) * box(ys, lo[:, 1], hi[:, 1])


def random_initial_state(
    n: int, grid: Grid, params: Mapping[str, Any], gen: torch.Generator
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(N, 4, X, Y) float64 (vx, vy, density, pressure) and the drawn per-sample values."""
    lo, hi = BASE_RANGE
    d0 = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
    t0 = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
    gamma = torch.as_tensor(params["gamma"], dtype=torch.float64).expand(n)
    mach = torch.as_tensor(params["M"], dtype=torch.float64).expand(n)
    turbulent = float(torch.as_tensor(params["turbulent"]).max()) > 0
    dlo, dhi = DELTA_RANGE
    delta = dlo + (dhi - dlo) * torch.rand((n, 2), generator=gen, dtype=torch.float64)
    windowed = torch.rand(n, generator=gen, dtype=torch.float64) < 0.5
    if turbulent:
        k_max = max(K_MAX, min(grid.nx, grid.ny) // 8)
        vel = [
            random_sines(n, grid, gen, n_modes=N_MODES_TURB, k_max=k_max, slope=-5 / 6)
            for _ in range(2)
        ]
    else:
        vel = [random_sines(n, grid, gen, n_modes=N_MODES, k_max=K_MAX) for _ in range(2)]
    s_rho, s_p = (random_sines(n, grid, gen, n_modes=N_MODES, k_max=K_MAX) for _ in range(2))
    window = torch.where(windowed[:, None, None], smooth_window(n, grid, gen), 1.0)
    # Scale before windowing, so a windowed sample is not faster inside its box.
    speed = torch.sqrt(vel[0] ** 2 + vel[1] ** 2).flatten(1).mean(1).clamp_min(1e-12)
    vx, vy = vel[0] * window, vel[1] * window
    cs = torch.sqrt(gamma * t0)
    scale = (mach * cs / speed)[:, None, None]
    rho = d0[:, None, None] * (1 + delta[:, 0, None, None] * s_rho * window)
    p = (d0 * t0)[:, None, None] * (1 + delta[:, 1, None, None] * s_p * window)
    state = torch.stack([vx * scale, vy * scale, rho, p], dim=1)
    extra = {
        "d0": d0,
        "T0": t0,
        "delta_rho": delta[:, 0],
        "delta_p": delta[:, 1],
        "windowed": windowed.double(),
    }
    return state, extra
