"""Compact display forms of galaxies: Legacy Surveys RGB JPEG thumbnails, uint8 spectra.

RGB is ``scifm.survey.transforms.legacy_rgb`` (the Legacy Surveys convention). Spectra for
display are binned and quantized to uint8 with a per-object offset and scale,
which keeps a 10^4-galaxy catalog within a few MB.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from scifm.astroclip.data import WAVELENGTH
from scifm.survey.spectra import ABSORPTION_LINES, EMISSION_LINES
from scifm.survey.transforms import legacy_rgb

SPECTRAL_LINES = {**EMISSION_LINES, **ABSORPTION_LINES}  # rest frame, marked on spectra


def jpeg_thumbnails(images: np.ndarray, size: int = 48, crop: int = 72, quality: int = 80):
    """JPEG bytes (list) of centre ``crop`` RGB stamps resized to ``size`` x ``size``."""
    from PIL import Image

    h, w = images.shape[1:3]
    y0, x0 = (h - crop) // 2, (w - crop) // 2
    rgb = legacy_rgb(images[:, y0 : y0 + crop, x0 : x0 + crop])
    out = []
    for im in (rgb * 255).round().astype(np.uint8):
        buf = io.BytesIO()
        Image.fromarray(im).resize((size, size), Image.LANCZOS).save(buf, "JPEG", quality=quality)
        out.append(buf.getvalue())
    return out


def data_url(jpeg: bytes) -> str:
    """An ``<img src=...>`` data URL for JPEG bytes."""
    return "data:image/jpeg;base64," + base64.b64encode(bytes(jpeg)).decode()


def display_wavelength(bin_factor: int) -> np.ndarray:
    """Wavelengths of the binned display spectrum (bin centres, Angstrom)."""
    n = len(WAVELENGTH) // bin_factor
    return WAVELENGTH[: n * bin_factor].reshape(n, bin_factor).mean(1)


def display_binned(flux: np.ndarray, factor: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(wavelength, flux) of one 7781-bin spectrum averaged over ``factor`` bins."""
    n = len(flux) // factor
    wave = WAVELENGTH[: n * factor].reshape(n, factor).mean(1)
    return wave, np.asarray(flux[: n * factor], np.float32).reshape(n, factor).mean(1)


def quantize_spectra(spectra: np.ndarray, bin_factor: int = 16):
    """(N, 7781) -> uint8 (N, L), offset (N,), scale (N,) with flux ~ offset + scale * u8."""
    s = np.nan_to_num(np.asarray(spectra, np.float32))
    n = s.shape[1] // bin_factor
    s = s[:, : n * bin_factor].reshape(len(s), n, bin_factor).mean(-1)
    lo, hi = np.percentile(s, 0.5, axis=1), np.percentile(s, 99.9, axis=1)
    scale = np.maximum(hi - lo, 1e-6) / 255.0
    u8 = np.clip(np.round((s - lo[:, None]) / scale[:, None]), 0, 255).astype(np.uint8)
    return u8, lo.astype(np.float32), scale.astype(np.float32)


def dequantize(u8: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return offset[..., None] + scale[..., None] * u8.astype(np.float32)
