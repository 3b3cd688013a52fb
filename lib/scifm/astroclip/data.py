"""Paired galaxy data for AstroCLIP: preparation of images and spectra, a toy survey, splits.

The real inputs are 152 x 152 x 3 g, r, z cutouts (nanomaggies) and 7781-bin DESI
spectra (Parker et al. 2024). ``prepare_images`` centre-crops and average-pools the
cutouts to what the image encoder sees; ``prepare_spectra`` bins the spectra down.
Simulated and released cutouts share the layout and the 0.262"/pixel scale, so the
mapping is the same for both: the central ``crop`` pixels (the target sits at the
centre of a Legacy Surveys cutout), pooled by ``downsample``: tiny 32 -> 16 px (8.4"),
small 64 -> 32 px (16.8"), paper 144 px (37.7", the MNRAS crop); non-finite pixels
(masked in real cutouts) become 0. A cutout smaller than the crop is an error.
``toy_survey`` is a fast, pure stand-in with the same layout (for tests and notebooks
when the simulated survey file is absent): one redshift drives the colours of a
Gaussian blob and the positions of emission lines, so the two modalities share
information the way the simulated survey's do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scifm.astroclip.config import IMAGE_SIZE, N_SPECTRUM_BINS, ImageEncoderConfig, SpecFormerConfig
from scifm.core import numpy_rng
from scifm.survey.readers.grid import DESI_WAVE

WAVELENGTH = DESI_WAVE  # DESI coadd grid (Angstrom)


@dataclass
class Galaxies:
    """Paired images and spectra with their properties (the layout of ``SurveyData``)."""

    images: np.ndarray  # (N, 152, 152, 3) float32 nanomaggies, bands g, r, z
    spectra: np.ndarray  # (N, 7781) float32, 1e-17 erg/s/cm^2/A
    redshift: np.ndarray  # (N,) float
    targetid: np.ndarray  # (N,) int64
    props: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) each, e.g. log_mstar

    def __post_init__(self) -> None:
        n = len(self.redshift)
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or len(self.images) != n:
            raise ValueError(
                f"Galaxies.images has shape {self.images.shape}; expected ({n}, H, W, 3)"
            )
        if self.spectra.shape != (n, N_SPECTRUM_BINS):
            raise ValueError(
                f"Galaxies.spectra has shape {self.spectra.shape}; expected ({n}, "
                f"{N_SPECTRUM_BINS})"
            )

    def __len__(self) -> int:
        return len(self.redshift)

    def properties(self) -> dict[str, np.ndarray]:
        """All per-galaxy scalars, redshift first."""
        return {"redshift": np.asarray(self.redshift, np.float64), **self.props}


def from_survey(survey: object) -> Galaxies:
    """Wrap a ``scifm.survey`` ``SurveyData`` (or anything with its fields)."""
    props = {
        k: np.asarray(v, np.float64)
        for k, v in dict(getattr(survey, "props", {}) or {}).items()
        if np.ndim(v) == 1 and np.issubdtype(np.asarray(v).dtype, np.number)
    }
    return Galaxies(
        images=np.asarray(survey.images, np.float32),  # type: ignore[attr-defined]
        spectra=np.asarray(survey.spectra, np.float32),  # type: ignore[attr-defined]
        redshift=np.asarray(survey.redshift, np.float64),  # type: ignore[attr-defined]
        targetid=np.asarray(survey.targetid, np.int64),  # type: ignore[attr-defined]
        props=props,
    )


def load_galaxies(path: str | Path, start: int = 0, stop: int | None = None) -> Galaxies:
    """Read a simulated survey HDF5 file (``scifm survey generate``) as ``Galaxies``."""
    from scifm.survey.io import read_survey

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"survey file {p}: not found; make one with `scifm survey`")
    return from_survey(read_survey(p, start=start, stop=stop))


def prepare_images(images: np.ndarray, cfg: ImageEncoderConfig, batch: int = 512) -> torch.Tensor:
    """(N, H, W, 3) cutouts -> (N, 3, s, s) float32 centre crops pooled by ``cfg.downsample``."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images has shape {images.shape}; expected (N, H, W, 3) g, r, z")
    h, w = images.shape[1:3]
    if min(h, w) < cfg.crop:
        raise ValueError(f"images are {h} x {w}; smaller than the crop {cfg.crop}")
    y0, x0 = (h - cfg.crop) // 2, (w - cfg.crop) // 2
    out = []
    for i in range(0, len(images), batch):  # chunks: the 152 x 152 originals are big
        x = torch.from_numpy(np.nan_to_num(
            images[i : i + batch, y0 : y0 + cfg.crop, x0 : x0 + cfg.crop].astype(np.float32),
            nan=0.0, posinf=0.0, neginf=0.0))  # fmt: skip
        x = x.permute(0, 3, 1, 2)  # (B, 3, crop, crop)
        if cfg.downsample > 1:
            x = torch.nn.functional.avg_pool2d(x, cfg.downsample)
        out.append(x.contiguous())
    return torch.cat(out) if out else torch.zeros(0, 3, cfg.input_size, cfg.input_size)


