"""Session-scoped simulations shared by the PDE tests (tiny grids, short times)."""

import pytest
import torch

from scifm.mpp.pde import simulate


@pytest.fixture(scope="session")
def small_runs():
    """One short run per system at 32^2, float32, two trajectories each."""
    kw = {"res": 32, "seed": 3}
    return {
        "swe": simulate("swe", 2, n_frames=6, t_end=0.5, **kw),
        "diffreact": simulate("diffreact", 2, n_frames=6, t_end=0.5, **kw),
        "ins": simulate("ins", 2, n_frames=6, t_end=0.5, **kw),
        "cns": simulate("cns", 2, n_frames=3, t_end=0.02, **kw),
    }


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
