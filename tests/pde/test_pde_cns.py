"""Compressible Navier-Stokes: Sod, conservation, convergence order, viscous decay."""

import math

import numpy as np
import pytest
import torch

from scifm.pde import Grid, simulate
from scifm.pde.cns import to_conserved
from scifm.pde.verification import (
    convergence_orders,
    isentropic_vortex_error,
    sod_shock_tube,
)


@pytest.fixture(scope="module")
def sod_runs(single_thread):
    with single_thread():
        return {axis: sod_shock_tube(400, axis) for axis in ("x", "y")}


@pytest.mark.parametrize("axis", ["x", "y"])
def test_sod_matches_exact_riemann_solution(sod_runs, axis):
    # Reference: exact Riemann solution (Toro ch. 4), Gamma = 5/3, t = 0.2, 400 cells.
    res = sod_runs[axis]
    print(f"Sod along {axis}: relative L1 errors {res.l1}")
    assert res.l1["rho"] < 0.02
    assert res.l1["p"] < 0.02
    assert np.abs(res.numeric["u"] - res.exact["u"]).mean() < 0.02


def test_sod_along_y_is_the_transpose_of_sod_along_x(sod_runs):
    np.testing.assert_allclose(
        sod_runs["x"].numeric["rho"], sod_runs["y"].numeric["rho"], atol=1e-12
    )


def test_mass_momentum_energy_conserved_to_round_off():
    # Periodic domain, flux form (inviscid and viscous): totals change only by round-off.
    traj = simulate(
        "cns",
        2,
        res=32,
        n_frames=3,
        t_end=0.01,
        seed=5,
        dtype=torch.float64,
        params={"M": 1.0, "eta": 0.05, "zeta": 0.05},
    )
    q = traj.fields[:, :, [2, 0, 1, 3]]  # (N, T, rho vx vy p)
    cons = torch.stack(
        [to_conserved(q[:, t], torch.tensor(5 / 3, dtype=torch.float64)) for t in range(3)], 1
    )
    totals = cons.sum((-1, -2))  # (N, T, 4)
    scale = cons.abs().sum((-1, -2))[:, :1]
    drift = ((totals - totals[:, :1]) / scale).abs().max()
    assert float(drift) < 1e-12
    assert float((traj.fields[:, -1] - traj.fields[:, 0]).abs().max()) > 1e-3


def test_isentropic_vortex_converges_at_second_order():
    # Reference: the exact solution is the initial vortex translated by the mean flow.
    res = [16, 32, 64]
    errors = [isentropic_vortex_error(n) for n in res]
    orders = convergence_orders(res, errors)
    print(f"isentropic vortex density L1 errors {errors}, orders {orders}")
    assert orders[-1] > 1.7
    assert errors[-1] < errors[0] / 8


@pytest.mark.parametrize(("eta", "t_end"), [(0.1, 0.2), (1.0, 0.02)])
def test_viscous_shear_wave_decays_at_the_analytic_rate(eta, t_end):
    # Reference: vy = A sin(2 pi x) at uniform rho, p decays as exp(-eta k^2 t / rho)
    # (linear regime). eta is large enough that the viscous part takes RKL2 super-steps
    # (3 stages at eta = 0.1, 10 at eta = 1).
    grid = Grid.make(32, (0.0, 1.0, 0.0, 1.0))
    xx, _ = grid.mesh()
    k, amp = 2 * math.pi, 1e-3
    state = torch.stack([0 * xx, amp * torch.sin(k * xx), 1 + 0 * xx, 1 + 0 * xx])[None]
    traj = simulate(
        "cns",
        res=32,
        n_frames=3,
        t_end=t_end,
        dtype=torch.float64,
        initial_state=state,
        params={"eta": eta, "zeta": 0.0},
    )
    vy = traj.fields[0, -1, 1]
    measured = float((vy * torch.sin(k * xx)).sum() / (torch.sin(k * xx) ** 2).sum()) / amp
    exact = math.exp(-eta * k**2 * t_end)
    assert abs(measured - exact) / exact < 0.01
    assert exact < 0.5


def test_random_initial_conditions_follow_pdebench(small_runs):
    traj = small_runs["cns"]
    p = traj.params
    for key in ("d0", "T0"):
        assert bool(((p[key] >= 0.1) & (p[key] <= 10)).all())
    f0 = traj.fields[:, 0].double()
    mean_speed = torch.sqrt(f0[:, 0] ** 2 + f0[:, 1] ** 2).mean((-1, -2))
    cs = torch.sqrt(5 / 3 * p["T0"].double())
    windowed = p["windowed"].bool()
    torch.testing.assert_close(mean_speed[~windowed], 0.1 * cs[~windowed], rtol=1e-4, atol=0)
    assert bool((mean_speed <= 0.1 * cs * (1 + 1e-4)).all())
    rel = (f0[:, 2] / p["d0"].double()[:, None, None] - 1).abs().amax((-1, -2))
    assert bool((rel <= p["delta_rho"].double() + 1e-6).all())


def test_turbulent_variant_is_broadband():
    kw = {"res": 64, "n_frames": 2, "t_end": 1e-4, "seed": 0}
    smooth = simulate("cns", 1, params={"M": 1.0}, **kw)
    turb = simulate("cns", 1, params={"M": 1.0, "turbulent": 1.0}, **kw)
    assert not smooth.params["windowed"].bool().any()  # so the smooth field has |k| <= 4

    def high_k_fraction(traj):
        spec = torch.fft.rfft2(traj.fields[0, 0, 0].double()).abs() ** 2
        kx = torch.fft.fftfreq(64).abs()[:, None] * 64
        ky = torch.fft.rfftfreq(64)[None, :] * 64
        return float(spec[(kx > 4) | (ky > 4)].sum() / spec.sum())

    assert high_k_fraction(smooth) < 1e-6
    assert high_k_fraction(turb) > 0.01


def test_rkl2_is_second_order_and_stable_far_past_euler_stability():
    # Reference: du/dt = -u has u(t) = exp(-t). RKL2 with s stages (Meyer et al. 2014) is
    # second order and stable for dt up to (s^2 + s - 2) / 2 (forward Euler: 2).
    from scifm.pde.finite_volume import rkl2, rkl2_stages

    one = torch.ones(1, dtype=torch.float64)
    for s in (3, 6):
        errors = []
        for dt in (0.4, 0.2, 0.1):
            u = one
            for _ in range(round(2 / dt)):
                u = rkl2(u, dt, lambda w: -w, s)
            errors.append(abs(float(u[0]) - math.exp(-2)))
        orders = convergence_orders([1, 2, 4], errors)
        assert min(orders) > 1.9, orders
        edge = (s * s + s - 2) / 2
        amp = [abs(float(rkl2(one, z, lambda w: -w, s)[0])) for z in np.linspace(0, edge, 101)]
        assert max(amp) <= 1 + 1e-12
    assert rkl2_stages(20.0, 1.0) == 9  # (81 + 9 - 2) / 4 = 22 >= 20 > (64 + 8 - 2) / 4
