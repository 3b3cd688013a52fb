"""Device choice, local generators, and bf16 autocast (CUDA only)."""

import pytest
import torch

from scifm.core import autocast, numpy_rng, pick_device, torch_generator
from scifm.core.testing import TinyConfig, TinyMLP


def test_pick_device_defaults_and_override(monkeypatch):
    monkeypatch.delenv("SCIFM_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else None
    dev = pick_device()
    if expected:
        assert dev.type == expected
    monkeypatch.setenv("SCIFM_DEVICE", "cpu")
    assert pick_device().type == "cpu"
    assert pick_device("cpu") == torch.device("cpu")


def test_pick_device_rejects_bad_names():
    with pytest.raises(ValueError, match="'tpu'"):
        pick_device("tpu")
    with pytest.raises(ValueError, match="'meta'"):
        pick_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")


def test_generators_are_local():
    state = torch.get_rng_state()
    a = torch.randn(3, generator=torch_generator(7))
    b = torch.randn(3, generator=torch_generator(7))
    assert torch.equal(a, b) and torch.equal(state, torch.get_rng_state())
    assert numpy_rng([1, 2]).random() == numpy_rng([1, 2]).random()
    assert numpy_rng([1, 2]).random() != numpy_rng([1, 3]).random()


def test_autocast_is_noop_on_cpu():
    model = TinyMLP(TinyConfig())
    with autocast(torch.device("cpu")):
        out = model(torch.randn(2, 8))
    assert out.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bf16_autocast_on_cuda():
    dev = torch.device("cuda")
    model = TinyMLP(TinyConfig()).to(dev)
    with autocast(dev):
        out = model(torch.randn(2, 8, device=dev))
    assert out.dtype == torch.bfloat16
