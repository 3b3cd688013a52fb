"""Reference problems with known solutions, shared by the tests and the notebook.

- Sod shock tube (Sod 1978) against the exact Riemann solution (``riemann``).
- Isentropic vortex (Shu 1998, "Essentially non-oscillatory and weighted essentially
  non-oscillatory schemes") advected on a periodic box: the exact solution is the
  translated initial condition, which measures the order of convergence.
- Taylor-Green vortex: exp(-2 nu k^2 t) decay of an exact Navier-Stokes solution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from scifm.pde.grid import Grid
from scifm.pde.riemann import exact_riemann
from scifm.pde.simulate import simulate

SOD_LEFT = (1.0, 0.0, 1.0)  # (rho, u, p)
SOD_RIGHT = (0.125, 0.0, 0.1)


@dataclass
class SodResult:
    x: np.ndarray  # (n_cells,) cell centres along the tube
    numeric: dict[str, np.ndarray]  # rho, u, p along the tube
    exact: dict[str, np.ndarray]
    l1: dict[str, float]  # relative L1 error: sum|num - exact| / sum|exact| (u: mean abs)


def sod_shock_tube(
    n_cells: int = 400,
    axis: str = "x",
    t_end: float = 0.2,
    width: int = 4,
    dtype: torch.dtype = torch.float64,
) -> SodResult:
    """Sod's tube along ``axis`` on a ``n_cells x width`` strip of [0, 1], outflow ends."""
    if axis not in ("x", "y"):
        raise ValueError(f"axis {axis!r}: expected 'x' or 'y'")
    dx = 1.0 / n_cells
    x = (np.arange(n_cells) + 0.5) * dx
    left = torch.as_tensor(x < 0.5)[:, None].expand(n_cells, width)
    state = torch.zeros(1, 4, n_cells, width, dtype=torch.float64)
    state[0, 2] = torch.where(left, SOD_LEFT[0], SOD_RIGHT[0])
    state[0, 3] = torch.where(left, SOD_LEFT[2], SOD_RIGHT[2])
    res, domain = (n_cells, width), (0.0, 1.0, 0.0, width * dx)
    if axis == "y":
        state = state[:, [1, 0, 2, 3]].transpose(2, 3)
        res, domain = (width, n_cells), (0.0, width * dx, 0.0, 1.0)
    traj = simulate(
        "cns",
        res=res,
        domain=domain,
        n_frames=2,
        t_end=t_end,
        dtype=dtype,
        initial_state=state,
        params={"eta": 0.0, "zeta": 0.0, "boundary": "outflow"},
    )
    last = traj.fields[0, -1].double()  # (4, X, Y)
    if axis == "y":
        last = last[[1, 0, 2, 3]].transpose(1, 2)
    numeric = {"rho": last[2, :, 0].numpy(), "u": last[0, :, 0].numpy(), "p": last[3, :, 0].numpy()}
    r, u, p = exact_riemann(SOD_LEFT, SOD_RIGHT, (x - 0.5) / t_end, gamma=5.0 / 3.0)
    exact = {"rho": r, "u": u, "p": p}
    l1 = {k: float(np.abs(numeric[k] - exact[k]).sum() / np.abs(exact[k]).sum()) for k in exact}
    return SodResult(x, numeric, exact, l1)


def isentropic_vortex_state(
    grid: Grid, t: float, beta: float = 5.0, gamma: float = 5.0 / 3.0
) -> torch.Tensor:
    """Exact vortex at time t, (1, 4, X, Y) as (vx, vy, density, pressure), mean flow (1, 1)."""
    xx, yy = grid.mesh()
    lx, ly = grid.lx, grid.ly
    cx, cy = grid.domain[0] + lx / 2 + t, grid.domain[2] + ly / 2 + t
    # Nearest periodic image of the vortex centre.
    dx = torch.remainder(xx - cx + lx / 2, lx) - lx / 2
    dy = torch.remainder(yy - cy + ly / 2, ly) - ly / 2
    r2 = dx**2 + dy**2
    bump = beta / (2 * math.pi) * torch.exp(0.5 * (1 - r2))
    temp = 1 - (gamma - 1) * beta**2 / (8 * gamma * math.pi**2) * torch.exp(1 - r2)
    rho = temp ** (1 / (gamma - 1))
    return torch.stack([1 - bump * dy, 1 + bump * dx, rho, rho**gamma])[None]


