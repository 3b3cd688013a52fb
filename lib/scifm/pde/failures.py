"""Failure detection: a run that produces NaN or an unphysical state stops loudly.

A solver calls ``check_state`` after every step; the error names the system, the
step and the simulated time, so nothing downstream ever stores a bad frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class SimulationError(RuntimeError):
    """A solver produced a non-finite or unphysical state."""

    def __init__(self, system: str, step: int, time: float, reason: str) -> None:
        self.system, self.step, self.time, self.reason = system, step, time, reason
        super().__init__(f"{system}: simulation failed at step {step}, t={time:.6g}: {reason}")


def check_state(
    system: str,
    step: int,
    time: float,
    state: torch.Tensor,
    *,
    positive: Sequence[tuple[int, str]] = (),
    index: torch.Tensor | None = None,
) -> None:
    """Raise ``SimulationError`` if ``state`` (N, C, X, Y) has NaN/inf or a channel <= 0.

    ``positive`` lists ``(channel, name)`` pairs that must stay strictly positive
    (depth, density, pressure). ``index`` (N,) gives the rows' trajectory numbers in the
    whole batch when ``state`` holds a subset of it; the error names those numbers.
    """

    def named(mask: torch.Tensor) -> list[int]:
        rows = torch.nonzero(mask).flatten().cpu()
        return (rows if index is None else index.cpu()[rows]).tolist()

    finite = torch.isfinite(state).flatten(1).all(dim=1)  # (N,)
    if not bool(finite.all()):
        bad = named(~finite)
        raise SimulationError(system, step, time, f"non-finite values in trajectories {bad[:8]}")
    for channel, name in positive:
        low = state[:, channel].flatten(1).amin(dim=1)  # (N,)
        if not bool((low > 0).all()):
            bad = named(low <= 0)
            raise SimulationError(
                system,
                step,
                time,
                f"{name} <= 0 (min {float(low.min()):.3g}) in trajectories {bad[:8]}",
            )
