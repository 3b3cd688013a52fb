"""The three AstroCLIP training stages on the shared loop ``scifm.core.train``.

1. ``pretrain_image``: MoCo-v2 (Stein et al. 2021) or VICReg (Bardes et al. 2022) on
   astronomical views of the images (``augment.py``), as ``ImageEncoderConfig.method`` says.
2. ``pretrain_spectrum``: SpecFormer masked modelling (Parker et al. 2024, 3.2).
3. ``align``: frozen encoders + cross-attention heads with symmetric InfoNCE (3.3).

Each stage's batches are a pure function of ``(seed, step, micro)`` (indices from
``DatasetBatches``, augmentations and masks from generators seeded with the same),
so the loop's resume restarts at the exact data position.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scifm.astroclip.augment import augment_images
from scifm.astroclip.config import AstroClipConfig, ImageEncoderConfig, SpecFormerConfig
from scifm.astroclip.evaluate import align_recall
from scifm.astroclip.image_encoder import ImageEncoder, ImageSSL
from scifm.astroclip.model import AstroClip
from scifm.astroclip.specformer import SpecFormer, chunk_mask
from scifm.core import (
    DatasetBatches,
    TrainConfig,
    TrainResult,
    load_model,
    pick_device,
    unwrap,
)
from scifm.core import train as core_train
from scifm.core.batches import MakeFn
from scifm.core.plateau import PlateauRule, train_evaluated
from scifm.core.rng import seeded
from scifm.core.train import LossFn, StepCallback

EVAL_FILE = "eval.jsonl"  # held-out evaluations of a stage, one JSON record per line
# When "trained until it plateaus" stops (issue 14: no 1 % gain over the last 20 % of steps):
SPECTRUM_PLATEAU = PlateauRule(key="val_loss")  # SpecFormer's held-out masked loss
ALIGN_PLATEAU = PlateauRule(key="recall@10", higher_is_better=True)  # image -> spectrum


def align_plateau(steps: int) -> PlateauRule:
    """``ALIGN_PLATEAU`` with no verdict before half of a ``steps``-step schedule: held-out
    recall@10 among 2,000 pairs moves by up to 0.085 between evaluations while the LR is high (a
    6,000-step run stopped at step 2,200, LR 3.9e-4, on such a dip; the 3,000-step run rose
    to the end as its LR annealed), so an early "plateau" is noise, not the end of learning."""
    return replace(ALIGN_PLATEAU, min_steps=steps // 2)


def _loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    out = model(**batch)  # "loss" and scalar diagnostics (MoCo accuracy, VICReg terms)
    return out["loss"], {k: float(v) for k, v in out.items() if k != "loss"}


def _check_rows(name: str, x: torch.Tensor, batch_size: int) -> None:
    if len(x) < batch_size:
        raise ValueError(f"{name} has {len(x)} rows, fewer than batch_size={batch_size}")


def _train_stage(
    model: torch.nn.Module,
    loss_fn: LossFn,
    n_rows: int,
    make: MakeFn,
    train_cfg: TrainConfig,
    *,
    batch_size: int,
    seed: int,
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    eval_every: int = 0,
    rule: PlateauRule | None = None,
    **train_kwargs: Any,
) -> TrainResult:
    """One stage on the shared loop: batches ``make(indices, gen)`` over ``n_rows`` rows.

    With ``evaluate(model)``: ``core.train_evaluated`` (held-out evaluations every
    ``eval_every`` steps into ``out_dir/eval.jsonl``, stop at the plateau of ``rule``).
    ``train_kwargs`` go to ``core.train`` (device, out_dir, model_config, extra, callback).
    """
    batches = DatasetBatches(
        range(n_rows), batch_size, seed, accum_steps=train_cfg.accum_steps, make=make
    )
    if evaluate is None:
        return core_train(model, loss_fn, batches, train_cfg, **train_kwargs)
    return train_evaluated(model, loss_fn, batches, train_cfg, evaluate, eval_every=eval_every,
                           rule=rule, eval_file=EVAL_FILE, **train_kwargs).result  # fmt: skip


def _check_plateau(evaluation: object, until_plateau: bool) -> None:
    if until_plateau and evaluation is None:
        raise ValueError("until_plateau needs held-out data to evaluate (evaluate / held_out)")


def _check_images(images: torch.Tensor, cfg: ImageEncoderConfig) -> None:
    s = cfg.input_size
    if images.ndim != 4 or tuple(images.shape[1:]) != (3, s, s):
        raise ValueError(
            f"images have shape {tuple(images.shape)}; the image encoder takes (N, 3, {s}, {s}): "
            f"the {cfg.crop} px centre crop pooled by {cfg.downsample} (data.prepare_images)"
        )


def pretrain_image(
    images: torch.Tensor,
    cfg: ImageEncoderConfig,
    train_cfg: TrainConfig,
    *,
    batch_size: int = 128,
    device: torch.device | str | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    extra: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    evaluate: Callable[[ImageEncoder], dict[str, float]] | None = None,
    eval_every: int = 0,
) -> tuple[ImageSSL, TrainResult]:
    """Self-supervised pretraining (``cfg.method``) on prepared images (N, 3, s, s).

    Returns the model and its history; ``extra`` (e.g. the split) goes into the checkpoint.
    ``evaluate(encoder)`` (e.g. a k-NN R^2 on held-out galaxies) runs every ``eval_every``
    steps (a multiple of ``train_cfg.log_every``; 0: only at the end) and at the end; each
    result goes to ``callback`` as ``{"stage": "eval", "step": ..., **metrics}`` and is
    appended to ``out_dir/eval.jsonl`` (a resumed run evaluates again the steps it redoes
    after its checkpoint: the last record of a step is the one of the weights kept).
    """
    _check_rows("images", images, batch_size)
    _check_images(images, cfg)
    if eval_every < 0 or (eval_every and eval_every % train_cfg.log_every):
        raise ValueError(
            f"eval_every={eval_every}: expected 0 or a multiple of log_every={train_cfg.log_every}"
        )
    with seeded(seed):  # weight init of this stage; the caller's RNG stream is left alone
        model = ImageSSL(cfg)

    def make(idx: np.ndarray, gen: torch.Generator) -> dict[str, torch.Tensor]:
        x = images[torch.from_numpy(idx)]
        return {"view1": augment_images(x, cfg, gen), "view2": augment_images(x, cfg, gen)}

    last_eval = [-1]

    def run_eval(step: int) -> None:
        record = {"stage": "eval", "step": step, **evaluate(model.encoder)}  # type: ignore[misc]
        last_eval[0] = step
        if out_dir is not None:
            with open(Path(out_dir) / EVAL_FILE, "a") as f:
                f.write(json.dumps(record) + "\n")
        if callback is not None:
            callback(record)

    def on_step(record: dict[str, float]) -> None:
        if callback is not None:
            callback(record)
        if evaluate is not None and eval_every and int(record["step"]) % eval_every == 0:
            run_eval(int(record["step"]))

    result = _train_stage(
        model, _loss, len(images), make, train_cfg, batch_size=batch_size, seed=seed,
        device=device, out_dir=out_dir, model_config=cfg, extra=extra, callback=on_step,
    )  # fmt: skip
    if evaluate is not None and last_eval[0] != result.step:
        run_eval(result.step)
    return model, result


def pretrain_spectrum(
    spectra: torch.Tensor,
    cfg: SpecFormerConfig,
    train_cfg: TrainConfig,
    *,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    extra: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    evaluate: Callable[[SpecFormer], dict[str, float]] | None = None,
    eval_every: int = 0,
    until_plateau: bool = False,
) -> tuple[SpecFormer, TrainResult]:
    """Masked-modelling pretraining on prepared spectra (N, n_bins).

    ``evaluate(model)`` (``evaluate.specformer_eval``: held-out masked loss ``val_loss`` and
    k-NN R^2) runs every ``eval_every`` steps and at the end, into ``out_dir/eval.jsonl``;
    ``until_plateau`` stops once ``val_loss`` has plateaued (``SPECTRUM_PLATEAU``), with
    ``train_cfg.steps`` as the budget. ``extra`` (e.g. the split) goes into the checkpoint.
    """
    _check_rows("spectra", spectra, batch_size)
    _check_plateau(evaluate, until_plateau)
    with seeded(seed):
        model = SpecFormer(cfg)

    def make(idx: np.ndarray, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"spectra": spectra[torch.from_numpy(idx)], "mask": chunk_mask(cfg, len(idx), gen)}

    def loss_fn(m: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        return unwrap(m).masked_loss(batch["spectra"], batch["mask"]), {}

    result = _train_stage(
        model, loss_fn, len(spectra), make, train_cfg, batch_size=batch_size, seed=seed,
        device=device, out_dir=out_dir, model_config=cfg, extra=extra, callback=callback,
        evaluate=evaluate, eval_every=eval_every, rule=SPECTRUM_PLATEAU if until_plateau else None,
    )  # fmt: skip
    return model, result


def build_aligned_model(
    cfg: AstroClipConfig, image_ssl: ImageSSL, specformer: SpecFormer, *, seed: int = 0
) -> AstroClip:
    """A fresh AstroCLIP with the pretrained encoders' weights copied in (and frozen).

    The alignment heads are initialised from ``seed`` (the caller's RNG stream untouched).
    """
    if image_ssl.config != cfg.image:
        raise ValueError(
            f"image encoder config {image_ssl.config} does not match AstroClipConfig.image "
            f"{cfg.image}"
        )
    if specformer.config != cfg.spectrum:
        raise ValueError(
            f"SpecFormer config {specformer.config} does not match AstroClipConfig.spectrum "
            f"{cfg.spectrum}"
        )
    with seeded(seed):
        model = AstroClip(cfg)
    model.image_encoder.load_state_dict(image_ssl.encoder.state_dict())
    model.spectrum_encoder.load_state_dict(specformer.state_dict())
    model.freeze_encoders()
    return model


@torch.no_grad()
def frozen_tokens(
    encoder: torch.nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Tokens of a frozen encoder for every row of ``x``, float16 on the CPU."""
    dev = pick_device(device)
    encoder.eval().to(dev)
    out = [
        encoder(x[i : i + batch_size].to(dev)).half().cpu() for i in range(0, len(x), batch_size)
    ]
    encoder.cpu()
    return torch.cat(out)


def load_encoders(image_path: str | Path, spectrum_path: str | Path) -> tuple[ImageSSL, SpecFormer]:
    """Pretrained encoders from their checkpoint directories (CPU)."""
    _, ssl = load_model(image_path, "cpu", expect_config=ImageEncoderConfig)
    _, spec = load_model(spectrum_path, "cpu", expect_config=SpecFormerConfig)
    return ssl, spec  # type: ignore[return-value]


def align(
    images: torch.Tensor,
    spectra: torch.Tensor,
    cfg: AstroClipConfig,
    image_ssl: ImageSSL,
    specformer: SpecFormer,
    train_cfg: TrainConfig,
    *,
    batch_size: int = 128,
    device: torch.device | str | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    extra: dict[str, Any] | None = None,
    cache: bool = True,
    callback: StepCallback | None = None,
    held_out: tuple[torch.Tensor, torch.Tensor] | None = None,
    eval_every: int = 0,
    until_plateau: bool = False,
) -> tuple[AstroClip, TrainResult]:
    """Train the alignment heads on pairs (images[i], spectra[i]) with frozen encoders
    (and the image encoder's top ``cfg.image_finetune_blocks`` blocks, when > 0).

    ``cache``: run the frozen SpecFormer once over all spectra and train on its tokens
    (float16 in memory); the spectrum side is the expensive one, and frozen.
    ``held_out``: (images, spectra) pairs outside the training rows; their cross-modal
    recall (``evaluate.align_recall``, ``recall@10`` image -> spectrum among all of them)
    is measured every ``eval_every`` steps and at the end, into ``out_dir/eval.jsonl``;
    ``until_plateau`` stops once ``recall@10`` has plateaued (``align_plateau``: no verdict
    before half the schedule).
    """
    if len(images) != len(spectra):
        raise ValueError(f"{len(images)} images but {len(spectra)} spectra; expected pairs")
    _check_rows("pairs", images, batch_size)
    _check_images(images, cfg.image)
    _check_plateau(held_out, until_plateau)
    model = build_aligned_model(cfg, image_ssl, specformer, seed=seed)
    no_noise = cfg.image.geometric  # rotations, flips, shifts: the pairs stay the same galaxy
    tokens = frozen_tokens(model.spectrum_encoder, spectra, device=device) if cache else None
    evaluate = None
    if held_out is not None:
        test_images, test_spectra = held_out
        _check_images(test_images, cfg.image)
        test_tokens = frozen_tokens(model.spectrum_encoder, test_spectra, device=device)

        def evaluate(m: torch.nn.Module) -> dict[str, float]:
            return align_recall(m, test_images, test_tokens)

    def make(idx: np.ndarray, gen: torch.Generator) -> dict[str, torch.Tensor]:
        t = torch.from_numpy(idx)
        views = augment_images(images[t], no_noise, gen)
        if tokens is not None:
            return {"images": views, "spectrum_tokens": tokens[t]}
        return {"images": views, "spectra": spectra[t]}

    result = _train_stage(
        model, _loss, len(images), make, train_cfg, batch_size=batch_size, seed=seed,
        device=device, out_dir=out_dir, model_config=cfg, extra=extra, callback=callback,
        evaluate=evaluate, eval_every=eval_every,
        rule=align_plateau(train_cfg.steps) if until_plateau else None,
    )  # fmt: skip
    return model, result
