"""Supervised baselines of the AstroCLIP evaluation (Parker et al. 2024, table 1).

``ImageRegressor``: the same ResNet as the image encoder, trained from scratch to
predict the standardized properties from images (the paper uses a ResNet18).
``photometry_r2``: an MLP on g, r, z magnitudes and colours (the paper's
"photometry MLP"). Both use the same train/test split as the embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from torch import nn

from scifm.astroclip.config import ImageEncoderConfig
from scifm.astroclip.image_encoder import ImageEncoder, augment_images
from scifm.core import ConfigMixin, DatasetBatches, TrainConfig
from scifm.core import train as core_train
from scifm.core.rng import seeded


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
) -> tuple[ImageRegressor, StandardScaler]:
    """Fit the supervised CNN on (N, 3, s, s) images and (N, n_targets) raw targets."""
    scaler = StandardScaler().fit(targets)
    y = torch.from_numpy(scaler.transform(targets).astype(np.float32))
    with seeded(seed):  # weight init; the caller's RNG stream is left alone
        model = ImageRegressor(cfg)
    aug = cfg.image.replace(noise_sigma=0.0, gain_jitter=0.0)

    def make(idx: np.ndarray, gen: torch.Generator) -> dict[str, torch.Tensor]:
        t = torch.from_numpy(idx)
        return {"images": augment_images(images[t], aug, gen), "targets": y[t]}

    batches = DatasetBatches(range(len(images)), batch_size, seed, make=make)
    core_train(model, lambda m, b: (m(**b)["loss"], {}), batches, train_cfg, device=device)
    return model.cpu().eval(), scaler


@torch.no_grad()
def predict(model: ImageRegressor, images: torch.Tensor, scaler: StandardScaler) -> np.ndarray:
    out = [model(images[i : i + 256]) for i in range(0, len(images), 256)]
    return scaler.inverse_transform(torch.cat(out).numpy())


def photometry_features(props: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N, 5) g, r, z magnitudes and the g-r, r-z colours."""
    g, r, z = (np.asarray(props[f"mag_{b}"], np.float64) for b in "grz")
    return np.stack([g, r, z, g - r, r - z], 1)


def photometry_r2(
    x_train: np.ndarray,
    x_test: np.ndarray,
    targets_train: Mapping[str, np.ndarray],
    targets_test: Mapping[str, np.ndarray],
    *,
    seed: int = 0,
) -> dict[str, float]:
    """R^2 per target of an MLP on photometric features (standardized in and out)."""
    xs = StandardScaler().fit(x_train)
    out = {}
    for name, ytr in targets_train.items():
        ys = StandardScaler().fit(ytr[:, None])
        mlp = MLPRegressor(
            hidden_layer_sizes=(64, 64), alpha=1e-3, max_iter=500, early_stopping=True,
            random_state=seed,
        )  # fmt: skip
        mlp.fit(xs.transform(x_train), ys.transform(ytr[:, None]).ravel())
        pred = ys.inverse_transform(mlp.predict(xs.transform(x_test))[:, None]).ravel()
        out[name] = float(r2_score(targets_test[name], pred))
    return out
