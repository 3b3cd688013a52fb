"""The frame loop every solver shares: step with a stable dt, land exactly on frame times.

A solver supplies three closures: ``step(state, dt) -> state``, ``stable_dt(state) ->
float`` and ``to_frame(state) -> (N, C, X, Y)`` (the saved fields). After every step the
frame is checked (finite, positive channels), see ``failures.check_state``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from scifm.pde.failures import SimulationError, check_state

Step = Callable[[torch.Tensor, float], torch.Tensor]


def integrate(
    system: str,
    state: torch.Tensor,
    t_frames: torch.Tensor,
    *,
    step: Step,
    stable_dt: Callable[[torch.Tensor], float],
    to_frame: Callable[[torch.Tensor], torch.Tensor],
    positive: Sequence[tuple[int, str]] = (),
    max_steps: int = 10_000_000,
    progress: bool = False,
) -> torch.Tensor:
    """Advance ``state`` through ``t_frames`` (T,), returning frames (N, T, C, X, Y)."""
    times = [float(t) for t in t_frames]
    first = to_frame(state)
    check_state(system, 0, times[0], first, positive=positive)
    frames = first.new_empty((first.shape[0], len(times), *first.shape[1:]))
    frames[:, 0] = first
    t, n_steps = times[0], 0
    bar = tqdm(total=len(times) - 1, desc=system, disable=not progress, leave=False)
    for k, t_next in enumerate(times[1:], start=1):
        while t < t_next - 1e-12 * max(1.0, abs(t_next)):
            dt = stable_dt(state)
            if not math.isfinite(dt) or dt <= 0:
                raise SimulationError(system, n_steps, t, f"stable time step is {dt}")
            remaining = t_next - t
            # Take equal sub-steps to the next frame rather than one tiny last step.
            dt = remaining / math.ceil(remaining / dt * (1 - 1e-9))
            state = step(state, dt)
            t = t + dt if t_next - (t + dt) > 1e-12 * max(1.0, abs(t_next)) else t_next
            n_steps += 1
            check_state(system, n_steps, t, to_frame(state), positive=positive)
            if n_steps >= max_steps:
                raise SimulationError(system, n_steps, t, f"exceeded max_steps={max_steps}")
        frames[:, k] = to_frame(state)
        bar.update(1)
    bar.close()
    return frames
