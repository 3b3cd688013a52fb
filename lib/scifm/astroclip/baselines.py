"""Supervised baselines of the AstroCLIP evaluation (Parker et al. 2024, table 1).

``ImageRegressor``: the same ResNet as the image encoder, trained from scratch to
predict the standardized properties from images (the paper uses a ResNet18).
``photometry_r2``: an MLP on g, r, z magnitudes and colours (the paper's
"photometry MLP"). The magnitudes are measured on the noisy cutouts, as a survey
catalogue's are (``measured_photometry``: 3.5" aperture fluxes with errors from the
image noise, as asinh magnitudes), never the simulation's noiseless true magnitudes.
Both use the train/test split recorded with the model (``splits.model_split``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from torch import nn

from scifm.astroclip.augment import augment_images
from scifm.astroclip.config import ImageEncoderConfig
from scifm.astroclip.image_encoder import ImageEncoder
from scifm.core import ConfigMixin, DatasetBatches, TrainConfig
from scifm.core import train as core_train
from scifm.core.rng import seeded
from scifm.survey.photometry import aperture_photometry, asinh_mag


@dataclass(frozen=True)
class RegressorConfig(ConfigMixin):
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)  # backbone
    n_targets: int = 5  # properties predicted jointly (standardized)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"image": ImageEncoderConfig.PRESETS["tiny"]},
        "small": {},
    }

    def __post_init__(self) -> None:
        if self.n_targets < 1:
            raise ValueError(f"RegressorConfig.n_targets={self.n_targets}: must be >= 1")


class ImageRegressor(nn.Module):
    """(B, 3, s, s) images -> (B, n_targets) standardized properties."""

    def __init__(self, config: RegressorConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ImageEncoder(config.image)
        self.head = nn.Linear(config.image.d_model, config.n_targets)

    def forward(self, images: torch.Tensor, targets: torch.Tensor | None = None):
        pred = self.head(self.encoder.embed(images))
        if targets is None:
            return pred
        ok = torch.isfinite(targets)
        loss = ((pred - torch.nan_to_num(targets)) ** 2 * ok).sum() / ok.sum().clamp_min(1)
        return {"loss": loss}


def train_image_regressor(
    images: torch.Tensor,
    targets: np.ndarray,
    cfg: RegressorConfig,
    train_cfg: TrainConfig,
    *,
    batch_size: int = 128,
    device: torch.device | str | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
) -> tuple[ImageRegressor, StandardScaler]:
    """Fit the supervised CNN on (N, 3, s, s) images and (N, n_targets) raw targets.

    With ``out_dir`` the run checkpoints there (``train_cfg.ckpt_every``) and resumes from it:
    a long baseline survives an interruption, and a finished one is loaded, not retrained
    (the caller keys ``out_dir`` by what the model depends on: images, split, targets,
    config and budget)."""
    scaler = StandardScaler().fit(targets)
    y = torch.from_numpy(scaler.transform(targets).astype(np.float32))
    with seeded(seed):  # weight init; the caller's RNG stream is left alone
        model = ImageRegressor(cfg)
    aug = cfg.image.geometric

    def make(idx: np.ndarray, gen: torch.Generator) -> dict[str, torch.Tensor]:
        t = torch.from_numpy(idx)
        return {"images": augment_images(images[t], aug, gen), "targets": y[t]}

    batches = DatasetBatches(range(len(images)), batch_size, seed, make=make)
    core_train(model, lambda m, b: (m(**b)["loss"], {}), batches, train_cfg, device=device,
               out_dir=out_dir, extra={"seed": seed, "batch_size": batch_size})  # fmt: skip
    return model.cpu().eval(), scaler


@torch.no_grad()
def predict(model: ImageRegressor, images: torch.Tensor, scaler: StandardScaler) -> np.ndarray:
    out = [model(images[i : i + 256]) for i in range(0, len(images), 256)]
    return scaler.inverse_transform(torch.cat(out).numpy())


def measured_photometry(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """g, r, z asinh magnitudes (N, 3) and their errors (N, 3) measured on (N, H, W, 3) cutouts."""
    return asinh_mag(*aperture_photometry(images))


def photometry_features(mags: np.ndarray, mag_errs: np.ndarray) -> np.ndarray:
    """(N, 8) measured g, r, z magnitudes, the g-r and r-z colours, and the magnitude errors."""
    m, e = np.asarray(mags, np.float64), np.asarray(mag_errs, np.float64)
    if m.ndim != 2 or m.shape[1] != 3 or e.shape != m.shape:
        raise ValueError(f"photometry_features: mags {m.shape}, errors {e.shape}; expected (N, 3)")
    return np.concatenate([m, m[:, :2] - m[:, 1:], e], 1)


def photometry_r2(
    x_train: np.ndarray,
    x_test: np.ndarray,
    targets_train: Mapping[str, np.ndarray],
    targets_test: Mapping[str, np.ndarray],
    *,
    seed: int = 0,
) -> dict[str, float]:
    """R^2 per target of an MLP on photometric features (standardized in and out).

    Training rows without finite features or target are left out of the fit; a test row
    without finite features gets the training mean (it counts against the R^2); test rows
    without a finite target are not scored.
    """
    ok = np.isfinite(x_train).all(1)
    xs = StandardScaler().fit(x_train[ok])
    x_test = np.where(np.isfinite(x_test), x_test, xs.mean_)
    out = {}
    for name, ytr in targets_train.items():
        keep = ok & np.isfinite(ytr)
        x_fit, ytr = x_train[keep], ytr[keep]
        ys = StandardScaler().fit(ytr[:, None])
        mlp = MLPRegressor(
            hidden_layer_sizes=(64, 64), alpha=1e-3, max_iter=500, early_stopping=True,
            random_state=seed,
        )  # fmt: skip
        mlp.fit(xs.transform(x_fit), ys.transform(ytr[:, None]).ravel())
        pred = ys.inverse_transform(mlp.predict(xs.transform(x_test))[:, None]).ravel()
        yte = np.asarray(targets_test[name])
        out[name] = float(r2_score(yte[np.isfinite(yte)], pred[np.isfinite(yte)]))
    return out
