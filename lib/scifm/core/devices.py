"""Device choice and mixed precision.

Nothing in scifm calls ``.cuda()``: callers pass a ``torch.device`` chosen here.
Randomness always flows through local generators (never global seeding), so two
pieces of code cannot perturb each other's streams: see ``rng.py``, whose
``torch_generator`` and ``numpy_rng`` are importable from here too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from scifm.core.rng import numpy_rng, torch_generator

__all__ = [
    "autocast", "bf16_supported", "eval_mode", "numpy_rng", "pick_device", "torch_generator",
]  # fmt: skip

_VALID = ("cuda", "mps", "cpu")


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the device to run on: ``prefer`` if given, else CUDA, then MPS, then CPU.

    ``SCIFM_DEVICE`` in the environment overrides the automatic choice.
    """
    choice = prefer if prefer is not None else os.environ.get("SCIFM_DEVICE")
    if choice is not None:
        bad = f"device {choice!r}: expected one of {_VALID} (e.g. 'cuda:0')"
        try:
            dev = torch.device(choice)
        except RuntimeError as exc:
            raise ValueError(bad) from exc
        if dev.type not in _VALID:
            raise ValueError(bad)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {choice!r} requested but CUDA is not available here")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {choice!r} requested but MPS is not available here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def bf16_supported(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """bf16 autocast on CUDA when ``enabled``; a no-op on CPU/MPS (fp32 there)."""
    if enabled and bf16_supported(device):
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            yield
    else:
        yield


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` in eval mode for the block, its train/eval mode given back afterwards, also
    when the block raises (an evaluation inside a training loop must not leave dropout off)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
