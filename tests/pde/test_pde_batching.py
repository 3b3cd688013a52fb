"""Per-trajectory time steps: a batch equals its trajectories run alone, at their own cost."""

import pytest
import torch

from scifm.pde import simulate
from scifm.pde.failures import SimulationError
from scifm.pde.simulate import SOLVERS
from scifm.pde.stepping import integrate

F64 = torch.float64

# Per-trajectory parameters that make the members of a batch differ in stiffness (cns:
# viscosities from inviscid through unsplit to several RKL2 stage counts).
CASES = {
    "swe": ({"g": [1.0, 2.0, 0.5, 1.5]}, 3, 0.3),
    "diffreact": ({"Du": [1e-3, 4e-3, 1e-3, 2e-3]}, 6, None),
    "ins": ({"nu": [0.01, 0.03, 0.005, 0.01]}, 3, 0.5),
    "cns": ({"M": 1.0, "eta": [0.0, 1e-3, 0.05, 0.3], "zeta": [0.0, 1e-3, 0.05, 0.1]}, 3, 0.04),
}


@pytest.mark.parametrize("system", list(CASES))
def test_batch_of_four_equals_four_single_runs(system):
    params, n_frames, t_end = CASES[system]
    kw = {"res": 16, "n_frames": n_frames, "t_end": t_end, "dtype": F64}
    first = simulate(system, 4, seed=5, params=params, **kw)
    module = SOLVERS[system]
    keep = set(module.DEFAULTS) | set(getattr(module, "FIELD_PARAMS", ()))
    given = {k: v for k, v in first.params.items() if k in keep}
    init = first.fields[:, 0]
    # The batch and the single runs start from the same saved frame (INS's saved velocity
    # is the projection of its drawn one, so the seeded batch is not the reference).
    batch = simulate(system, initial_state=init, params=given, **kw).fields
    for i in range(4):
        one = {k: v[i : i + 1] for k, v in given.items()}
        alone = simulate(system, initial_state=init[i : i + 1], params=one, **kw).fields[0]
        torch.testing.assert_close(batch[i], alone, rtol=0, atol=1e-10)


def _decay(rates: list[float], t_end: float = 1.0, n_frames: int = 3):
    """du/dt = -r u by forward Euler at dt = 1 / r; counts the steps each sample takes."""
    rate = torch.tensor(rates, dtype=F64)
    steps = torch.zeros(len(rates), dtype=torch.long)

    def step(u, dt, idx):
        steps[idx] += 1
        return u * (1 - rate[idx] * dt).view(-1, 1, 1, 1)

    frames = integrate(
        "decay",
        torch.ones(len(rates), 1, 2, 2, dtype=F64),
        torch.linspace(0, t_end, n_frames, dtype=F64),
        step=step,
        stable_dt=lambda u, idx: 0.5 / rate[idx],
        to_frame=lambda u, idx: u,
        positive=((0, "u"),),
    )
    return frames, steps


def test_each_trajectory_takes_its_own_steps_and_is_frozen_when_done():
    frames, steps = _decay([1.0, 100.0, 10.0])
    alone = [_decay([r])[1].item() for r in (1.0, 100.0, 10.0)]
    assert steps.tolist() == alone  # the stiff member does not slow the others down
    assert alone[0] < alone[2] < alone[1]
    for i, r in enumerate((1.0, 100.0, 10.0)):
        torch.testing.assert_close(frames[i], _decay([r])[0][0], rtol=0, atol=0)


def test_repeated_frame_times_and_failure_names_the_trajectory():
    t = torch.tensor([0.0, 0.5, 0.5, 1.0], dtype=F64)
    frames = integrate(
        "decay",
        torch.ones(2, 1, 2, 2, dtype=F64),
        t,
        step=lambda u, dt, idx: u * (1 - dt).view(-1, 1, 1, 1),
        stable_dt=lambda u, idx: torch.full((len(idx),), 0.1, dtype=F64),
        to_frame=lambda u, idx: u,
    )
    torch.testing.assert_close(frames[:, 1], frames[:, 2])
    assert bool((frames[:, 3] < frames[:, 1]).all())
    rate = torch.tensor([1.0, 4.0], dtype=F64)
    with pytest.raises(SimulationError, match=r"u <= 0 .*trajectories \[1\]"):
        integrate(  # dt = 0.5 is unstable for the second trajectory only
            "decay",
            torch.ones(2, 1, 2, 2, dtype=F64),
            t,
            step=lambda u, dt, idx: u * (1 - rate[idx] * dt).view(-1, 1, 1, 1),
            stable_dt=lambda u, idx: torch.full((len(idx),), 0.5, dtype=F64),
            to_frame=lambda u, idx: u,
            positive=((0, "u"),),
        )
