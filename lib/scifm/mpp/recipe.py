"""Training for rollouts, not only the next step: input noise, pushforward, per-field loss.

Three options of MPP training, off by default (the ``paper`` preset is McCabe et al.'s
one-step NMSE), each a known remedy for autoregressive surrogates that drift or blow up:

- input noise scaled to each field's RMS over the input window (Sanchez-Gonzalez et al.
  2020; Stachenfeld et al. 2022): the model learns to correct small errors in its input;
- a short autoregressive unroll inside the training window. With ``pushforward`` the
  earlier steps run without gradient and only the last prediction is graded (the
  pushforward trick of Brandstetter, Worrall & Welling, "Message Passing Neural PDE
  Solvers", ICLR 2022): the model is trained on the distribution of its own outputs at
  the cost of one extra forward pass. Without it the gradient flows through every step
  and all predictions are graded (a short unrolled loss, List et al. 2024). With
  ``random_depth`` each batch draws its number of steps uniformly from 1..rollout_steps,
  as the reference code of Brandstetter et al. does (its unrolling list starts at 0 extra
  steps), so plain one-step training on true windows stays in the mix. Without it every
  batch unrolls the full depth and the model never sees a window of only true frames
  (measured: an FNO trained so had a held-out one-step NRMSE of 0.345 on true INS windows
  and 0.083 when its own prediction was the last frame; ``benchmarks/mpp_evidence.py gap``);
- a per-field normalised loss: the paper divides the squared error by mean(y^2), which
  for a field with a large mean (CNS density, pressure) all but ignores its fluctuations;
  ``std`` divides by the field's spatial variance instead, ``delta`` by the squared
  change since the last input frame (1 = as wrong as persistence).

The unroll stays inside the batch dict ``mpp/train.py`` trains on (``x`` (B, T, C, H, W),
``y`` (B, C, H, W)): with ``rollout_steps`` = s the first step starts from the first
T - s + 1 input frames and the window grows by one predicted frame per step, so the
graded last step sees a full T-frame window whose last s - 1 frames are the model's own.
Noise needs a per-batch seed, which ``SeededBatches`` adds as ``batch["noise_seed"]`` (a
pure function of the step, so resumed runs draw the same noise; no global RNG).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from scifm.core import ConfigMixin, torch_generator
from scifm.mpp.metrics import NMSE_EPS, nmse_per_field

LOSS_NORMS = ("rms", "std", "delta")


@dataclass(frozen=True)
class TrainRecipe(ConfigMixin):
    """How the MPP loss treats a batch (see the module docstring)."""

    noise: float = 0.0  # input-noise std as a fraction of each (sample, field) RMS; 0: off
    rollout_steps: int = 1  # autoregressive steps per window (1: the paper's one-step loss)
    pushforward: bool = True  # rollout_steps > 1: grade the last step only, no grad before it
    loss_norm: str = "rms"  # "rms" (paper: / mean y^2), "std" (/ var y) or "delta" (/ change^2)
    seed: int = 0  # base of the per-batch noise seeds (SeededBatches)
    random_depth: bool = False  # each batch unrolls 1..rollout_steps steps (uniform), not all

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},  # McCabe et al.: one-step NMSE
        "stable": {"noise": 0.01, "rollout_steps": 2, "pushforward": True, "loss_norm": "std"},
        "stable_random": {
            "noise": 0.01,
            "rollout_steps": 2,
            "pushforward": True,
            "loss_norm": "std",
            "random_depth": True,
        },
        "unrolled": {"noise": 0.01, "rollout_steps": 3, "pushforward": False, "loss_norm": "std"},
    }

    def __post_init__(self) -> None:
        if not 0 <= self.noise < 1:
            raise ValueError(f"TrainRecipe.noise={self.noise}: expected a fraction in [0, 1)")
        if self.rollout_steps < 1:
            raise ValueError(f"TrainRecipe.rollout_steps={self.rollout_steps}: expected >= 1")
        if self.loss_norm not in LOSS_NORMS:
            raise ValueError(f"TrainRecipe.loss_norm={self.loss_norm!r}: expected {LOSS_NORMS}")


def field_error(
    pred: torch.Tensor, target: torch.Tensor, last: torch.Tensor, norm: str = "rms"
) -> torch.Tensor:
    """(B, C) squared error of each sample and field over ``norm``'s scale of that field.

    ``last`` (B, C, H, W) is the last input frame, the reference of ``delta``.
    """
    if norm == "rms":
        return nmse_per_field(pred, target)
    err = (pred.float() - target.float()).pow(2).mean(dim=(-2, -1))  # (B, C)
    if norm == "std":
        scale = target.float().var(dim=(-2, -1), unbiased=False)
    elif norm == "delta":
        scale = (target.float() - last.float()).pow(2).mean(dim=(-2, -1))
    else:
        raise ValueError(f"loss norm {norm!r}: expected one of {LOSS_NORMS}")
    # Relative floor: a field that is (nearly) constant in space or time is not blown up.
    floor = NMSE_EPS + 1e-6 * target.float().pow(2).mean(dim=(-2, -1))
    return err / (scale + floor)


def add_noise(x: torch.Tensor, scale: float, gen: torch.Generator) -> torch.Tensor:
    """x (B, T, C, H, W) plus Gaussian noise of std ``scale`` x RMS of each (sample, field)."""
    rms = x.float().pow(2).mean(dim=(1, 3, 4), keepdim=True).sqrt()  # (B, 1, C, 1, 1)
    z = torch.randn(x.shape, generator=gen, device=x.device, dtype=torch.float32)
    return (x.float() + scale * rms * z).to(x.dtype)


def unroll(model: nn.Module, batch: dict[str, Any], steps: int, pushforward: bool) -> list:
    """Predictions (B, C, H, W) of the graded steps: all ``steps``, or the last (pushforward).

    Step k predicts frame T - steps + 1 + k of the T + 1 frames (x, y) of the batch.
    """
    x = batch["x"]  # (B, T, C, H, W)
    n_frames = x.shape[1]
    if steps > n_frames:
        raise ValueError(
            f"rollout_steps={steps}: the batch window has only {n_frames} input frames"
        )
    window = x[:, : n_frames - steps + 1]
    preds = []
    for k in range(steps):
        graded = not pushforward or k == steps - 1
        with torch.set_grad_enabled(graded and torch.is_grad_enabled()):
            nxt = model(window, batch["field_index"], batch["periodic"])
        if graded:
            preds.append(nxt)
        window = torch.cat([window, nxt[:, None].to(window.dtype)], dim=1)
    return preds


def recipe_loss(recipe: TrainRecipe):
    """The loss the trainer calls: ``(model, batch) -> (loss, {"nrmse": one-step NRMSE})``."""

    def loss_fn(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        frames = torch.cat([batch["x"], batch["y"][:, None]], dim=1)  # (B, T+1, C, H, W), clean
        if recipe.noise > 0:  # noise on the model's input only; targets stay clean
            gen = torch_generator(_batch_seed(batch, "noise > 0"), batch["x"].device)
            batch = {**batch, "x": add_noise(batch["x"], recipe.noise, gen)}
        preds = unroll(model, batch, _depth(recipe, batch), recipe.pushforward)
        first = frames.shape[1] - len(preds)  # index of the first graded target
        errors = [
            field_error(p, frames[:, first + k], frames[:, first + k - 1], recipe.loss_norm)
            for k, p in enumerate(preds)
        ]  # (B, C) each
        loss = torch.stack([e.mean() for e in errors]).mean()
        nrmse = nmse_per_field(preds[-1].detach(), batch["y"]).sqrt().mean()
        return loss, {"nrmse": float(nrmse)}

    return loss_fn


DEPTH_SALT = 0x9E3779B9  # the unroll-depth draw's stream, apart from the noise's


def _batch_seed(batch: dict[str, Any], why: str) -> int:
    """The batch's ``noise_seed`` (``SeededBatches``), which the recipe's ``why`` needs."""
    if "noise_seed" not in batch:
        raise ValueError(
            f"TrainRecipe.{why}: the batch has no 'noise_seed'; wrap the batch source in "
            "scifm.mpp.recipe.SeededBatches"
        )
    return int(batch["noise_seed"])


def _depth(recipe: TrainRecipe, batch: dict[str, Any]) -> int:
    """This batch's number of unrolled steps: ``rollout_steps``, or a draw from 1..it."""
    if not recipe.random_depth or recipe.rollout_steps == 1:
        return recipe.rollout_steps
    gen = torch_generator(_batch_seed(batch, "random_depth") ^ DEPTH_SALT, "cpu")
    return 1 + int(torch.randint(recipe.rollout_steps, (1,), generator=gen))


class SeededBatches:
    """A batch source whose batches carry ``noise_seed``, a pure function of the step.

    Wraps any ``get(step, micro, rank, world_size)`` source
    (e.g. ``scifm.pde.windows.system_batches``).
    """

    def __init__(self, source: Any, seed: int = 0) -> None:
        self.source, self.seed = source, int(seed)

    def get(self, step: int, micro: int, rank: int = 0, world_size: int = 1) -> dict:
        batch = dict(self.source.get(step, micro, rank, world_size))
        seq = np.random.SeedSequence([self.seed, step, micro, rank])
        batch["noise_seed"] = int(seq.generate_state(1)[0])
        return batch
