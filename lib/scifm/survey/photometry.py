"""Broad-band g, r, z fluxes synthesized from a spectrum through the DECam filters.

speclite (Kirkby et al.) ships the ``decam2014-g/r/z`` response curves of the
Legacy Surveys south. The full-range model spectrum is used: the DESI window
(3600-9824 A) stops inside the z filter and would underestimate its flux.
Fluxes are in nanomaggies (AB: m = 22.5 - 2.5 log10 f), the unit of Legacy
Surveys catalogues and of the images AstroCLIP uses.
"""

from __future__ import annotations

import functools

import numpy as np

FILTERS = ("decam2014-g", "decam2014-r", "decam2014-z")


@functools.lru_cache(maxsize=4)
def load_filters(names: tuple[str, ...] = FILTERS):
    """speclite ``FilterSequence`` for ``names`` (cached; reading the curves costs ~0.1 s)."""
    import speclite.filters

    return speclite.filters.load_filters(*names)


def band_fluxes(
    wavelength: np.ndarray, flux: np.ndarray, filters: tuple[str, ...] = FILTERS
) -> np.ndarray:
    """(n_bands,) fluxes in nanomaggies of a spectrum ``flux`` (erg/s/cm2/A) at ``wavelength`` (A).

    The spectrum must cover every filter (about 3300-11000 A for DECam).
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    if wavelength.shape != flux.shape or wavelength.ndim != 1:
        raise ValueError(
            f"band_fluxes: wavelength {wavelength.shape} and flux {flux.shape} must be equal 1-D"
        )
    fs = load_filters(tuple(filters))
    lo = min(f.wavelength[0] for f in fs) - 50.0
    hi = max(f.wavelength[-1] for f in fs) + 50.0
    if wavelength[0] > lo or wavelength[-1] < hi:
        raise ValueError(
            f"band_fluxes: spectrum covers {wavelength[0]:.0f}-{wavelength[-1]:.0f} A; "
            f"filters {filters} need {lo:.0f}-{hi:.0f} A"
        )
    i0 = max(int(np.searchsorted(wavelength, lo)) - 1, 0)  # one sample beyond each end
    i1 = int(np.searchsorted(wavelength, hi)) + 1
    maggies = fs.get_ab_maggies(flux[i0:i1], wavelength[i0:i1])
    return np.array([float(maggies[n][0]) for n in fs.names]) * 1e9


def nmgy_to_mag(flux: np.ndarray) -> np.ndarray:
    """AB magnitude of fluxes in nanomaggies (NaN for non-positive flux)."""
    flux = np.asarray(flux, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, 22.5 - 2.5 * np.log10(flux), np.nan)
