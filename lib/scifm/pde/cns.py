"""2D compressible Navier-Stokes: PDEBench's ``2D_CFD_Rand`` / ``Turb`` set-ups.

    rho_t + div(rho v) = 0
    (rho v)_t + div(rho v v + p I - sigma') = 0
    E_t + div((E + p) v - v . sigma') = 0,   E = p / (Gamma - 1) + rho |v|^2 / 2
    sigma' = eta (grad v + grad v^T - 2/3 (div v) I) + zeta (div v) I

Gamma = 5/3 on the periodic unit square (Takamoto et al., PDEBench, 2022). Inviscid
part: MUSCL reconstruction of (rho, vx, vy, p) with the MC limiter (first order in a
cell whose face density or pressure would go non-positive), the HLLC flux (Toro,
Spruce & Speares 1994), SSP-RK2 at CFL 0.45 on the summed directional rates. Viscous
part: face-centred stresses in flux form (so mass, momentum and energy are conserved
to round-off), Strang-split and advanced by Runge-Kutta-Legendre super time stepping
(RKL2, Meyer et al. 2014) so a large eta or zeta never forces the hyperbolic step
down. Every trajectory of a batch takes its own stable step and its own viscous path
(``stepping.integrate``), so a batch costs about what its members cost alone.
``boundary="outflow"`` serves shock-tube tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from scifm.pde.cns_init import SAMPLED as INIT_SAMPLED
from scifm.pde.cns_init import random_initial_state
from scifm.pde.finite_volume import (
    flux_divergence,
    pad_x,
    rkl2,
    rkl2_stages,
    ssp_rk2,
    swap_xy,
)
from scifm.pde.grid import Grid
from scifm.pde.stepping import integrate

GAMMA = 5.0 / 3.0
DEFAULTS: dict[str, float] = {
    "M": 0.1,  # mean Mach number of the initial velocity
    "eta": 0.01,  # shear viscosity
    "zeta": 0.01,  # bulk viscosity
    "gamma": GAMMA,  # ratio of specific heats
    "turbulent": 0.0,  # 1 draws PDEBench's turbulent (broadband) initial velocity
}
OPTIONS: dict[str, Any] = {"boundary": "periodic", "limiter": "mc", "cfl": 0.45}
SAMPLED = INIT_SAMPLED  # per-trajectory values the random initial state draws: (low, high)
VISCOUS_SAFETY = 0.25  # forward-Euler (and SSP-RK2) limit dx^2 / (4 nu) for 2D diffusion


def initial_state(
    n: int,
    grid: Grid,
    params: Mapping[str, Any],
    gen: torch.Generator,
    *,
    device: Any,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PDEBench random initial conditions, (N, 4, X, Y) as (vx, vy, density, pressure)."""
    state, extra = random_initial_state(n, grid, params, gen)
    return state.to(device=device, dtype=dtype), {
        k: v.to(device=device, dtype=dtype) for k, v in extra.items()
    }


