"""Broad-band g, r, z fluxes synthesized from a spectrum through the DECam filters.

speclite (Kirkby et al.) ships the ``decam2014-g/r/z`` response curves of the
Legacy Surveys south. The full-range model spectrum is used: the DESI window
(3600-9824 A) stops inside the z filter and would underestimate its flux.
Fluxes are in nanomaggies (AB: m = 22.5 - 2.5 log10 f), the unit of Legacy
Surveys catalogues and of the images AstroCLIP uses.

``aperture_photometry`` measures what a survey catalogue would: fluxes in a circular
aperture on the noisy cutouts, with errors from the image noise, and ``asinh_mag``
turns them into magnitudes that stay finite for faint objects. The noiseless band
fluxes above are the truth a simulation knows; baselines must use the measured ones.
"""

from __future__ import annotations

import functools

import numpy as np

FILTERS = ("decam2014-g", "decam2014-r", "decam2014-z")
# Aperture of the measured photometry: radius 3.5", one of the Legacy Surveys apflux radii.
APERTURE_RADIUS_ARCSEC = 3.5


@functools.lru_cache(maxsize=4)
def load_filters(names: tuple[str, ...] = FILTERS):
    """speclite ``FilterSequence`` for ``names`` (cached; reading the curves costs ~0.1 s)."""
    import speclite.filters

    return speclite.filters.load_filters(*names)


@functools.lru_cache(maxsize=4)
def _filter_tables(names: tuple[str, ...]) -> tuple[tuple[np.ndarray, np.ndarray, float], ...]:
    """(wavelength, response, AB zero point / (h c)) of each filter, plain float64."""
    from speclite.filters import _hc_constant

    return tuple((np.asarray(f.wavelength, np.float64), np.asarray(f.response, np.float64),
                  float(f.ab_zeropoint.value) * float(_hc_constant.value))
                 for f in load_filters(names))  # fmt: skip


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
    tables = _filter_tables(tuple(filters))
    lo = min(t[0][0] for t in tables) - 50.0
    hi = max(t[0][-1] for t in tables) + 50.0
    if wavelength[0] > lo or wavelength[-1] < hi:
        raise ValueError(
            f"band_fluxes: spectrum covers {wavelength[0]:.0f}-{wavelength[-1]:.0f} A; "
            f"filters {filters} need {lo:.0f}-{hi:.0f} A"
        )
    return np.array([_ab_maggies(wavelength, flux, *t) for t in tables]) * 1e9


def _ab_maggies(
    wave: np.ndarray, flux: np.ndarray, f_wave: np.ndarray, f_resp: np.ndarray, zero: float
) -> float:
    """speclite's ``FilterResponse.get_ab_maggies(flux, wave)`` (photon-weighted, trapezoid
    rule) without its per-call astropy and scipy objects: the integrand on the spectrum's
    samples inside the filter, plus the filter's own nodes where no sample falls between
    two of them (the spectrum linearly interpolated there), over the AB zero point."""
    start = int(np.flatnonzero(wave <= f_wave[0])[-1]) if wave[0] < f_wave[0] else 0
    stop = int(np.flatnonzero(wave >= f_wave[-1])[0]) + 1 if wave[-1] > f_wave[-1] else wave.size
    w, f = wave[start:stop], flux[start:stop]
    integrand = f * np.interp(w, f_wave, f_resp, left=0.0, right=0.0)
    quad = w.copy()
    extra = 1 + np.flatnonzero(np.diff(np.searchsorted(w, f_wave[1:])) == 0)  # undersampled
    if extra.size:
        quad = np.concatenate([w, f_wave[extra]])
        order = np.argsort(quad)
        quad = quad[order]
        integrand = np.concatenate([integrand, np.interp(f_wave[extra], w, f) * f_resp[extra]])
        integrand = integrand[order]
    quad[0], quad[-1] = max(quad[0], f_wave[0]), min(quad[-1], f_wave[-1])
    return float(np.trapezoid(integrand * quad, quad)) / zero


def nmgy_to_mag(flux: np.ndarray) -> np.ndarray:
    """AB magnitude of fluxes in nanomaggies (NaN for non-positive flux)."""
    flux = np.asarray(flux, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, 22.5 - 2.5 * np.log10(flux), np.nan)


def aperture_photometry(
    images: np.ndarray,
    radius_arcsec: float = APERTURE_RADIUS_ARCSEC,
    *,
    pixel_scale: float = 0.262,
    border_px: int = 12,
) -> tuple[np.ndarray, np.ndarray]:
    """Aperture fluxes (N, 3) and their errors (N, 3) in nanomaggies, measured on cutouts.

    ``images`` (N, H, W, 3) are sky-subtracted g, r, z cutouts in nanomaggies with the
    galaxy at the centre. The flux is the sum of the pixels whose centres lie within
    ``radius_arcsec`` of the cutout centre. The error comes from the image noise: the
    per-pixel sky sigma, estimated robustly (1.4826 x MAD) from the ``border_px`` wide
    frame of the cutout, times sqrt(pixels in the aperture). The source's own photon
    noise is not included (a real cutout carries no gain): errors of the brightest
    galaxies are underestimates. Non-finite pixels count as 0.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"aperture_photometry: images {images.shape}; expected (N, H, W, 3)")
    _, h, w, _ = images.shape
    r_px = radius_arcsec / pixel_scale
    if not 0 < r_px <= min(h, w) / 2 - border_px:
        raise ValueError(
            f'aperture_photometry: radius {radius_arcsec}" = {r_px:.1f} px does not fit a '
            f"{h} x {w} cutout inside its {border_px} px noise frame"
        )
    yy, xx = np.mgrid[:h, :w]
    inside = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= r_px**2  # (H, W)
    frame = np.ones((h, w), bool)
    frame[border_px:-border_px, border_px:-border_px] = False
    flux = np.nan_to_num(images[:, inside].astype(np.float64)).sum(1)  # (N, 3)
    edge = np.nan_to_num(images[:, frame].astype(np.float64))  # (N, n_frame, 3)
    sigma = 1.4826 * np.median(np.abs(edge - np.median(edge, 1, keepdims=True)), 1)
    return flux, sigma * np.sqrt(inside.sum())


def asinh_mag(flux: np.ndarray, flux_err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Asinh magnitudes and their errors (Lupton, Gunn & Szalay 1999) of nanomaggy fluxes.

    The softening b is the flux error itself: for flux >> b this is the AB magnitude
    22.5 - 2.5 log10(flux); faint and negative fluxes stay finite, as a measured
    catalogue's must. Error: 2.5 / ln 10 * sigma / sqrt(flux**2 + 4 b**2). A flux without
    a positive error (a blank or fully masked cutout) has no magnitude: NaN.
    """
    flux, b = np.asarray(flux, np.float64), np.asarray(flux_err, np.float64)
    b = np.where(b > 0, b, np.nan)
    k = 2.5 / np.log(10)
    mag = 22.5 - k * (np.arcsinh(flux / (2 * b)) + np.log(b))
    return mag, k * b / np.sqrt(flux**2 + 4 * b**2)
