"""``simulate``: the one entry point to the four PDE solvers.

    traj = simulate("cns", 8, res=64, n_frames=21, seed=0, params={"M": 0.1})
    traj.fields  # (8, 21, 4, 64, 64): vx, vy, density, pressure

Random initial conditions follow PDEBench (Takamoto et al., 2022); a caller may pass
its own ``initial_state`` (N, C, X, Y) in the system's field order instead. Random
draws happen on the CPU in float64 from a local generator seeded by ``seed``, so a
seed gives the same initial conditions on every device and dtype.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import torch

from scifm.pde import cns, diffreact, ins, swe
from scifm.pde.grid import Grid, per_sample
from scifm.pde.systems import get_system
from scifm.pde.trajectories import Trajectories

SOLVERS: dict[str, ModuleType] = {"swe": swe, "diffreact": diffreact, "ins": ins, "cns": cns}


def simulate(
    system: str,
    n: int = 1,
    *,
    res: int | tuple[int, int] | None = None,
    n_frames: int | None = None,
    t_end: float | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    params: Mapping[str, Any] | None = None,
    initial_state: torch.Tensor | None = None,
    domain: tuple[float, float, float, float] | None = None,
    progress: bool = False,
) -> Trajectories:
    """Simulate ``n`` trajectories of ``system``; defaults are PDEBench's (see ``systems``).

    ``params`` overrides physical parameters (a scalar for all trajectories or one
    value per trajectory) and solver options (e.g. ``{"boundary": "outflow"}`` for cns).
    Raises ``SimulationError`` (system, step, time) if the run goes non-finite or
    unphysical; no partial frames are returned.
    """
    spec = get_system(system)
    module = SOLVERS[system]
    device = torch.device(device)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype {dtype}: expected torch.float32 or torch.float64")
    params, options = _split_params(system, module, params or {})
    grid = Grid.make(res if res is not None else spec.res, domain or spec.domain)
    n_frames = spec.n_frames if n_frames is None else int(n_frames)
    t_end = spec.t_end if t_end is None else float(t_end)
    if n_frames < 2 or not (t_end > 0 and math.isfinite(t_end)):
        raise ValueError(f"n_frames={n_frames}, t_end={t_end}: expected >= 2 frames and t_end > 0")

    merged: dict[str, Any] = {**module.DEFAULTS, **params}
    if initial_state is None:
        if n < 1:
            raise ValueError(f"n={n}: expected at least one trajectory")
        gen = torch.Generator().manual_seed(int(seed))
        state, extra = module.initial_state(n, grid, merged, gen, device=device, dtype=dtype)
        merged.update(extra)
    else:
        state = _check_initial_state(initial_state, system, spec.n_fields, grid)
        state = state.to(device=device, dtype=dtype)
        n = int(state.shape[0])
    tensors = {
        k: (
            per_sample(merged, k, n, device=device, dtype=dtype)
            if k in module.DEFAULTS  # scalars: one per trajectory; fields pass through
            else torch.as_tensor(v).to(device=device, dtype=dtype)
        )
        for k, v in merged.items()
    }
    t_frames = torch.linspace(0.0, t_end, n_frames, dtype=torch.float64)
    frames = module.solve(state, grid, tensors, t_frames, options=options, progress=progress)
    return Trajectories(
        system=system,
        fields=frames,
        field_names=spec.field_names,
        t=t_frames.to(device=device, dtype=dtype),
        x=grid.x(device, dtype),
        y=grid.y(device, dtype),
        params=tensors,
    )


def parameter_ranges(
    system: str, params: Mapping[str, Any] | None = None
) -> dict[str, tuple[float, float]]:
    """(low, high) of every scalar parameter ``simulate(system, params=params)`` gives a trajectory.

    Physical parameters are the solver's defaults overridden by ``params`` (a scalar is a
    point range, a per-trajectory list its min and max); the solver's ``SAMPLED`` values
    (e.g. the SWE dam radius, the CNS base density) are the uniform ranges its random
    initial state draws from. Names are those written to files (PDEBench attributes, Well
    scalars).
    """
    module = SOLVERS[get_system(system).name]
    physical, _ = _split_params(system, module, params or {})
    out: dict[str, tuple[float, float]] = {}
    for k, v in {**module.DEFAULTS, **physical}.items():
        if k in module.DEFAULTS:  # per-trajectory fields (INS forcing) have no range
            a = torch.as_tensor(v, dtype=torch.float64).flatten()
            out[k] = (float(a.min()), float(a.max()))
    return {**out, **{k: (float(lo), float(hi)) for k, (lo, hi) in module.SAMPLED.items()}}


def _split_params(
    system: str, module: ModuleType, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(physical parameters, solver options) from one user mapping; unknown keys refused."""
    field_params = set(getattr(module, "FIELD_PARAMS", ()))
    known = set(module.DEFAULTS) | set(module.OPTIONS) | field_params
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"params {unknown}: unknown for {system}; expected keys from {sorted(known)}"
        )
    options = {**module.OPTIONS, **{k: v for k, v in params.items() if k in module.OPTIONS}}
    physical = {k: v for k, v in params.items() if k not in module.OPTIONS}
    return physical, options


def _check_initial_state(
    state: torch.Tensor, system: str, n_fields: int, grid: Grid
) -> torch.Tensor:
    state = torch.as_tensor(state)
    expected = (n_fields, grid.nx, grid.ny)
    if state.ndim == 3:
        state = state.unsqueeze(0)
    if state.ndim != 4 or tuple(state.shape[1:]) != expected:
        raise ValueError(
            f"initial_state for {system}: shape {tuple(state.shape)}; expected "
            f"(N, {n_fields}, {grid.nx}, {grid.ny}) in the system's field order"
        )
    return state