def isentropic_vortex_error(res: int, t_end: float = 1.0) -> float:
    """Density L1 error (mean abs) of the advected vortex on [-5, 5]^2 at ``res``^2 cells."""
    grid = Grid.make(res, (-5.0, 5.0, -5.0, 5.0))
    init = isentropic_vortex_state(grid, 0.0)
    traj = simulate(
        "cns",
        res=res,
        domain=grid.domain,
        n_frames=2,
        t_end=t_end,
        dtype=torch.float64,
        initial_state=init,
        params={"eta": 0.0, "zeta": 0.0},
    )
    exact = isentropic_vortex_state(grid, t_end)
    return float((traj.fields[0, -1, 2] - exact[0, 2]).abs().mean())


def convergence_orders(resolutions: list[int], errors: list[float]) -> list[float]:
    """Observed orders log(e_i / e_{i+1}) / log(n_{i+1} / n_i)."""
    return [
        math.log(errors[i] / errors[i + 1]) / math.log(resolutions[i + 1] / resolutions[i])
        for i in range(len(errors) - 1)
    ]


def taylor_green_error(res: int = 32, t_end: float = 1.0, nu: float = 0.01) -> float:
    """Max relative velocity error of the Taylor-Green vortex vs exp(-2 nu k^2 t) decay."""
    grid = Grid.make(res, (0.0, 1.0, 0.0, 1.0))
    xx, yy = grid.mesh()
    k = 2 * math.pi
    vx, vy = torch.sin(k * xx) * torch.cos(k * yy), -torch.cos(k * xx) * torch.sin(k * yy)
    init = torch.stack([vx, vy, 0 * xx])[None]
    traj = simulate(
        "ins",
        res=res,
        n_frames=5,
        t_end=t_end,
        initial_state=init,
        dtype=torch.float64,
        params={"nu": nu, "forcing": torch.zeros(1, 2, res, res)},
    )
    decay = torch.exp(-2 * nu * k**2 * traj.t.double())[:, None, None, None]
    expected = init[0, :2] * decay
    return float((traj.fields[0, :, :2] - expected).abs().amax() / expected.abs().amax())


def cosine_decay_error(res: int = 64, t_end: float = 2.0, d: float = 0.02) -> float:
    """Relative error of a no-flux cosine mode's decay vs exp(-D k^2 t), reaction off."""
    grid = Grid.make(res, (-1.0, 1.0, -1.0, 1.0))
    xx, yy = grid.mesh()
    mode = torch.cos(math.pi * (xx + 1)) * torch.cos(math.pi * (yy + 1) / 2)
    traj = simulate(
        "diffreact",
        res=res,
        n_frames=5,
        t_end=t_end,
        dtype=torch.float64,
        initial_state=torch.stack([mode, mode])[None],
        params={"reaction": 0.0, "Du": d, "Dv": d},
    )
    amp = (traj.fields[0, :, 0] * mode).sum((-1, -2)) / (mode * mode).sum()
    exact = torch.exp(-d * math.pi**2 * 1.25 * traj.t.double())
    return float(((amp - exact) / exact).abs().max())


def cns_conservation_drift(res: int = 32, t_end: float = 0.02) -> float:
    """Largest relative change of total mass, momentum or energy on the periodic box."""
    from scifm.pde.cns import to_conserved

    traj = simulate(
        "cns",
        2,
        res=res,
        n_frames=2,
        t_end=t_end,
        seed=5,
        dtype=torch.float64,
        params={"M": 1.0, "eta": 0.05, "zeta": 0.05},
    )
    q = traj.fields[:, :, [2, 0, 1, 3]]
    gamma = torch.tensor(5 / 3, dtype=torch.float64)
    cons = torch.stack([to_conserved(q[:, t], gamma) for t in range(q.shape[1])], 1)
    totals, scale = cons.sum((-1, -2)), cons.abs().sum((-1, -2))[:, :1]
    return float(((totals - totals[:, :1]) / scale).abs().max())


def run_all(quick: bool = False) -> dict[str, float | list[float]]:
    """Every reference figure, as reported by ``scifm pde verify``."""
    n_sod = 200 if quick else 400
    res = [16, 32] if quick else [16, 32, 64]
    errors = [isentropic_vortex_error(n) for n in res]
    out: dict[str, float | list[float]] = {}
    for axis in ("x", "y"):
        out[f"sod_{axis}_{n_sod}_density_L1_rel"] = sod_shock_tube(n_sod, axis).l1["rho"]
    out[f"isentropic_vortex_density_L1_{res}"] = errors
    out["isentropic_vortex_orders"] = convergence_orders(res, errors)
    out["cns_conservation_max_rel_drift"] = cns_conservation_drift()
    out["taylor_green_max_rel_error"] = taylor_green_error()
    out["diffusion_cosine_decay_max_rel_error"] = cosine_decay_error()
    return out
