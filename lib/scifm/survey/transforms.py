"""Standard preprocessing of survey images and spectra.

- ``legacy_rgb``: the Legacy Surveys display transform (legacypipe ``dr2_rgb``:
  scales g=6.0, r=3.4, z=2.2, offset 0.03, f = asinh(Q I)/sqrt(Q), Q = 20), used by
  Stein et al. 2021 and AstroCLIP for showing galaxies.
- ``standardize_spectrum``: per-object mean/std normalization with the std
  clipped at 0.2, as AstroCLIP's SpecFormer does before tokenizing.
- ``augment_images``: the self-supervised image augmentations of Stein et al. /
  AstroCLIP: random flips, 90-degree rotations, extra Gaussian noise at the sky
  level and a random Gaussian PSF blur, then a centre crop (144 or 96 pixels).
  The AstroCLIP encoders call it too (``ImageEncoderConfig.augment``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from scifm.core.config import ConfigMixin
from scifm.core.rng import BatchRandom, batch_random

RGB_SCALES = {"g": 6.0, "r": 3.4, "z": 2.2}  # Legacy Surveys dr2_rgb
RGB_PLANES = {"g": 2, "r": 1, "z": 0}  # z -> red, r -> green, g -> blue
RGB_OFFSET = 0.03
RGB_Q = 20.0


def legacy_rgb(images: np.ndarray, bands: str = "grz") -> np.ndarray:
    """(..., H, W, 3) nanomaggies in ``bands`` order -> (..., H, W, 3) RGB in [0, 1]."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim < 3 or images.shape[-1] != len(bands):
        raise ValueError(
            f"legacy_rgb: images of shape {images.shape}; expected (..., H, W, {len(bands)}) "
            f"with bands {bands!r} last"
        )
    scaled = [np.maximum(0.0, images[..., k] * RGB_SCALES[b] + RGB_OFFSET)
              for k, b in enumerate(bands)]  # fmt: skip
    intensity = sum(scaled) / len(bands)
    f_i = np.arcsinh(RGB_Q * intensity) / np.sqrt(RGB_Q)
    intensity = intensity + (intensity == 0.0) * 1e-6
    rgb = np.zeros((*images.shape[:-1], 3), dtype=np.float32)
    for k, b in enumerate(bands):
        rgb[..., RGB_PLANES[b]] = scaled[k] * f_i / intensity
    return np.clip(rgb, 0.0, 1.0)


