"""Exact solution of the Riemann problem of the 1D Euler equations (ideal gas).

Toro, "Riemann Solvers and Numerical Methods for Fluid Dynamics", ch. 4: Newton
iteration for the star pressure, then sampling of the self-similar solution. Used as
the reference for the Sod shock-tube verification of the compressible solver.
"""

from __future__ import annotations

import numpy as np


def _f(p: float, rho: float, pk: float, gamma: float) -> tuple[float, float]:
    """Toro's pressure function for one side and its derivative."""
    c = np.sqrt(gamma * pk / rho)
    if p > pk:  # shock
        a, b = 2 / ((gamma + 1) * rho), (gamma - 1) / (gamma + 1) * pk
        q = np.sqrt(a / (p + b))
        return (p - pk) * q, q * (1 - 0.5 * (p - pk) / (p + b))
    ratio = p / pk  # rarefaction
    f = 2 * c / (gamma - 1) * (ratio ** ((gamma - 1) / (2 * gamma)) - 1)
    return f, ratio ** (-(gamma + 1) / (2 * gamma)) / (rho * c)


def exact_riemann(
    left: tuple[float, float, float],
    right: tuple[float, float, float],
    xi: np.ndarray,
    gamma: float = 5.0 / 3.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rho, u, p) at similarity coordinates ``xi = (x - x0) / t`` for states (rho, u, p)."""
    rl, ul, pl = left
    rr, ur, pr = right
    cl, cr = np.sqrt(gamma * pl / rl), np.sqrt(gamma * pr / rr)
    p = max(1e-12, 0.5 * (pl + pr))
    for _ in range(100):
        fl, dl = _f(p, rl, pl, gamma)
        fr, dr = _f(p, rr, pr, gamma)
        p_new = max(1e-12, p - (fl + fr + ur - ul) / (dl + dr))
        if abs(p_new - p) < 1e-14 * p:
            p = p_new
            break
        p = p_new
    fl, _ = _f(p, rl, pl, gamma)
    fr, _ = _f(p, rr, pr, gamma)
    u = 0.5 * (ul + ur) + 0.5 * (fr - fl)
    rho, vel, pres = (np.empty_like(xi, dtype=np.float64) for _ in range(3))
    g1, g2 = (gamma - 1) / (gamma + 1), 2 / (gamma + 1)
    for i, s in enumerate(np.asarray(xi, dtype=np.float64)):
        if s <= u:  # left of the contact
            rho_k, u_k, p_k, c_k, sign = rl, ul, pl, cl, 1.0
        else:
            rho_k, u_k, p_k, c_k, sign = rr, ur, pr, cr, -1.0
        ratio = p / p_k
        if p > p_k:  # shock on this side
            speed = u_k - sign * c_k * np.sqrt(
                (gamma + 1) / (2 * gamma) * ratio + (gamma - 1) / (2 * gamma)
            )
            behind = sign * (s - speed) >= 0
            star = rho_k * (ratio + g1) / (g1 * ratio + 1)
            rho[i], vel[i], pres[i] = (star, u, p) if behind else (rho_k, u_k, p_k)
            continue
        c_star = c_k * ratio ** ((gamma - 1) / (2 * gamma))
        head, tail = u_k - sign * c_k, u - sign * c_star
        if sign * (s - head) <= 0:  # not yet reached by the fan
            rho[i], vel[i], pres[i] = rho_k, u_k, p_k
        elif sign * (s - tail) >= 0:  # star region
            rho[i], vel[i], pres[i] = rho_k * ratio ** (1 / gamma), u, p
        else:  # inside the fan
            v = g2 * (sign * c_k + (gamma - 1) / 2 * u_k + s)
            c = sign * g2 * (c_k + sign * (gamma - 1) / 2 * (u_k - s))
            rho[i] = rho_k * (c / c_k) ** (2 / (gamma - 1))
            vel[i], pres[i] = v, p_k * (c / c_k) ** (2 * gamma / (gamma - 1))
    return rho, vel, pres
