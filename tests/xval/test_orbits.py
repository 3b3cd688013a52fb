"""The leapfrog integrator: energy conservation and agreement with REBOUND."""

import numpy as np
import pytest

from scifm.xval.orbits import energy, integrate, sample_systems


def test_energy_is_conserved() -> None:
    sys = sample_systems(20, np.random.default_rng(0), n_planets=(2, 5))
    pos, vel = integrate(sys, np.array([0.0, 30.0]))
    e0, e1 = energy(sys.mass, pos[:, 0], vel[:, 0]), energy(sys.mass, pos[:, 1], vel[:, 1])
    assert np.abs((e1 - e0) / e0).max() < 1e-5


def test_initial_conditions_follow_the_paper() -> None:
    sys = sample_systems(500, np.random.default_rng(1), n_planets=(2, 5))
    m = sys.mass[:, 1:]
    assert ((m == 0) | ((m >= 1e-5) & (m <= 5e-5))).all()
    assert set(sys.n_planets.tolist()) <= {2, 3, 4, 5}
    assert (sys.a_max >= 1.5).all() and (sys.a_max <= 3.0).all()
    r = np.linalg.norm(sys.pos[:, 1] - sys.pos[:, 0], axis=-1)  # innermost planet: a = 1
    assert (r > 0.89).all() and (r < 1.11).all()


def test_agrees_with_rebound() -> None:
    rebound = pytest.importorskip("rebound")
    sys = sample_systems(3, np.random.default_rng(2), n_planets=(3, 3))
    pos, _ = integrate(sys, np.array([5.0]), dt=1e-3)
    for s in range(3):
        sim = rebound.Simulation()
        sim.G = 1.0
        for j in range(sys.mass.shape[1]):
            sim.add(m=sys.mass[s, j], x=sys.pos[s, j, 0], y=sys.pos[s, j, 1],
                    vx=sys.vel[s, j, 0], vy=sys.vel[s, j, 1])  # fmt: skip
        sim.integrate(5.0)
        ref = np.array([[p.x, p.y] for p in sim.particles])
        np.testing.assert_allclose(pos[s, 0], ref, atol=1e-5)