def to_conserved(q: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """(rho, vx, vy, p) -> (rho, mx, my, E)."""
    rho, vx, vy, p = q.unbind(1)
    e = p / (gamma - 1) + 0.5 * rho * (vx**2 + vy**2)
    return torch.stack([rho, rho * vx, rho * vy, e], dim=1)


def to_primitive(u: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """(rho, mx, my, E) -> (rho, vx, vy, p)."""
    rho, mx, my, e = u.unbind(1)
    vx, vy = mx / rho, my / rho
    p = (gamma - 1) * (e - 0.5 * rho * (vx**2 + vy**2))
    return torch.stack([rho, vx, vy, p], dim=1)


def hllc_flux(gamma: torch.Tensor) -> Any:
    """HLLC flux along x for primitive face states (rho, vx, vy, p)."""

    def flux(ql: torch.Tensor, qr: torch.Tensor) -> torch.Tensor:
        ul, ur = to_conserved(ql, gamma), to_conserved(qr, gamma)
        rl, vl, wl, pl = ql.unbind(1)
        rr, vr, wr, pr = qr.unbind(1)
        cl = torch.sqrt(gamma * pl / rl)
        cr = torch.sqrt(gamma * pr / rr)
        sl = torch.minimum(vl - cl, vr - cr)
        sr = torch.maximum(vl + cl, vr + cr)
        ml, mr = rl * (sl - vl), rr * (sr - vr)
        s_star = (pr - pl + ml * vl - mr * vr) / (ml - mr)

        def phys(u: torch.Tensor, v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
            return torch.stack([u[:, 1], u[:, 1] * v + p, u[:, 2] * v, (u[:, 3] + p) * v], 1)

        def star(
            u: torch.Tensor,
            r: torch.Tensor,
            v: torch.Tensor,
            w: torch.Tensor,
            p: torch.Tensor,
            s: torch.Tensor,
        ) -> torch.Tensor:
            fac = r * (s - v) / (s - s_star)
            e = u[:, 3] / r + (s_star - v) * (s_star + p / (r * (s - v)))
            return fac[:, None] * torch.stack([torch.ones_like(r), s_star, w, e], dim=1)

        fl, fr = phys(ul, vl, pl), phys(ur, vr, pr)
        fl_star = fl + sl[:, None] * (star(ul, rl, vl, wl, pl, sl) - ul)
        fr_star = fr + sr[:, None] * (star(ur, rr, vr, wr, pr, sr) - ur)
        sl_, sr_, ss_ = sl[:, None], sr[:, None], s_star[:, None]
        return torch.where(
            sl_ >= 0, fl, torch.where(ss_ >= 0, fl_star, torch.where(sr_ > 0, fr_star, fr))
        )

    return flux


def viscous_rhs(
    u: torch.Tensor,
    gamma: torch.Tensor,
    eta: torch.Tensor,
    zeta: torch.Tensor,
    grid: Grid,
    boundary: str,
) -> torch.Tensor:
    """d(rho, mx, my, E)/dt from the viscous stress, in conservative face-flux form."""
    q = to_primitive(u, gamma)
    vel = q[:, 1:3]  # (N, 2, X, Y)
    fx = _viscous_face_flux(vel, eta, zeta, grid.dx, grid.dy, boundary)  # (N, 3, X+1, Y)
    gy = _viscous_face_flux(swap_xy(vel, (0, 1)), eta, zeta, grid.dy, grid.dx, boundary)
    gy = swap_xy(gy, (0, 1))  # (N, 3, X, Y+1) as (y-momentum... restored order), energy
    div = (fx[:, :, 1:] - fx[:, :, :-1]) / grid.dx + (gy[:, :, :, 1:] - gy[:, :, :, :-1]) / grid.dy
    return torch.cat([torch.zeros_like(div[:, :1]), div], dim=1)


def _viscous_face_flux(
    vel: torch.Tensor, eta: torch.Tensor, zeta: torch.Tensor, dn: float, dt_: float, boundary: str
) -> torch.Tensor:
    """Stress flux (sigma_xx, sigma_xy, v . sigma_x) at x-faces, (N, 3, X+1, Y)."""
    vp = pad_x(vel, boundary, 1)  # (N, 2, X+2, Y)
    # Tangential (y) derivatives at cell centres; the y axis is padded the same way.
    vpy = pad_x(vp.transpose(2, 3), boundary, 1).transpose(2, 3)  # (N, 2, X+2, Y+2)
    d_t = (vpy[:, :, :, 2:] - vpy[:, :, :, :-2]) / (2 * dt_)  # (N, 2, X+2, Y)
    d_n = (vp[:, :, 1:] - vp[:, :, :-1]) / dn  # normal derivative at faces, (N, 2, X+1, Y)
    d_t = 0.5 * (d_t[:, :, 1:] + d_t[:, :, :-1])
    v_face = 0.5 * (vp[:, :, 1:] + vp[:, :, :-1])
    div = d_n[:, 0] + d_t[:, 1]
    sxx = eta * (2 * d_n[:, 0] - 2.0 / 3.0 * div) + zeta * div
    sxy = eta * (d_n[:, 1] + d_t[:, 0])
    work = v_face[:, 0] * sxx + v_face[:, 1] * sxy
    # Stress enters the momentum flux with a minus sign; rhs = -div(flux) = +div(sigma).
    return torch.stack([sxx, sxy, work], dim=1)


def solve(
    state: torch.Tensor,
    grid: Grid,
    params: Mapping[str, Any],
    t_frames: torch.Tensor,
    *,
    options: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Frames (N, T, 4, X, Y) of (vx, vy, density, pressure) from ``state`` in that order."""
    opts = {**OPTIONS, **(options or {})}
    n = state.shape[0]
    gamma_all = params["gamma"].view(n, 1, 1)
    eta_all, zeta_all = params["eta"].view(n, 1, 1), params["zeta"].view(n, 1, 1)
    nu_all = (4.0 / 3.0 * eta_all + zeta_all.abs()).flatten().double()  # (N,) viscous rate
    q0 = state[:, [2, 0, 1, 3]]  # -> (rho, vx, vy, p)

    def hyperbolic(u: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        gamma = gamma_all[idx]
        return flux_divergence(
            to_primitive(u, gamma),
            hllc_flux(gamma),
            dx=grid.dx,
            dy=grid.dy,
            boundary=opts["boundary"],
            limiter=opts["limiter"],
            vel=(1, 2),
            positive=(0, 3),
        )

    def viscous(u: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return viscous_rhs(u, gamma_all[idx], eta_all[idx], zeta_all[idx], grid, opts["boundary"])

    def viscous_dt(u: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Each trajectory's explicit viscous step (inf without viscosity), (A,) float64."""
        rho_min = u[:, 0].flatten(1).amin(1).double()
        nu = nu_all[idx.cpu()].to(rho_min.device)
        h2 = min(grid.dx, grid.dy) ** 2
        return torch.where(nu > 0, VISCOUS_SAFETY * h2 * rho_min / nu, math.inf)

    def step(u: torch.Tensor, dt: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        # Each trajectory takes the path a run of it alone takes: inviscid, unsplit (the
        # viscous step fits in dt: second order in one SSP-RK2 step) or Strang-split
        # with RKL2 viscous halves whose stage count grows like sqrt(dt / dt_v), so a
        # large eta or zeta costs a few extra viscous evaluations instead of shrinking
        # the hyperbolic step. Trajectories on the same path step together.
        dt_v = viscous_dt(u, idx).cpu()
        dts = dt.double().cpu()
        key = torch.tensor(
            [
                -1 if math.isinf(v) else 0 if d <= v else rkl2_stages(0.5 * d, v)
                for d, v in zip(dts.tolist(), dt_v.tolist(), strict=True)
            ]
        )
        out = torch.empty_like(u)
        for k in key.unique().tolist():
            rows = torch.nonzero(key == k).flatten().to(u.device)
            sel = idx[rows]
            w, h = u[rows], dt[rows].view(-1, 1, 1, 1)
            if k < 0:
                w = ssp_rk2(w, h, lambda v, sel=sel: hyperbolic(v, sel))
            elif k == 0:
                w = ssp_rk2(w, h, lambda v, sel=sel: hyperbolic(v, sel) + viscous(v, sel))
            else:
                w = rkl2(w, 0.5 * h, lambda v, sel=sel: viscous(v, sel), k)
                w = ssp_rk2(w, h, lambda v, sel=sel: hyperbolic(v, sel))
                w = rkl2(w, 0.5 * h, lambda v, sel=sel: viscous(v, sel), k)
            out[rows] = w
        return out

    def stable_dt(u: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        gamma = gamma_all[idx]
        q = to_primitive(u, gamma)
        c = torch.sqrt(gamma * q[:, 3] / q[:, 0])
        rate = (q[:, 1].abs() + c) / grid.dx + (q[:, 2].abs() + c) / grid.dy
        return opts["cfl"] / rate.flatten(1).amax(1).double()  # (A,)

    def to_frame(u: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return to_primitive(u, gamma_all[idx])[:, [1, 2, 0, 3]]

    return integrate(
        "cns",
        to_conserved(q0, gamma_all),
        t_frames,
        step=step,
        stable_dt=stable_dt,
        to_frame=to_frame,
        positive=((2, "density"), (3, "pressure")),
        progress=progress,
    )
