"""Device choice, local generators, and bf16 autocast (CUDA only)."""

import pytest
import torch

from scifm.core import autocast, numpy_rng, pick_device, torch_generator
from scifm.core.testing import TinyConfig, TinyMLP


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(False, False, "cpu"), (True, False, "cuda"), (False, True, "mps"), (True, True, "cuda")],
)
def test_pick_device_default_order(monkeypatch, cuda, mps, expected):
    # Availability is patched, so every branch runs on any machine; no device is touched.
    monkeypatch.delenv("SCIFM_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device() == torch.device(expected)


def test_pick_device_environment_and_argument_override(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("SCIFM_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")  # the environment beats available CUDA
    monkeypatch.setenv("SCIFM_DEVICE", "tpu")
    assert pick_device("cpu") == torch.device("cpu")  # the argument beats the environment
    with pytest.raises(ValueError, match="'tpu'"):
        pick_device()


def test_pick_device_refuses_an_unavailable_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda:0")
    with pytest.raises(ValueError, match="MPS is not available"):
        pick_device("mps")


def test_pick_device_rejects_bad_names():
    with pytest.raises(ValueError, match="'tpu'"):
        pick_device("tpu")
    with pytest.raises(ValueError, match="'meta'"):
        pick_device("meta")


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


def test_eval_mode_gives_the_mode_back_even_when_the_block_raises():
    from scifm.core import eval_mode

    model = torch.nn.Sequential(torch.nn.Dropout(0.5))
    with eval_mode(model) as m:
        assert m is model and not model.training
    assert model.training
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        raise RuntimeError("boom")
    assert model.training  # dropout is back on for the training loop
    model.eval()
    with eval_mode(model):
        pass
    assert not model.training  # an eval-mode model stays in eval mode
