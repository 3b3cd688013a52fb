"""Planetary orbits for the xVal orbit task: initial conditions, integrator, text.

Systems follow the xVal paper: a unit central mass, 2-5 planets with masses
U(1e-5, 5e-5), semi-major axes evenly spaced from 1 to ``a_max`` ~ U(1.5, 3),
eccentricities U(0, 0.1) and angles U(0, 2 pi) (all angles 0 with probability
0.3), G = 1. The reference used REBOUND; here a vectorized kick-drift-kick
leapfrog (symplectic, second order) integrates a whole batch of systems at once.
``tests/xval`` checks its energy conservation and compares it with REBOUND.

The task text built from these systems is in ``scifm.xval.tasks`` (``orbit_samples``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Systems:
    """A batch of planetary systems (body 0 is the star; unused planets have mass 0)."""

    mass: np.ndarray  # (S, N) masses, star first
    pos: np.ndarray  # (S, N, 2) positions, barycentric
    vel: np.ndarray  # (S, N, 2) velocities, barycentric
    n_planets: np.ndarray  # (S,) planets actually present
    a_max: np.ndarray  # (S,) semi-major axis of the outermost planet


def _kepler_state(a, e, omega, mean_anomaly, mu):
    """Position and velocity of a 2-body orbit from its elements (planar)."""
    ecc = mean_anomaly.copy()
    for _ in range(30):  # Newton on E - e sin E = M (e <= 0.1 converges fast)
        ecc = ecc - (ecc - e * np.sin(ecc) - mean_anomaly) / (1 - e * np.cos(ecc))
    cos_e, sin_e = np.cos(ecc), np.sin(ecc)
    b = np.sqrt(1 - e**2)
    px, py = a * (cos_e - e), a * b * sin_e
    r = a * (1 - e * cos_e)
    n_dot = np.sqrt(mu / a) / r * a  # dE/dt * a
    vx, vy = -n_dot * sin_e, n_dot * b * cos_e
    co, so = np.cos(omega), np.sin(omega)
    pos = np.stack([co * px - so * py, so * px + co * py], -1)
    vel = np.stack([co * vx - so * vy, so * vx + co * vy], -1)
    return pos, vel


def sample_systems(
    n: int,
    rng: np.random.Generator,
    *,
    n_planets: tuple[int, int] = (2, 5),
    a_max_range: tuple[float, float] = (1.5, 3.0),
    a_hole: tuple[float, float] | None = None,
) -> Systems:
    """``n`` systems with the paper's distributions; ``a_max`` avoids ``a_hole`` if given."""
    k_max = n_planets[1]
    k = rng.integers(n_planets[0], k_max + 1, n)
    a_max = rng.uniform(*a_max_range, n)
    if a_hole is not None:  # redraw outside the held-out band
        lo, hi = a_hole
        inside = (a_max >= lo) & (a_max < hi)
        width = (a_max_range[1] - a_max_range[0]) - (hi - lo)
        u = rng.uniform(0, width, n)
        below = lo - a_max_range[0]
        a_max = np.where(inside, np.where(u < below, a_max_range[0] + u, hi + u - below), a_max)
    j = np.arange(k_max)[None]
    frac = j / np.maximum(k - 1, 1)[:, None]
    a = 1 + frac * (a_max - 1)[:, None]  # (S, K) evenly spaced from 1 to a_max
    present = j < k[:, None]
    m = np.where(present, rng.uniform(1e-5, 5e-5, (n, k_max)), 0.0)
    e = rng.uniform(0, 0.1, (n, k_max))
    zero = rng.random(n) < 0.3
    omega = np.where(zero[:, None], 0.0, rng.uniform(0, 2 * np.pi, (n, k_max)))
    mean_anom = np.where(zero[:, None], 0.0, rng.uniform(0, 2 * np.pi, (n, k_max)))
    p, v = _kepler_state(a, e, omega, mean_anom, 1.0 + m)
    mass = np.concatenate([np.ones((n, 1)), m], 1)
    pos = np.concatenate([np.zeros((n, 1, 2)), p], 1)
    vel = np.concatenate([np.zeros((n, 1, 2)), v], 1)
    com_p = (mass[..., None] * pos).sum(1, keepdims=True) / mass.sum(1)[:, None, None]
    com_v = (mass[..., None] * vel).sum(1, keepdims=True) / mass.sum(1)[:, None, None]
    return Systems(mass, pos - com_p, vel - com_v, k, a_max)


def _accel(mass: np.ndarray, pos: np.ndarray) -> np.ndarray:
    d = pos[:, None, :, :] - pos[:, :, None, :]  # (S, N, N, 2): from i to j
    r2 = (d**2).sum(-1)
    idx = np.arange(pos.shape[1])
    r2[:, idx, idx] = np.inf  # no self-force
    return (mass[:, None, :, None] * d / r2[..., None] ** 1.5).sum(2)


def integrate(
    systems: Systems, t_out: np.ndarray, *, dt: float = 5e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Leapfrog to each time in ``t_out``; returns positions, velocities (S, len(t), N, 2)."""
    pos, vel, mass = systems.pos.copy(), systems.vel.copy(), systems.mass
    out_p, out_v, t = [], [], 0.0
    acc = _accel(mass, pos)
    for target in np.asarray(t_out, dtype=np.float64):
        n_sub = int(np.ceil((target - t) / dt - 1e-9))
        h = (target - t) / n_sub if n_sub > 0 else 0.0
        for _ in range(n_sub):
            vel += 0.5 * h * acc
            pos += h * vel
            acc = _accel(mass, pos)
            vel += 0.5 * h * acc
        t = float(target)
        out_p.append(pos.copy())
        out_v.append(vel.copy())
    return np.stack(out_p, 1), np.stack(out_v, 1)


def energy(mass: np.ndarray, pos: np.ndarray, vel: np.ndarray) -> np.ndarray:
    """Total energy (S,) of systems with ``mass`` (S, N), ``pos``/``vel`` (S, N, 2)."""
    kin = 0.5 * (mass * (vel**2).sum(-1)).sum(-1)
    d = np.sqrt(((pos[:, None] - pos[:, :, None]) ** 2).sum(-1))
    iu = np.triu_indices(pos.shape[1], 1)
    mm = mass[:, :, None] * mass[:, None, :]
    return kin - (mm[:, iu[0], iu[1]] / d[:, iu[0], iu[1]]).sum(-1)