def standardize_spectrum(
    flux: torch.Tensor | np.ndarray, min_std: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(..., L) flux -> (normalized, mean (..., 1), std (..., 1)); std clipped at ``min_std``."""
    x = torch.as_tensor(np.asarray(flux) if isinstance(flux, np.ndarray) else flux).float()
    mean = x.mean(dim=-1, keepdim=True)
    std = x.std(dim=-1, keepdim=True).clamp(min=min_std)
    return (x - mean) / std, mean, std


@dataclass(frozen=True)
class AugmentConfig(ConfigMixin):
    """Random image augmentations for self-supervised pretraining."""

    flip: bool = True  # random horizontal and vertical flips (galaxies have no handedness)
    rotate: bool = True  # random multiples of 90 degrees (pixel grid preserved)
    noise_max: float = 1.0  # extra Gaussian noise up to this many times the median sky sigma
    blur_max: float = 1.0  # Gaussian PSF blur sigma up to this many pixels
    crop: int | None = 144  # centre crop side (AstroCLIP MNRAS 144, workshop 96); None: keep
    gain_jitter: float = 0.0  # per-band log-normal gain sigma (changes colours: off by default)
    # median sky noise per pixel of SurveyConfig() in g, r, z (nanomaggies)
    sky_sigma: tuple[float, float, float] = (0.0032, 0.0061, 0.0139)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "none": {"flip": False, "rotate": False, "noise_max": 0.0, "blur_max": 0.0},
        "astroclip": {},
        "workshop": {"crop": 96},
    }

    def __post_init__(self) -> None:
        if self.noise_max < 0 or self.blur_max < 0:
            raise ValueError(
                f"AugmentConfig: noise_max={self.noise_max}, blur_max={self.blur_max}; "
                "expected >= 0"
            )
        if self.gain_jitter < 0:
            raise ValueError(f"AugmentConfig: gain_jitter={self.gain_jitter}; expected >= 0")
        if self.crop is not None and self.crop < 1:
            raise ValueError(f"AugmentConfig: crop={self.crop}; expected a positive pixel count")


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre crop of the last two axes of ``x`` (..., H, W) to (..., size, size)."""
    h, w = x.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"center_crop: crop {size} larger than the image {h} x {w}")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int = 4) -> torch.Tensor:
    """Blur each image of ``x`` (B, C, H, W) with its own Gaussian ``sigma`` (B,) in pixels."""
    b, c, h, w = x.shape
    r = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    s = sigma.to(x).clamp(min=1e-3)[:, None]  # (B, 1)
    k1 = torch.exp(-0.5 * (r[None, :] / s) ** 2)
    k1 = k1 / k1.sum(dim=1, keepdim=True)  # (B, K)
    kernel = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(c, dim=0)  # (B*C, K, K)
    out = F.conv2d(x.reshape(1, b * c, h, w), kernel[:, None], padding=radius, groups=b * c)
    return out.reshape(b, c, h, w)


def dihedral(
    x: torch.Tensor, generator: torch.Generator | BatchRandom | None, *, flip: bool, rotate: bool
):
    """Each image of (B, C, H, W) turned by a random multiple of 90 degrees and/or mirrored."""
    b, rng = x.shape[0], batch_random(generator)
    k = rng.randint(0, 4, (b,)) if rotate else torch.zeros(b, dtype=torch.long)
    f = (rng.rand(b) < 0.5) if flip else torch.zeros(b, dtype=torch.bool)
    out = torch.empty_like(x)
    for r in range(4):
        for m in (False, True):
            sel = ((k == r) & (f == m)).to(x.device)
            if sel.any():
                v = torch.rot90(x[sel], r, dims=(-2, -1))
                out[sel] = v.flip(-1) if m else v
    return out


def augment_images(
    x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | BatchRandom | None = None
) -> torch.Tensor:
    """Augment a batch (B, 3, H, W) of nanomaggie images; returns (B, 3, crop, crop).

    In order: a Gaussian PSF blur of random width, extra Gaussian noise of random
    amplitude (up to ``noise_max`` sky sigmas), an optional per-band gain, then a
    random element of the dihedral group and the centre crop (none when ``crop`` is None).
    ``generator``: one generator for the batch, or a ``scifm.core.rng.SampleRandom``
    (each image's choices from its own generator, keyed by its global position).
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"augment_images: x of shape {tuple(x.shape)}; expected (B, 3, H, W)")
    b, rng = x.shape[0], batch_random(generator)

    def rand(*shape: int) -> torch.Tensor:
        return rng.rand(*shape).to(x)

    if cfg.blur_max > 0:
        x = gaussian_blur(x, rand(b) * cfg.blur_max)
    if cfg.noise_max > 0:
        sky = torch.tensor(cfg.sky_sigma, dtype=x.dtype, device=x.device)[None, :, None, None]
        noise = rng.randn(*x.shape).to(x)
        x = x + rand(b)[:, None, None, None] * cfg.noise_max * sky * noise
    if cfg.gain_jitter > 0:
        x = x * torch.exp(cfg.gain_jitter * rng.randn(b, 3, 1, 1)).to(x)
    if cfg.flip or cfg.rotate:
        x = dihedral(x, rng, flip=cfg.flip, rotate=cfg.rotate)
    return x if cfg.crop is None else center_crop(x, cfg.crop)
