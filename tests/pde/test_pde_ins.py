"""Incompressible Navier-Stokes: Taylor-Green decay, divergence-free velocity."""

import math

import torch

from scifm.pde import Grid, simulate
from scifm.pde.ins import Spectral


def test_taylor_green_vortex_decays_at_the_analytic_rate():
    # Reference: v = (sin kx cos ky, -cos kx sin ky) exp(-2 nu k^2 t) solves NS exactly.
    grid = Grid.make(32, (0.0, 1.0, 0.0, 1.0))
    xx, yy = grid.mesh()
    k, nu = 2 * math.pi, 0.01
    init = torch.stack(
        [
            torch.sin(k * xx) * torch.cos(k * yy),
            -torch.cos(k * xx) * torch.sin(k * yy),
            torch.sin(k * xx),
        ]
    )[None]
    traj = simulate(
        "ins",
        res=32,
        n_frames=6,
        t_end=1.0,
        initial_state=init,
        dtype=torch.float64,
        params={"nu": nu, "forcing": torch.zeros(1, 2, 32, 32)},
    )
    decay = torch.exp(-2 * nu * k**2 * traj.t.double())  # (T,)
    expected = init[0, :2] * decay[:, None, None, None]
    err = (traj.fields[0, :, :2] - expected).abs().amax() / expected.abs().amax()
    assert float(err) < 0.01
    assert float(decay[-1]) < 0.6


def test_velocity_is_divergence_free_to_round_off():
    traj = simulate("ins", 2, res=32, n_frames=4, t_end=0.5, seed=2, dtype=torch.float64)
    sp = Spectral(Grid.make(32, (0.0, 1.0, 0.0, 1.0)), "cpu", torch.float64)
    v = traj.fields[:, -1]
    div = sp.ifft(1j * sp.kx * sp.fft(v[:, 0]) + 1j * sp.ky * sp.fft(v[:, 1]))
    grad = sp.ifft(1j * sp.kx * sp.fft(v[:, 0]))
    assert float(div.abs().max()) < 1e-10 * float(grad.abs().max())


def test_random_run_moves_scalar_and_conserves_its_mean(small_runs):
    traj = small_runs["ins"]
    assert traj.fields.shape == (2, 6, 3, 32, 32)
    assert traj.params["forcing"].shape == (2, 2, 32, 32)
    s = traj.fields[:, :, 2]
    torch.testing.assert_close(
        s.mean((-1, -2)), s[:, :1].mean((-1, -2)).expand(-1, 6), atol=1e-5, rtol=0
    )
    assert float((s[:, -1] - s[:, 0]).abs().max()) > 1e-2
