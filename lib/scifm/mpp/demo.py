"""One solver-vs-surrogate comparison, the computation behind the "physics" page.

Simulate a trajectory of one system from a seed (or a chosen dam radius / Mach number),
roll the pretrained AViT out from its first T frames, and return truth, prediction, error
and per-step NRMSE with both wall times. Pure compute: no GUI, no files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from scifm.mpp.experiment import VARIANTS, system_info
from scifm.mpp.metrics import nmse_per_field
from scifm.mpp.model import AViT
from scifm.mpp.rollout import model_step, rollout

# physical inputs the page exposes: name -> (variant it applies to, lower, upper)
LIMITS = {"radius": ("swe", 0.1, 1.5), "mach": ("cns", 0.01, 2.0)}
MAX_STEPS = 60


@dataclass
class Comparison:
    system: str
    field_names: list[str]
    truth: np.ndarray  # (S, C, H, W) solver frames after the context
    pred: np.ndarray  # (S, C, H, W) surrogate rollout
    nrmse: np.ndarray  # (S,) NRMSE of each step
    solver_s: float  # wall time of the solver for the whole trajectory
    surrogate_s: float  # wall time of the rollout
    context: int  # frames given to the surrogate
    # (S,) NRMSE of persistence (the last given frame repeated): the bar a surrogate must beat
    persistence: np.ndarray | None = None

    @property
    def error(self) -> np.ndarray:
        return self.pred - self.truth


def check_inputs(
    system: str,
    seed: int,
    steps: int,
    res: int,
    radius: float | None = None,
    mach: float | None = None,
) -> None:
    """Raise ValueError naming the bad input and the accepted range."""
    if system not in VARIANTS:
        raise ValueError(f"system {system!r}: choose one of {sorted(VARIANTS)}")
    if not 1 <= int(steps) <= MAX_STEPS:
        raise ValueError(f"steps={steps}: choose between 1 and {MAX_STEPS}")
    if res not in (16, 32, 64):
        raise ValueError(f"resolution {res}: choose 16, 32 or 64")
    if not 0 <= int(seed) < 2**31:
        raise ValueError(f"seed={seed}: choose an integer in [0, 2^31)")
    for name, value in (("radius", radius), ("mach", mach)):
        if value is None:
            continue
        _, lo, hi = LIMITS[name]
        if not (np.isfinite(value) and lo <= value <= hi):
            raise ValueError(f"{name}={value}: choose a value between {lo} and {hi}")


def dam_break_state(radius: float, res: int) -> torch.Tensor:
    """SWE initial depth (1, 1, res, res): 2 inside ``radius``, 1 outside, cell-averaged
    as the solver's own random dam breaks are (``scifm.pde.swe.initial_state``)."""
    from scifm.pde import Grid, get_system
    from scifm.pde.swe import disc_fraction

    frac = disc_fraction(Grid.make(res, get_system("swe").domain), float(radius))
    return (1.0 + frac)[None, None].float()


def compare(
    model: AViT,
    system: str,
    *,
    seed: int = 0,
    steps: int = 20,
    res: int = 32,
    frames_per_unit: float = 24.0,
    radius: float | None = None,
    mach: float | None = None,
    field_index: list[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Comparison:
    """Solver vs surrogate on one trajectory; ``frames_per_unit`` sets the frame spacing
    (the shipped model saw 25 frames over each system's PDEBench time span)."""
    from scifm.pde import get_system

    check_inputs(system, seed, steps, res, radius, mach)
    T = model.config.n_frames
    spec = get_system(VARIANTS[system][0])
    n_frames = T + steps
    t_end = spec.t_end * (n_frames - 1) / frames_per_unit
    kwargs: dict = {"M": float(mach)} if mach is not None and spec.name == "cns" else {}
    from scifm.pde import simulate

    t0 = time.perf_counter()
    if radius is not None and spec.name == "swe":
        traj = simulate(
            "swe",
            res=res,
            n_frames=n_frames,
            t_end=t_end,
            initial_state=dam_break_state(radius, res),
        )
    else:
        traj = simulate(
            VARIANTS[system][0],
            1,
            res=res,
            n_frames=n_frames,
            t_end=t_end,
            seed=seed,
            params={**VARIANTS[system][1], **kwargs},
        )
    solver_s = time.perf_counter() - t0
    info = system_info(system)
    device = next(model.parameters()).device
    fields = traj.fields.float().to(device)
    step = model_step(model, field_index or info["field_index"], info["periodic"])
    t0 = time.perf_counter()
    cb = (lambda k: progress(k, steps)) if progress else None
    pred, err = rollout(step, fields[:, :T], steps, truth=fields[:, T:], callback=cb)
    surrogate_s = time.perf_counter() - t0
    last = fields[:, T - 1]
    persistence = np.array(
        [float(nmse_per_field(last, fields[:, T + k]).sqrt().mean()) for k in range(steps)]
    )
    return Comparison(
        system,
        info["fields"],
        fields[0, T:].cpu().numpy(),
        pred[0].cpu().numpy(),
        err.numpy(),
        solver_s,
        surrogate_s,
        T,
        persistence,
    )
