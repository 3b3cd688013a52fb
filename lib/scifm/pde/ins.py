"""2D incompressible Navier-Stokes with a passive scalar and a steady forcing field.

    div v = 0,   v_t + v . grad v = -grad p + nu lap v + f,   s_t + v . grad s = kappa lap s

nu = 0.01 with random smooth initial velocity and forcing, as in PDEBench's
``ns_incom_inhom_2d`` sets (Takamoto et al., 2022); the scalar s is the "particles"
field. Unlike PDEBench (no-slip walls) the domain here is periodic, which allows a
pseudo-spectral vorticity-streamfunction method: w = curl v evolves as
w_t + v . grad w = nu lap w + curl f; velocity comes from the streamfunction (so it
is divergence-free to round-off); products are de-aliased with the 2/3 rule; time
stepping is integrating-factor RK4, exact for the viscous decay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from scifm.pde.grid import Grid
from scifm.pde.stepping import integrate

DEFAULTS: dict[str, float] = {
    "nu": 0.01,  # kinematic viscosity (PDEBench)
    "kappa": 0.002,  # scalar diffusivity; keeps the passive scalar resolved on coarse grids
    "v_rms": 0.5,  # rms speed of the random initial velocity
    "f_rms": 0.5,  # rms magnitude of the random forcing
}
OPTIONS: dict[str, Any] = {"cfl": 0.5}
FIELD_PARAMS = ("forcing",)  # per-trajectory fields: forcing (N, 2, X, Y)
SAMPLED: dict[str, tuple[float, float]] = {}  # random fields scaled to v_rms, f_rms: no scalar
K_PEAK = 3.0  # wavenumber (in units of 2 pi / L) where random fields carry most energy


class Spectral:
    """Wavenumbers, de-aliasing mask and transforms on a periodic grid."""

    def __init__(self, grid: Grid, device: Any, dtype: torch.dtype) -> None:
        self.shape = (grid.nx, grid.ny)
        kx = 2 * math.pi * torch.fft.fftfreq(grid.nx, d=grid.dx, dtype=torch.float64)
        ky = 2 * math.pi * torch.fft.rfftfreq(grid.ny, d=grid.dy, dtype=torch.float64)
        self.kx = kx[:, None].to(device=device, dtype=dtype)  # (X, 1)
        self.ky = ky[None, :].to(device=device, dtype=dtype)  # (1, Y//2+1)
        k2 = self.kx**2 + self.ky**2
        self.k2 = k2
        self.inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
        mx = torch.fft.fftfreq(grid.nx, dtype=torch.float64).abs()[:, None] < 1 / 3
        my = torch.fft.rfftfreq(grid.ny, dtype=torch.float64)[None, :] < 1 / 3
        self.dealias = (mx & my).to(device)

    def fft(self, f: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft2(f)

    def ifft(self, f_hat: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(f_hat, s=self.shape)

    def velocity(self, w_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spectral (vx, vy) from vorticity: psi = w / k^2, vx = psi_y, vy = -psi_x."""
        psi = w_hat * self.inv_k2
        return 1j * self.ky * psi, -1j * self.kx * psi

    def curl(self, fx: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
        """Spectral curl d(fy)/dx - d(fx)/dy of physical fields."""
        return 1j * self.kx * self.fft(fy) - 1j * self.ky * self.fft(fx)


def _random_solenoidal(
    n: int, sp: Spectral, grid: Grid, gen: torch.Generator, rms: torch.Tensor
) -> torch.Tensor:
    """Random smooth divergence-free fields (N, 2, X, Y) with the given rms magnitude."""
    k = torch.sqrt(sp.k2.double().cpu()) / (2 * math.pi / max(grid.lx, grid.ly))
    envelope = k * torch.exp(-((k / K_PEAK) ** 2))  # (X, Y//2+1)
    shape = (n, *envelope.shape)
    noise = torch.complex(
        torch.randn(shape, generator=gen, dtype=torch.float64),
        torch.randn(shape, generator=gen, dtype=torch.float64),
    )
    psi_hat = noise * envelope / torch.where(k > 0, k**2, 1.0)
    kx, ky = sp.kx.double().cpu(), sp.ky.double().cpu()
    v = torch.stack([sp.ifft(1j * ky * psi_hat), sp.ifft(-1j * kx * psi_hat)], dim=1)
    cur = v.pow(2).sum(1).mean((1, 2)).sqrt().clamp_min(1e-12)
    return v * (rms.double() / cur)[:, None, None, None]


def initial_state(
    n: int,
    grid: Grid,
    params: Mapping[str, Any],
    gen: torch.Generator,
    *,
    device: Any,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Random (vx, vy, particles) (N, 3, X, Y) and a random forcing (N, 2, X, Y)."""
    sp = Spectral(grid, "cpu", torch.float64)
    v_rms = torch.as_tensor(params["v_rms"], dtype=torch.float64).expand(n)
    f_rms = torch.as_tensor(params["f_rms"], dtype=torch.float64).expand(n)
    v = _random_solenoidal(n, sp, grid, gen, v_rms)
    blob = _random_solenoidal(n, sp, grid, gen, torch.ones(n, dtype=torch.float64))[:, 0]
    scalar = 0.5 * (1 + blob / blob.flatten(1).abs().amax(1)[:, None, None])
    state = torch.cat([v, scalar[:, None]], dim=1)
    extra: dict[str, torch.Tensor] = {}
    if "forcing" not in params:
        extra["forcing"] = _random_solenoidal(n, sp, grid, gen, f_rms).to(device, dtype)
    return state.to(device=device, dtype=dtype), extra


def solve(
    state: torch.Tensor,
    grid: Grid,
    params: Mapping[str, Any],
    t_frames: torch.Tensor,
    *,
    options: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Frames (N, T, 3, X, Y) of (vx, vy, particles) from ``state`` in that order."""
    opts = {**OPTIONS, **(options or {})}
    n, dev, dtype = state.shape[0], state.device, state.dtype
    sp = Spectral(grid, dev, dtype)
    nu = params["nu"].view(n, 1, 1)
    kappa = params["kappa"].view(n, 1, 1)
    forcing = params.get("forcing")
    if forcing is None:
        forcing = torch.zeros((n, 2, grid.nx, grid.ny), device=dev, dtype=dtype)
    if forcing.shape != (n, 2, grid.nx, grid.ny):
        raise ValueError(
            f"params['forcing']: shape {tuple(forcing.shape)}; expected ({n}, 2, {grid.nx}, "
            f"{grid.ny})"
        )
    curl_f = sp.curl(forcing[:, 0], forcing[:, 1])  # (N, X, Y//2+1)
    lin = torch.stack([-nu * sp.k2, -kappa * sp.k2], dim=1)  # (N, 2, X, Y//2+1)
    z = torch.stack([sp.curl(state[:, 0], state[:, 1]), sp.fft(state[:, 2])], dim=1)

    def nonlinear(z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        vx_hat, vy_hat = sp.velocity(z[:, 0])
        vx, vy = sp.ifft(vx_hat), sp.ifft(vy_hat)
        out = []
        for q in (z[:, 0], z[:, 1]):
            adv = vx * sp.ifft(1j * sp.kx * q) + vy * sp.ifft(1j * sp.ky * q)
            out.append(-sp.fft(adv) * sp.dealias)
        return torch.stack([out[0] + curl_f[idx], out[1]], dim=1)

    def step(z: torch.Tensor, dt: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        dt = dt.view(-1, 1, 1, 1)
        e = torch.exp(lin[idx] * (0.5 * dt))  # integrating factor over half a step
        k1 = nonlinear(z, idx)
        k2 = nonlinear(e * (z + 0.5 * dt * k1), idx)
        k3 = nonlinear(e * z + 0.5 * dt * k2, idx)
        k4 = nonlinear(e * e * z + dt * e * k3, idx)
        return e * e * z + dt / 6 * (e * e * k1 + 2 * e * (k2 + k3) + k4)

    def to_frame(z: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        vx_hat, vy_hat = sp.velocity(z[:, 0])
        return torch.stack([sp.ifft(vx_hat), sp.ifft(vy_hat), sp.ifft(z[:, 1])], dim=1)

    def stable_dt(z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        speed = to_frame(z)[:, :2].flatten(1).abs().amax(1).double()  # (A,)
        return opts["cfl"] * min(grid.dx, grid.dy) / speed.clamp_min(1e-6)

    return integrate(
        "ins", z, t_frames, step=step, stable_dt=stable_dt, to_frame=to_frame, progress=progress
    )
