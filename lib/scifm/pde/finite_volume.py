"""Shared second-order finite-volume machinery: ghost cells, MUSCL, SSP-RK2.

Used by the shallow-water and compressible Navier-Stokes solvers. Fluxes are
computed along the x axis (dim 2 of (N, C, X, Y)); the y direction reuses the same
code on the transposed state with the two velocity components swapped, so one
flux function per system serves both directions. References: van Leer's MUSCL
(J. Comput. Phys. 32, 1979), the monotonized-central limiter, and the SSP-RK2
(Heun) scheme of Shu & Osher (1988).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

BOUNDARIES = ("periodic", "outflow")
LIMITERS = ("minmod", "mc")
N_GHOST = 2

Flux = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def pad_x(q: torch.Tensor, boundary: str, n: int = N_GHOST) -> torch.Tensor:
    """Add ``n`` ghost cells on both ends of the x axis of q (N, C, X, Y)."""
    if boundary == "periodic":
        return torch.cat([q[:, :, -n:], q, q[:, :, :n]], dim=2)
    if boundary == "outflow":  # zero-gradient (transmissive) ghost cells
        return F.pad(q, (0, 0, n, n), mode="replicate")
    raise ValueError(f"boundary {boundary!r}: expected one of {BOUNDARIES}")


def _minmod(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # (sign a + sign b) / 2 is +-1 where a and b agree in sign, else 0: no branches.
    return 0.5 * (torch.sign(a) + torch.sign(b)) * torch.minimum(a.abs(), b.abs())


def limited_slope(qp: torch.Tensor, limiter: str) -> torch.Tensor:
    """Limited slopes of the padded cells 1..-2 along x; qp (N, C, X+4, Y) -> (N, C, X+2, Y)."""
    dl = qp[:, :, 1:-1] - qp[:, :, :-2]
    dr = qp[:, :, 2:] - qp[:, :, 1:-1]
    if limiter == "minmod":
        return _minmod(dl, dr)
    if limiter == "mc":
        centred = 0.5 * (dl + dr)
        return _minmod(centred, 2 * _minmod(dl, dr))
    raise ValueError(f"limiter {limiter!r}: expected one of {LIMITERS}")


def face_states(
    q: torch.Tensor,
    boundary: str,
    limiter: str,
    positive: tuple[int, ...] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    """MUSCL left/right states at the X+1 x-faces of the cells of q (N, C, X, Y).

    Channels in ``positive`` (depth, density, pressure) fall back to first order in
    a cell whose reconstructed face value would not be positive.
    """
    qp = pad_x(q, boundary)  # (N, C, X+4, Y)
    s = limited_slope(qp, limiter)  # slopes of padded cells 1..X+2
    if positive:
        centre = qp[:, list(positive), 1:-1]
        half = 0.5 * s[:, list(positive)]
        ok = ((centre - half.abs()) > 0).all(dim=1, keepdim=True)
        s = torch.where(ok, s, torch.zeros_like(s))
    left = qp[:, :, 1:-2] + 0.5 * s[:, :, :-1]  # cell i side of face i+1/2
    right = qp[:, :, 2:-1] - 0.5 * s[:, :, 1:]  # cell i+1 side
    return left, right


def swap_xy(q: torch.Tensor, vel: tuple[int, int]) -> torch.Tensor:
    """Transpose the spatial axes and swap the two velocity channels ``vel``."""
    order = list(range(q.shape[1]))
    order[vel[0]], order[vel[1]] = order[vel[1]], order[vel[0]]
    return q[:, order].transpose(2, 3)


def flux_divergence(
    q: torch.Tensor,
    flux: Flux,
    *,
    dx: float,
    dy: float,
    boundary: str,
    limiter: str,
    vel: tuple[int, int],
    positive: tuple[int, ...] = (),
) -> torch.Tensor:
    """-(dF/dx + dG/dy) for primitive state q (N, C, X, Y); ``flux`` works along x."""
    left, right = face_states(q, boundary, limiter, positive)
    fx = flux(left, right)  # (N, C, X+1, Y)
    qt = swap_xy(q, vel)
    left, right = face_states(qt, boundary, limiter, positive)
    gy = swap_xy(flux(left, right), vel)  # back to (N, C, X, Y+1) with channels in place
    return -(fx[:, :, 1:] - fx[:, :, :-1]) / dx - (gy[:, :, :, 1:] - gy[:, :, :, :-1]) / dy


def ssp_rk2(
    u: torch.Tensor, dt: float | torch.Tensor, rhs: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """One strong-stability-preserving RK2 (Heun) step of du/dt = rhs(u).

    ``dt`` is a number or a tensor broadcastable to u, e.g. (N, 1, 1, 1): one step per sample.
    """
    u1 = u + dt * rhs(u)
    return 0.5 * (u + u1 + dt * rhs(u1))


def rkl2_stages(dt: float, dt_explicit: float) -> int:
    """Fewest RKL2 stages s (>= 2) with dt <= dt_explicit (s^2 + s - 2) / 4."""
    ratio = dt / dt_explicit
    s = math.ceil(0.5 * (-1 + math.sqrt(9 + 16 * ratio)))
    return max(2, s)


def rkl2(
    u: torch.Tensor,
    dt: float | torch.Tensor,
    rhs: Callable[[torch.Tensor], torch.Tensor],
    stages: int,
) -> torch.Tensor:
    """One step of second-order Runge-Kutta-Legendre super time stepping.

    Meyer, Balsara & Aslam, J. Comput. Phys. 257 (2014): ``stages`` evaluations of a
    parabolic ``rhs`` cover dt up to (s^2 + s - 2) / 4 forward-Euler-stable steps. Each
    stage is a linear combination of flux-form updates, so totals are conserved.
    """
    s = stages
    w1 = 4.0 / (s * s + s - 2)

    def b(j: int) -> float:
        return 1.0 / 3.0 if j < 2 else (j * j + j - 2) / (2.0 * j * (j + 1))

    l0 = rhs(u)
    y_prev2, y_prev = u, u + b(1) * w1 * dt * l0
    for j in range(2, s + 1):
        mu = (2 * j - 1) / j * b(j) / b(j - 1)
        nu = -(j - 1) / j * b(j) / b(j - 2)
        mu_t = mu * w1
        gamma_t = -(1 - b(j - 1)) * mu_t
        y = (
            mu * y_prev
            + nu * y_prev2
            + (1 - mu - nu) * u
            + mu_t * dt * rhs(y_prev)
            + gamma_t * dt * l0
        )
        y_prev2, y_prev = y_prev, y
    return y_prev
