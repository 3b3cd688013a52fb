"""Fibre aperture fractions: the share of a galaxy's light a 1.5" DESI fibre collects.

DESI spectra are fibre spectra: each fibre (1.5" diameter on the sky; DESI
Collaboration 2022) collects the light of the galaxy's own profile convolved
with the seeing, not its total flux. A nearby, extended galaxy sends a few per
cent of its light down the fibre; a compact distant one most of it. Bulge and
disk have their own sizes (and colours), so each gets its own fraction.

The fraction of a unit-flux profile I (galaxy * PSF) inside a circle of radius R is

    F = integral_{|x|<R} I(x) d^2x = R * integral_0^inf J1(k R) P(k) Ibar(k) dk,

with P the (circular) PSF's Fourier transform and Ibar(k) the galaxy's transform
averaged over the direction of k. An area-preserving shear to axis ratio q maps
I(k) to f(k sqrt(cos^2 t / q + q sin^2 t)) for the circular profile's f, so the
position angle drops out. The circular transforms come from GalSim (Rowe et al.
2015) once per Sersic index on a grid of k * half-light radius, which makes the
integral exact for any size, from point sources to galaxies larger than the
cutout (where the FFT of a drawn stamp would need huge grids). It is done in
d ln k on 384 nodes, the three bands of a galaxy sharing its transform (~1 ms a
galaxy). ``tests/survey/test_fiber.py`` checks it against a GalSim-drawn,
PSF-convolved image summed inside the aperture, ``tests/survey/test_speed.py``
against a 40,000-node integral (1e-5).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import j1

FIBER_DIAMETER = 1.5  # arcsec, DESI fibre on the sky
_U = np.geomspace(1e-5, 1e5, 1201)  # k * size grid of the cached transforms
_LOG_U0, _DLOG_U = np.log(_U[0]), np.log(_U[-1] / _U[0]) / (_U.size - 1)  # uniform in log u
_K_MIN = 1e-6  # 1/arcsec, lower end of the k integral (J1(kR) ~ kR/2 below)
# k nodes, uniform in log k (the integral is done in d ln k), and position angles. 384 nodes
# agree with a 64,000-node integral to 2e-6 (relative) on the survey's galaxies; 24 angles
# on a quarter turn to 1e-5 (the integrand is smooth and periodic in the angle).
_N_K, _N_THETA = 384, 24


@functools.lru_cache(maxsize=16)
def _sersic_table(n: float) -> np.ndarray:
    """Transform of a unit-flux, unit half-light-radius Sersic profile at ``_U`` (real, (U,))."""
    import galsim

    prof = galsim.Sersic(n=float(n), half_light_radius=1.0)
    return np.array([prof.kValue(galsim.PositionD(float(u), 0.0)).real for u in _U])


@functools.lru_cache(maxsize=4)
def _moffat_table(beta: float) -> tuple[np.ndarray, float]:
    """Transform of a unit-flux, unit-FWHM Moffat PSF at ``_U`` (real, (U,)), and the u past
    which it stays below 1e-9 (where the integrand dies)."""
    import galsim

    prof = galsim.Moffat(beta=float(beta), fwhm=1.0)
    table = np.array([prof.kValue(galsim.PositionD(float(u), 0.0)).real for u in _U])
    return table, float(_U[np.flatnonzero(np.abs(table) > 1e-9)[-1]])


def _lookup(table: np.ndarray, log_u: np.ndarray) -> np.ndarray:
    """Table value at ``exp(log_u)``: linear in log u between the nodes, 1 below, 0 above."""
    t = (log_u - _LOG_U0) / _DLOG_U  # position on the uniform log grid
    with np.errstate(invalid="ignore"):  # u = 0 (a point source): t = -inf, replaced below
        i = np.clip(np.floor(t), 0, table.size - 2).astype(np.intp)
        out = table[i] + (t - i) * (table[i + 1] - table[i])
    return np.where(t < 0, 1.0, np.where(t > table.size - 1, 0.0, out))


def aperture_fractions(
    half_light_radius: float,
    *,
    sersic_n: float = 1.0,
    axis_ratio: float = 1.0,
    psf_fwhm: np.ndarray | float = 1.2,
    psf_beta: float = 3.5,
    diameter: float = FIBER_DIAMETER,
) -> np.ndarray:
    """Fractions (P,) of one Sersic profile, convolved with P Moffat PSFs, inside a circle.

    ``half_light_radius`` (0 = point source), ``psf_fwhm`` ((P,) or a scalar) and
    ``diameter`` are in arcsec, ``axis_ratio`` is b/a of the galaxy. The PSFs share the
    galaxy's transform (the costly part), so the bands of one galaxy come in one call.
    Each fraction lies in [0, 1].
    """
    fwhm = np.atleast_1d(np.asarray(psf_fwhm, np.float64))  # (P,)
    r, q = float(half_light_radius), float(axis_ratio)
    if r < 0 or (fwhm <= 0).any() or diameter <= 0 or not 0 < q <= 1 or fwhm.ndim != 1:
        raise ValueError(
            f"aperture_fraction: half_light_radius={half_light_radius}, psf_fwhm={psf_fwhm}, "
            f"diameter={diameter}, axis_ratio={axis_ratio}; expected radius >= 0, "
            "fwhm (scalar or 1-D) and diameter > 0, 0 < axis_ratio <= 1"
        )
    radius = 0.5 * diameter
    psf, u_max = _moffat_table(psf_beta)
    # One k grid for all PSFs, up to where the sharpest one's transform dies.
    log_k = np.linspace(np.log(_K_MIN), np.log(u_max / fwhm.min()), _N_K)  # (K,)
    k = np.exp(log_k)
    theta = (np.arange(_N_THETA) + 0.5) * (0.5 * np.pi / _N_THETA)  # quarter turn suffices
    stretch = np.sqrt(np.cos(theta) ** 2 / q + q * np.sin(theta) ** 2)  # (T,)
    with np.errstate(divide="ignore"):
        log_u = np.log(r) + log_k[:, None] + np.log(stretch)  # (K, T)
    gal = _lookup(_sersic_table(float(sersic_n)), log_u).mean(axis=1)  # (K,)
    integrand = j1(k * radius) * gal * _lookup(psf, log_k + np.log(fwhm)[:, None])  # (P, K)
    g = integrand * k  # integrand per d ln k
    h = log_k[1] - log_k[0]
    # Trapezoid rule in ln k, plus [0, k0] where J1(kR) ~ kR/2 makes the integrand linear.
    frac = radius * (h * (g.sum(1) - 0.5 * (g[:, 0] + g[:, -1])) + integrand[:, 0] * k[0] / 2)
    return np.clip(frac, 0.0, 1.0)


def aperture_fraction(
    half_light_radius: float,
    *,
    sersic_n: float = 1.0,
    axis_ratio: float = 1.0,
    psf_fwhm: float = 1.2,
    psf_beta: float = 3.5,
    diameter: float = FIBER_DIAMETER,
) -> float:
    """Fraction of a Sersic profile, convolved with a Moffat PSF, inside a centred circle.

    ``half_light_radius``, ``psf_fwhm`` and ``diameter`` are in arcsec (0 radius = point
    source); ``axis_ratio`` is b/a of the galaxy. Returns a number in [0, 1].
    """
    fracs = aperture_fractions(half_light_radius, sersic_n=sersic_n, axis_ratio=axis_ratio,
                               psf_fwhm=psf_fwhm, psf_beta=psf_beta, diameter=diameter)  # fmt: skip
    return float(fracs[0])


# Effective wavelengths (A) of DECam g, r, z: where the per-band fractions are pinned.
BAND_WAVELENGTH = (4800.0, 6400.0, 9200.0)


def fiber_fractions(p: dict[str, float], diameter: float = FIBER_DIAMETER) -> np.ndarray:
    """(3,) fraction of the g, r, z light of galaxy ``p`` (``params.PARAM_DOC``) in the fibre.

    The fibre sits on the galaxy's centre and sees the band's seeing; bulge and disk have
    their own sizes, so the band's fraction mixes their fractions by the band's bulge
    share (the bulge is redder, ``images.bulge_fractions``).
    """
    from scifm.survey.images import MOFFAT_BETA, bulge_fractions

    fb = bulge_fractions(float(p["bulge_frac"]))  # (3,) per band
    fwhm = np.array([float(p[f"psf_fwhm_{band}"]) for band in "grz"])
    seeing = dict(psf_fwhm=fwhm, psf_beta=MOFFAT_BETA, diameter=diameter)
    bulge = aperture_fractions(float(p["r_bulge_arcsec"]), sersic_n=float(p["n_bulge"]),
                               axis_ratio=float(p["q_bulge"]), **seeing)  # fmt: skip
    disk = aperture_fractions(float(p["r_disk_arcsec"]), sersic_n=1.0,
                              axis_ratio=float(p["q_disk"]), **seeing)  # fmt: skip
    return fb * bulge + (1.0 - fb) * disk


def fiber_curve(fractions: np.ndarray, wavelength: np.ndarray) -> np.ndarray:
    """Fibre fraction at each ``wavelength`` (A): linear between the g, r, z values, flat beyond."""
    return np.interp(wavelength, BAND_WAVELENGTH, np.asarray(fractions, np.float64))
