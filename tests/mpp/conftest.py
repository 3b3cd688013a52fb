"""Fixtures for the MPP tests: toy trajectories that need no PDE solver."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny models run fastest single-threaded on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def toy_fields(n: int, n_frames: int, n_fields: int, res: int, seed: int) -> torch.Tensor:
    """(n, n_frames, n_fields, res, res) of random Fourier modes advected on a torus."""
    g = torch.Generator().manual_seed(seed)
    x = torch.arange(res) / res
    X, Y = torch.meshgrid(x, x, indexing="ij")
    t = torch.arange(n_frames) * 0.05
    out = torch.zeros(n, n_frames, n_fields, res, res)
    for _ in range(3):
        kx, ky = torch.randint(1, 3, (2, n, n_fields, 1, 1, 1), generator=g).float()
        amp = torch.rand(n, n_fields, 1, 1, 1, generator=g) + 0.5
        phase = 2 * math.pi * torch.rand(n, n_fields, 1, 1, 1, generator=g)
        vel = torch.rand(n, 1, 1, 1, 1, generator=g) + 0.5
        arg = 2 * math.pi * (kx * (X - vel * t[:, None, None]) + ky * Y) + phase
        out += (amp * torch.sin(arg)).permute(0, 2, 1, 3, 4)
    return out + 2.0


@pytest.fixture(scope="session")
def make_toy_fields():
    return toy_fields


@pytest.fixture(scope="session")
def toy_sets():
    from scifm.pde.windows import TrajectoryWindows

    def windows(name, fields, index, periodic):
        return TrajectoryWindows(fields, system=name, n_ctx=4, field_index=index, periodic=periodic)

    a = windows("toy_a", toy_fields(3, 10, 2, 32, seed=1), (4, 5), True)
    b = windows("toy_b", toy_fields(3, 10, 1, 32, seed=2), (0,), False)
    return [a, b]


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script("mpp_evidence")``: a script of benchmarks/ imported the way it runs,
    with its folder on sys.path while it imports (its sibling modules are found)."""

    def load(name: str):
        with pytest.MonkeyPatch.context() as mp:
            mp.syspath_prepend(str(BENCHMARKS))
            return importlib.import_module(name)

    return load
