"""The DESI coadd wavelength grid, spectrum records, and flux-conserving resampling.

AstroCLIP (Parker et al. 2024) feeds spectra on the DESI coadd grid
lambda_i = 3600 + 0.8 i A (i = 0..7780). Readers of real files put every object
on that grid as a ``SpectrumRecord``; pixels a file does not cover, or that its
pipeline flags, carry a nonzero ``mask`` and zero inverse variance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DESI_WAVE_MIN, DESI_WAVE_STEP, DESI_N_WAVE = 3600.0, 0.8, 7781
DESI_WAVE = DESI_WAVE_MIN + DESI_WAVE_STEP * np.arange(DESI_N_WAVE)  # Angstrom, vacuum

# Mask bits set by the readers (the files' own mask bits are kept in the low bits).
NOCOVERAGE = np.uint32(1 << 30)  # no input pixel overlaps this output pixel
BADPIX = np.uint32(1 << 29)  # an overlapping input pixel was flagged or had ivar = 0


@dataclass
class SpectrumRecord:
    """One object's spectrum on the DESI grid (what ``read_spectrum_file`` returns)."""

    targetid: int  # DESI TARGETID, SDSS SPECOBJID, or -1 when the file has none
    flux: np.ndarray  # (7781,) float32, 1e-17 erg/s/cm^2/A
    ivar: np.ndarray  # (7781,) float32, 0 where unusable
    mask: np.ndarray  # (7781,) uint32, 0 = good
    redshift: float | None  # pipeline redshift when known
    source: str  # file name and kind, e.g. "DESI coadd coadd-sv3-dark-26065.fits"
    meta: dict[str, Any] = field(default_factory=dict)  # FIBERMAP / SPECOBJ fields

    @property
    def coverage(self) -> float:
        """Fraction of the 7781 pixels that are good (mask 0 and ivar > 0)."""
        return float(np.mean((self.mask == 0) & (self.ivar > 0)))

    @property
    def wave_range(self) -> tuple[float | None, float | None]:
        """First and last good wavelength (A), or (None, None) when nothing is good."""
        good = np.flatnonzero((self.mask == 0) & (self.ivar > 0))
        if good.size == 0:
            return (None, None)
        return (float(DESI_WAVE[good[0]]), float(DESI_WAVE[good[-1]]))


def pixel_edges(centers: np.ndarray) -> np.ndarray:
    """(n + 1,) edges of pixels with the given (n,) increasing centres (midpoints inside)."""
    c = np.asarray(centers, dtype=np.float64)
    if c.ndim != 1 or c.size < 2 or np.any(np.diff(c) <= 0):
        raise ValueError("pixel_edges: centres must be a 1-D increasing array of >= 2 values")
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def resample_flux_conserving(
    wave_in: np.ndarray,
    flux_in: np.ndarray,
    ivar_in: np.ndarray,
    bad_in: np.ndarray | None = None,
    wave_out: np.ndarray = DESI_WAVE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flux density averaged over each output pixel (the integral is conserved).

    Treats each input pixel as constant over its edges; output flux is the
    overlap-weighted mean, variance sums (overlap fraction)^2 x input variance.
    Returns (flux, ivar, mask) on ``wave_out``; mask has NOCOVERAGE where no input
    overlaps fully and BADPIX where an overlapping input is bad or has ivar 0.
    """
    e_in, e_out = pixel_edges(wave_in), pixel_edges(wave_out)
    flux_in = np.asarray(flux_in, np.float64)
    ivar_in = np.asarray(ivar_in, np.float64)
    bad = ~(ivar_in > 0) | ~np.isfinite(flux_in)
    if bad_in is not None:
        bad |= np.asarray(bad_in, bool)
    var_in = np.where(bad, 0.0, 1.0 / np.where(ivar_in > 0, ivar_in, 1.0))
    lo, hi = e_out[:-1], e_out[1:]
    width = hi - lo
    j0 = np.clip(np.searchsorted(e_in, lo, side="right") - 1, 0, len(flux_in) - 1)
    flux, var, covered = np.zeros_like(lo), np.zeros_like(lo), np.zeros_like(lo)
    any_bad = np.zeros(lo.shape, bool)
    span = int(np.ceil(width.max() / np.diff(e_in).min())) + 2  # inputs one output can touch
    for k in range(span):
        j = np.clip(j0 + k, 0, len(flux_in) - 1)
        ov = np.clip(np.minimum(hi, e_in[j + 1]) - np.maximum(lo, e_in[j]), 0.0, None)
        ov = np.where(j0 + k < len(flux_in), ov, 0.0)
        frac = ov / width
        flux += frac * np.where(bad[j], 0.0, flux_in[j])
        var += frac**2 * var_in[j]
        covered += frac
        any_bad |= (frac > 0) & bad[j]
    mask = np.zeros(lo.shape, np.uint32)
    mask[covered < 1 - 1e-6] |= NOCOVERAGE
    mask[any_bad] |= BADPIX
    ok = mask == 0
    ivar = np.where(ok & (var > 0), 1.0 / np.where(var > 0, var, 1.0), 0.0)
    return np.where(ok, flux, 0.0).astype(np.float32), ivar.astype(np.float32), mask


def fits_error(kind: str, name: str, exc: Exception) -> ValueError:
    """A one-line error for an unreadable FITS file: astropy's first sentence, no advice."""
    reason = str(exc).split(". ")[0].rstrip(".")
    return ValueError(f"{kind} {name}: not a readable FITS file ({reason})")