def prepare_spectra(spectra: np.ndarray, cfg: SpecFormerConfig) -> torch.Tensor:
    """(N, 7781) spectra -> (N, n_bins) float32, adjacent bins averaged; NaNs become 0. The
    mean is summed in float64: a float32 sum of values near 3e38 would overflow to inf."""
    s = np.asarray(spectra, np.float32)
    if s.ndim == 1:
        s = s[None]
    if s.shape[-1] != N_SPECTRUM_BINS:
        raise ValueError(
            f"spectra has {s.shape[-1]} bins; expected {N_SPECTRUM_BINS} on the DESI grid"
        )
    s = np.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0)
    n = cfg.n_bins * cfg.downsample
    s = s[:, :n].reshape(len(s), cfg.n_bins, cfg.downsample).mean(-1, dtype=np.float64)
    return torch.from_numpy(np.ascontiguousarray(s, np.float32))


def split_indices(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Random (train, test) index arrays; the same ``seed`` gives the same split."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction}: expected a fraction in (0, 1)")
    perm = numpy_rng([seed, 7]).permutation(n)
    n_test = max(1, round(n * test_fraction))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


_LINES = {"Halpha": 6563.0, "OIII": 5007.0, "Hbeta": 4861.0, "OII": 3727.0}
_BREAK = 4000.0  # the 4000 A break: old stars are faint blueward of it


def toy_survey(n: int, seed: int = 0, size: int = IMAGE_SIZE) -> Galaxies:
    """A fast synthetic paired survey (pure in ``(n, seed)``), layout as the real one.

    Redshift moves the 4000 A break and the emission lines in the spectrum and
    reddens the blob in the image; mass sets brightness and size; sSFR sets line
    strength and blue colour. Use it for tests; the real experiments use
    ``scifm survey``'s simulated file.
    """
    rng = numpy_rng([seed, 1234])
    z = rng.uniform(0.02, 0.6, n)
    log_mstar = rng.normal(10.3, 0.5, n)
    log_ssfr = rng.normal(-10.5, 0.8, n) - 0.4 * (log_mstar - 10.3)
    dist = 1.0 / (z + 0.05)
    amp = 10 ** (0.6 * (log_mstar - 10.3)) * dist
    sf = 1 / (1 + np.exp(-(log_ssfr + 10.5)))  # 0 (quiescent) .. 1 (star forming)
    # Spectrum: continuum with a 4000 A break, emission lines, noise.
    w_rest = WAVELENGTH[None] / (1 + z[:, None])  # (N, L)
    cont = amp[:, None] * (1 + (1 - sf[:, None]) * np.tanh((w_rest - _BREAK) / 100.0))
    lines = sum(
        np.exp(-0.5 * ((w_rest - lam) / 3.0) ** 2) * s
        for lam, s in zip(_LINES.values(), (3.0, 2.0, 1.0, 1.5))
    )
    spectra = cont + 4 * amp[:, None] * sf[:, None] * lines
    spectra += rng.normal(0.0, 0.3, spectra.shape)
    # Image: round Gaussian blob, colour from redshift and star formation.
    colour = np.stack([1.0 - 0.8 * z - 0.3 * (1 - sf), np.ones(n), 1.0 + 1.2 * z], 1)
    r_px = 2.0 + 3.0 * (log_mstar - 9.0).clip(0) / (1 + 5 * z)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    rr2 = (yy**2 + xx**2)[None]  # (1, H, W)
    blob = np.exp(-0.5 * rr2 / r_px[:, None, None] ** 2) / r_px[:, None, None] ** 2
    images = 0.5 * amp[:, None, None, None] * blob[..., None] * colour[:, None, None, :]
    images = images + rng.normal(0.0, 0.01, images.shape)
    return Galaxies(
        images=images.astype(np.float32),
        spectra=spectra.astype(np.float32),
        redshift=z,
        targetid=np.arange(n, dtype=np.int64) + 1_000_000 * (seed + 1),
        props={"log_mstar": log_mstar, "log_ssfr": log_ssfr, "sf_fraction": sf},
    )
