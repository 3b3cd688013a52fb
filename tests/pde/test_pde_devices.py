"""The same code on CUDA (skipped without a GPU) and params passed back in."""

import pytest
import torch

from scifm.pde import simulate

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("system", ["swe", "diffreact", "ins", "cns"])
def test_cuda_matches_cpu_in_float64(system):
    kw = {"res": 32, "n_frames": 3, "t_end": 0.01, "seed": 2, "dtype": torch.float64}
    cpu = simulate(system, 2, device="cpu", **kw)
    gpu = simulate(system, 2, device="cuda", **kw)
    assert gpu.fields.device.type == "cuda"
    torch.testing.assert_close(gpu.fields.cpu(), cpu.fields, rtol=1e-9, atol=1e-9)


def test_rerun_from_returned_params_and_state_reproduces_the_run(small_runs):
    traj = small_runs["ins"]
    again = simulate(
        "ins",
        res=32,
        n_frames=6,
        t_end=0.5,
        initial_state=traj.fields[:, 0],
        params={k: traj.params[k] for k in ("nu", "kappa", "forcing")},
    )
    torch.testing.assert_close(again.fields, traj.fields, rtol=1e-5, atol=1e-5)
