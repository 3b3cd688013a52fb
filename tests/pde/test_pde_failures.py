"""Failed runs stop with an error naming the system, the step and the time."""

import pytest
import torch

from scifm.pde import SimulationError, simulate


def test_unphysical_initial_state_is_refused_at_step_zero():
    state = torch.ones(1, 4, 16, 16)
    state[0, 3, 3, 3] = -1.0  # negative pressure
    with pytest.raises(SimulationError, match=r"cns: .* step 0, t=0: pressure <= 0") as info:
        simulate("cns", res=16, initial_state=state)
    assert (info.value.system, info.value.step, info.value.time) == ("cns", 0, 0.0)


def test_nan_in_initial_state_is_refused():
    state = torch.zeros(1, 2, 16, 16)
    state[0, 0, 1, 1] = float("nan")
    with pytest.raises(SimulationError, match="diffreact.*non-finite"):
        simulate("diffreact", res=16, initial_state=state)


def test_unstable_run_stops_at_the_step_it_blows_up():
    # A CFL number of 3 is far past the scheme's stability limit.
    with pytest.raises(SimulationError) as info:
        simulate("swe", 1, res=32, n_frames=3, t_end=1.0, params={"cfl": 3.0})
    err = info.value
    assert err.system == "swe" and err.step > 0 and 0 < err.time <= 1.0
    assert f"step {err.step}" in str(err)


def test_forcing_is_refused_outside_ins():
    with pytest.raises(ValueError, match="unknown for cns"):
        simulate("cns", res=16, params={"forcing": torch.zeros(1, 2, 16, 16)})
