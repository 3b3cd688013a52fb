"""Diffusion-reaction (FitzHugh-Nagumo) solver."""

import math

import pytest
import torch

from scifm.pde import Grid, simulate


def test_cosine_mode_decays_at_the_analytic_rate():
    # Reference: with the reaction off, u_t = D lap u with no-flux walls has the exact
    # solution cos(m pi (x - x0) / L) cos(n pi (y - y0) / L) exp(-D pi^2 (m^2 + n^2) t / L^2).
    grid = Grid.make(64, (-1.0, 1.0, -1.0, 1.0))
    xx, yy = grid.mesh()
    m, n, d, t_end = 2, 1, 0.02, 2.0
    mode = torch.cos(m * math.pi * (xx + 1) / 2) * torch.cos(n * math.pi * (yy + 1) / 2)
    init = torch.stack([mode, mode], 0)[None]
    traj = simulate(
        "diffreact",
        res=64,
        n_frames=5,
        t_end=t_end,
        initial_state=init,
        dtype=torch.float64,
        params={"reaction": 0.0, "Du": d, "Dv": d / 2},
    )
    for c, dc in ((0, d), (1, d / 2)):
        amp = (traj.fields[0, :, c] * mode).sum((-1, -2)) / (mode * mode).sum()
        exact = torch.exp(-dc * math.pi**2 * (m**2 + n**2) / 4 * traj.t.double())
        err = float(((amp - exact) / exact).abs().max())
        assert err < 1e-3, f"field {c}: relative decay error {err:.2e}"
        assert float(exact[-1]) < 0.85  # the test sees real decay


def test_random_run_is_deterministic_finite_and_bounded(small_runs):
    traj = small_runs["diffreact"]
    again = simulate("diffreact", 2, res=32, n_frames=6, t_end=0.5, seed=3)
    torch.testing.assert_close(traj.fields, again.fields)
    other = simulate("diffreact", 2, res=32, n_frames=6, t_end=0.5, seed=4)
    assert not torch.allclose(traj.fields, other.fields)
    assert traj.fields.shape == (2, 6, 2, 32, 32)
    assert bool(torch.isfinite(traj.fields).all())
    # FitzHugh-Nagumo relaxes the N(0,1) start toward |u| <~ 1.
    assert float(traj.fields[:, -1, 0].abs().max()) < float(traj.fields[:, 0, 0].abs().max())


def test_float64_and_float32_agree(small_runs):
    f64 = simulate("diffreact", 2, res=32, n_frames=6, t_end=0.5, seed=3, dtype=torch.float64)
    assert f64.fields.dtype == torch.float64
    torch.testing.assert_close(
        small_runs["diffreact"].fields.double(), f64.fields, atol=1e-4, rtol=1e-4
    )


def test_bad_params_are_named():
    with pytest.raises(ValueError, match="unknown for diffreact"):
        simulate("diffreact", res=16, params={"viscosity": 1.0})
    with pytest.raises(ValueError, match="initial_state for diffreact"):
        simulate("diffreact", res=16, initial_state=torch.zeros(1, 3, 16, 16))
