"""The frame loop every solver shares: each trajectory steps with its own stable dt.

A solver supplies three closures that work on a subset of the batch, named by ``idx``
(the positions (A,) of those trajectories in the batch, to select their parameters):

- ``step(state, dt, idx) -> state``: advance ``state`` (A, ...) by ``dt`` (A,), one
  time step per trajectory;
- ``stable_dt(state, idx) -> (A,)``: each trajectory's largest stable step;
- ``to_frame(state, idx) -> (A, C, X, Y)``: the saved fields.

Every trajectory advances on its own clock: it takes equal sub-steps to its next frame
time (the same rule a run of that trajectory alone uses) and is frozen once it has all
its frames, so only trajectories still running are computed. A batch therefore costs
about the sum of its trajectories' own step counts, never (batch size) x (the stiffest
trajectory's step count), and a trajectory's frames match a run of it alone to
round-off. After every step the new frames are checked (finite, positive channels),
see ``failures.check_state``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from scifm.pde.failures import SimulationError, check_state

Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Rate = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def integrate(
    system: str,
    state: torch.Tensor,
    t_frames: torch.Tensor,
    *,
    step: Step,
    stable_dt: Rate,
    to_frame: Rate,
    positive: Sequence[tuple[int, str]] = (),
    max_steps: int = 10_000_000,
    progress: bool = False,
) -> torch.Tensor:
    """Advance ``state`` (N, ...) through ``t_frames`` (T,), returning frames (N, T, C, X, Y)."""
    n = state.shape[0]
    times = t_frames.detach().to("cpu", torch.float64)  # clocks stay float64 on the CPU
    all_idx = torch.arange(n, device=state.device)  # for the solver's closures
    first = to_frame(state, all_idx)
    check_state(system, 0, float(times[0]), first, positive=positive)
    frames = first.new_empty((n, len(times), *first.shape[1:]))
    frames[:, 0] = first
    t = times[0].repeat(n)  # (N,) each trajectory's own time
    k = torch.ones(n, dtype=torch.long)  # (N,) index of each trajectory's next frame
    n_steps = torch.zeros(n, dtype=torch.long)
    # The bookkeeping (t, k, n_steps, run) stays on the CPU: a CUDA index into it fails.
    _record_due(frames, first, torch.arange(n), t, k, times)
    bar = tqdm(total=len(times) - 1, desc=system, disable=not progress, leave=False)
    done_frames = 0
    while bool((k < len(times)).any()):
        run = torch.nonzero(k < len(times)).flatten()  # (A,) trajectories still running
        idx = run.to(state.device)
        sub = state if len(run) == n else state[idx]
        target = times[k[run]]
        dt = stable_dt(sub, idx).detach().to("cpu", torch.float64)
        bad = ~(torch.isfinite(dt) & (dt > 0))
        if bool(bad.any()):
            i = int(run[bad][0])
            reason = f"stable time step is {float(dt[bad][0])} in trajectory {i}"
            raise SimulationError(system, int(n_steps[i]), float(t[i]), reason)
        remaining = target - t[run]
        # Equal sub-steps to the next frame rather than one tiny last step.
        dt = remaining / torch.ceil(remaining / dt * (1 - 1e-9))
        sub = step(sub, dt.to(state.device, state.real.dtype), idx)
        t_new = t[run] + dt
        t[run] = torch.where(target - t_new > 1e-12 * target.abs().clamp_min(1.0), t_new, target)
        n_steps[run] += 1
        frame = to_frame(sub, idx)
        check_state(
            system,
            int(n_steps[run].max()),
            float(t[run].min()),
            frame,
            positive=positive,
            index=run,
        )
        if len(run) == n:
            state = sub
        else:
            state[idx] = sub
        _record_due(frames, frame, run, t, k, times)
        if int(n_steps[run].max()) >= max_steps:
            i = int(run[n_steps[run].argmax()])
            raise SimulationError(system, max_steps, float(t[i]), f"exceeded max_steps={max_steps}")
        low = int(k.min()) - 1
        bar.update(low - done_frames)
        done_frames = low
    bar.close()
    return frames


def _record_due(
    frames: torch.Tensor,
    frame: torch.Tensor,
    run: torch.Tensor,
    t: torch.Tensor,
    k: torch.Tensor,
    times: torch.Tensor,
) -> None:
    """Store ``frame`` (A, C, X, Y) of trajectories ``run`` that reached their next frame time.

    A loop, since repeated frame times are all due at once.
    """
    n_times = len(times)
    while True:
        live = k[run] < n_times
        kk = k[run].clamp_max(n_times - 1)
        target = times[kk]
        due = live & (t[run] >= target - 1e-12 * target.abs().clamp_min(1.0))
        if not bool(due.any()):
            return
        rows = run[due]
        frames[rows.to(frames.device), k[rows].to(frames.device)] = frame[due.to(frame.device)]
        k[rows] += 1
