"""The three AstroCLIP training stages on the shared loop ``scifm.core.train``.

1. ``pretrain_image``: MoCo-v2 on augmented image views (Stein et al. 2021).
2. ``pretrain_spectrum``: SpecFormer masked modelling (Parker et al. 2024, 3.2).
3. ``align``: frozen encoders + cross-attention heads with symmetric InfoNCE (3.3).

Each stage's batches are a pure function of ``(seed, step, micro)`` (indices from
``DatasetBatches``, augmentations and masks from generators seeded with the same),
so the loop's resume restarts at the exact data position.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from scifm.astroclip.config import AstroClipConfig, ImageEncoderConfig, SpecFormerConfig
from scifm.astroclip.image_encoder import ImageSSL, augment_images
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
from scifm.core.rng import seeded
from scifm.core.train import LossFn, StepCallback


def _loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    out = model(**batch)
    return out["loss"], {"accuracy": float(out["accuracy"])} if "accuracy" in out else {}


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
    **train_kwargs: Any,
) -> TrainResult:
    """One stage on the shared loop: batches ``make(indices, gen)`` over ``n_rows`` rows.

    ``train_kwargs`` go to ``core.train`` (device, out_dir, model_config, extra, callback).
    """
    batches = DatasetBatches(
        range(n_rows), batch_size, seed, accum_steps=train_cfg.accum_steps, make=make
    )
    return core_train(model, loss_fn, batches, train_cfg, **train_kwargs)


def pretrain_image(
    images: torch.Tensor,
    cfg: ImageEncoderConfig,
    train_cfg: TrainConfig,
    *,
    batch_size: int = 128,
    device: torch.device | str | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    callback: StepCallback | None = None,
) -> tuple[ImageSSL, TrainResult]:
    """MoCo-v2 pretraining on prepared images (N, 3, s, s); returns the model and history."""
    _check_rows("images", images, batch_size)
    with seeded(seed):  # weight init of this stage; the caller's RNG stream is left alone
        model = ImageSSL(cfg)

    def make(idx: np.ndarray, gen: torch.Generator) -> dict[str, torch.Tensor]:
        x = images[torch.from_numpy(idx)]
        return {"view1": augment_images(x, cfg, gen), "view2": augment_images(x, cfg, gen)}

    result = _train_stage(
        model, _loss, len(images), make, train_cfg, batch_size=batch_size, seed=seed,
        device=device, out_dir=out_dir, model_config=cfg, callback=callback,
    )  # fmt: skip
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
    callback: StepCallback | None = None,
) -> tuple[SpecFormer, TrainResult]:
    """Masked-modelling pretraining on prepared spectra (N, n_bins)."""
    _check_rows("spectra", spectra, batch_size)
    with seeded(seed):
        model = SpecFormer(cfg)

    def make(idx: np.ndarray, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"spectra": spectra[torch.from_numpy(idx)], "mask": chunk_mask(cfg, len(idx), gen)}

    def loss_fn(m: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        return unwrap(m).masked_loss(batch["spectra"], batch["mask"]), {}

    result = _train_stage(
        model, loss_fn, len(spectra), make, train_cfg, batch_size=batch_size, seed=seed,
        device=device, out_dir=out_dir, model_config=cfg, callback=callback,
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
) -> tuple[AstroClip, TrainResult]:
    """Train the alignment heads on pairs (images[i], spectra[i]) with frozen encoders.

    ``cache``: run the frozen SpecFormer once over all spectra and train on its tokens
    (float16 in memory); the spectrum side is the expensive one, and frozen.
    """
    if len(images) != len(spectra):
        raise ValueError(f"{len(images)} images but {len(spectra)} spectra; expected pairs")
    _check_rows("pairs", images, batch_size)
    model = build_aligned_model(cfg, image_ssl, specformer, seed=seed)
    no_noise = cfg.image.replace(noise_sigma=0.0, gain_jitter=0.0)
    tokens = frozen_tokens(model.spectrum_encoder, spectra, device=device) if cache else None

    def make(idx: np.ndarray, gen: torch.Generator) -> dict[str, torch.Tensor]:
        t = torch.from_numpy(idx)
        views = augment_images(images[t], no_noise, gen)
        if tokens is not None:
            return {"images": views, "spectrum_tokens": tokens[t]}
        return {"images": views, "spectra": spectra[t]}

    result = _train_stage(
        model, _loss, len(images), make, train_cfg, batch_size=batch_size, seed=seed,
        device=device, out_dir=out_dir, model_config=cfg, extra=extra, callback=callback,
    )  # fmt: skip
    return model, result
