"""Session-scoped simulations shared by the PDE tests (tiny grids, short times)."""

import contextlib

import pytest
import torch

from scifm.pde import simulate


@contextlib.contextmanager
def one_thread():
    """Tiny grids run fastest on one thread, above all on a shared, busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="session")
def small_runs():
    """One short run per system at 32^2, float32, two trajectories each."""
    kw = {"res": 32, "seed": 3}
    with one_thread():
        return {
            "swe": simulate("swe", 2, n_frames=6, t_end=0.5, **kw),
            "diffreact": simulate("diffreact", 2, n_frames=6, t_end=0.5, **kw),
            "ins": simulate("ins", 2, n_frames=6, t_end=0.5, **kw),
            "cns": simulate("cns", 2, n_frames=3, t_end=0.02, **kw),
        }


@pytest.fixture(scope="session")
def single_thread():
    """The ``one_thread`` context manager, for other expensive module fixtures."""
    return one_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield
