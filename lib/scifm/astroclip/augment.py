"""Astronomy augmentations for the self-supervised image encoder: the explicit set.

A view of a galaxy cutout (B, 3, s, s) in nanomaggies is made by, in order:

1. a Gaussian PSF: convolution with a Gaussian of FWHM uniform in ``cfg.psf_fwhm``
   (arcsec, converted with the input's pixel scale ``cfg.pixel_scale``), as a worse seeing;
2. noise: Gaussian noise of sigma ``u * sigma_img`` per band, ``u`` uniform in
   ``cfg.noise_scale`` and ``sigma_img`` the image's own noise level in that band
   (``noise_level``), as a shallower exposure of the same sky;
3. a random element of the dihedral group: a multiple of 90 degrees and a mirror
   (exact on the pixel grid; galaxies have no preferred orientation or handedness);
4. a random integer shift of up to ``cfg.shift_max`` pixels on each axis, cyclic
   (``torch.roll``: no flux leaves the frame; what wraps round is the cutout's edge, sky).

No colour changes: the bands keep their ratios (a per-band gain would change the
colours, which carry the redshift). This follows the physically motivated set of
Stein et al. (2021) and Hayat et al. (2021), without their extinction/gain jitter.
Each choice is drawn per image from ``generator`` (a ``torch.Generator`` or a
``scifm.core.rng.SampleRandom`` keyed by sample position), so a batch is a pure
function of its position in training.
"""

from __future__ import annotations

import math

import torch

from scifm.astroclip.config import ImageEncoderConfig
from scifm.core.rng import BatchRandom, batch_random
from scifm.survey.transforms import dihedral, gaussian_blur

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548


def noise_level(x: torch.Tensor) -> torch.Tensor:
    """Per-image, per-band pixel noise sigma (B, 3) of images (B, 3, H, W).

    From second differences along rows, d_i = x_{i-1} - 2 x_i + x_{i+1}: for white noise of
    sigma s they are N(0, 6 s^2), so s = 1.4826 * median|d| / sqrt(6). They cancel the
    galaxy's light where it is locally linear, and the median ignores its core, which a
    plain standard deviation would count as noise.
    """
    d = (x[..., :, :-2] - 2 * x[..., :, 1:-1] + x[..., :, 2:]).abs().flatten(2)  # (B, 3, ·)
    return 1.4826 * d.median(dim=-1).values / math.sqrt(6.0)


def random_shift(x: torch.Tensor, shift_max: int, rng: BatchRandom) -> torch.Tensor:
    """Each image of (B, C, H, W) rolled by its own integer (dy, dx) in [-shift_max, shift_max]."""
    if shift_max == 0:
        return x
    d = rng.randint(-shift_max, shift_max + 1, (x.shape[0], 2))
    return torch.stack(
        [torch.roll(img, (int(dy), int(dx)), dims=(-2, -1)) for img, (dy, dx) in zip(x, d)]
    )


def augment_images(
    x: torch.Tensor, cfg: ImageEncoderConfig, generator: torch.Generator | BatchRandom | None
) -> torch.Tensor:
    """A random astronomical view (B, 3, s, s) of images (B, 3, s, s); see the module doc."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"augment_images: x of shape {tuple(x.shape)}; expected (B, 3, H, W)")
    b, rng = x.shape[0], batch_random(generator)
    sigma_img = noise_level(x) if cfg.noise_scale[1] > 0 else None  # before the PSF smooths it

    def uniform(lo_hi: tuple[float, float]) -> torch.Tensor:
        lo, hi = lo_hi
        return (lo + (hi - lo) * rng.rand(b)).to(x)

    if cfg.psf_fwhm[1] > 0:
        sigma_px = uniform(cfg.psf_fwhm) / FWHM_PER_SIGMA / cfg.pixel_scale  # (B,)
        radius = max(1, math.ceil(3 * cfg.psf_fwhm[1] / FWHM_PER_SIGMA / cfg.pixel_scale))
        x = gaussian_blur(x, sigma_px, radius=radius)
    if sigma_img is not None:
        amp = uniform(cfg.noise_scale)[:, None] * sigma_img  # (B, 3)
        x = x + amp[:, :, None, None] * rng.randn(*x.shape).to(x)
    x = dihedral(x, rng, flip=True, rotate=True)
    return random_shift(x, cfg.shift_max, rng)
