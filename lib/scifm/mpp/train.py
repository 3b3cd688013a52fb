"""Multiple physics pretraining and fine-tuning on the shared loop (``scifm.core.train``).

McCabe et al. (arXiv:2310.02994), section 4: minimise the NMSE of the next frame over a
mixture of systems, one system per micro-batch, systems drawn uniformly, each system's
windows without replacement (``scifm.pde.system_batches`` on the core ``MixtureBatches``).
Fine-tuning reuses the same loss on a new system, optionally after adding field slots for
fields the pretrained model never saw, and with part of the model frozen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from scifm.core import TrainConfig, TrainResult, train
from scifm.core.train import StepCallback
from scifm.mpp.metrics import nmse_per_field
from scifm.mpp.recipe import SeededBatches, TrainRecipe, recipe_loss
from scifm.pde.windows import system_batches

TRAINABLE = ("all", "io", "decoder")  # what fine-tuning updates; see set_trainable


def loss_fn(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
    """NMSE of the predicted next frame; also reports the batch NRMSE."""
    pred = model(batch["x"], batch["field_index"], batch["periodic"])
    per = nmse_per_field(pred, batch["y"])  # (B, C)
    return per.mean(), {"nrmse": float(per.detach().sqrt().mean())}


def fit(
    model: nn.Module,
    sets: Mapping[str, Dataset] | Sequence[Dataset],
    cfg: TrainConfig,
    *,
    batch_size: int = 8,
    data_seed: int = 0,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
    extra: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    recipe: TrainRecipe | None = None,
) -> TrainResult:
    """Train ``model`` (an AViT or a baseline) on a balanced mix of ``sets``.

    ``sets`` are windows of one system each (``TrajectoryWindows``, ``FileWindows`` or a
    concatenation of them); ``batch_size`` is the global micro-batch. ``recipe``
    (``scifm.mpp.recipe``) switches on input noise, a pushforward or unrolled loss and a
    per-field normalised loss; None is the paper's one-step NMSE (``loss_fn``).
    ``callback(record)`` runs after each logged step (live plots in notebooks).
    """
    batches = system_batches(sets, batch_size, seed=data_seed, accum_steps=cfg.accum_steps)
    if recipe is not None:
        extra = {**(extra or {}), "recipe": recipe.to_dict()}
    return train(
        model,
        loss_fn if recipe is None else recipe_loss(recipe),
        batches if recipe is None else SeededBatches(batches, recipe.seed),
        cfg,
        device=device,
        out_dir=out_dir,
        model_config=getattr(model, "config", None),
        extra=extra,
        callback=callback,
    )


def set_trainable(model: nn.Module, part: str = "all") -> int:
    """Freeze all but ``part`` of an AViT; returns the number of trainable parameters.

    ``all``: everything. ``io``: field embedding, stem and decoder (the processor blocks,
    where the shared physics lives, stay frozen). ``decoder``: the decoder only.
    """
    if part not in TRAINABLE:
        raise ValueError(f"trainable={part!r}: expected one of {TRAINABLE}")
    keep = {"all": ("",), "io": ("embed.", "stem.", "decoder."), "decoder": ("decoder.",)}[part]
    n = 0
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(keep))
        n += p.numel() if p.requires_grad else 0
    return n


def prepare_finetune(model: nn.Module, *, new_fields: int = 0, trainable: str = "all") -> list[int]:
    """Make a pretrained AViT ready for a new system.

    Adds ``new_fields`` field slots (returned, to use as the new system's ``field_index``)
    and freezes everything outside ``trainable``.
    """
    slots = model.add_fields(new_fields) if new_fields else []
    set_trainable(model, trainable)
    return slots
