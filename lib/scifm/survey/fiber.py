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
cutout (where the FFT of a drawn stamp would need huge grids).
``tests/survey/test_fiber.py`` checks it against a GalSim-drawn, PSF-convolved
image summed inside the aperture.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import j1

FIBER_DIAMETER = 1.5  # arcsec, DESI fibre on the sky
_U = np.geomspace(1e-5, 1e5, 1201)  # k * size grid of the cached transforms
_K_MIN = 1e-6  # 1/arcsec, lower end of the k integral (J1(kR) ~ kR/2 below)
_N_K, _N_THETA = 4000, 24


@functools.lru_cache(maxsize=16)
def _sersic_table(n: float) -> np.ndarray:
    """Transform of a unit-flux, unit half-light-radius Sersic profile at ``_U`` (real, (U,))."""
    import galsim

    prof = galsim.Sersic(n=float(n), half_light_radius=1.0)
    return np.array([prof.kValue(galsim.PositionD(float(u), 0.0)).real for u in _U])


@functools.lru_cache(maxsize=4)
def _moffat_table(beta: float) -> np.ndarray:
    """Transform of a unit-flux, unit-FWHM Moffat PSF at ``_U`` (real, (U,))."""
    import galsim

    prof = galsim.Moffat(beta=float(beta), fwhm=1.0)
    return np.array([prof.kValue(galsim.PositionD(float(u), 0.0)).real for u in _U])


def _lookup(table: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Table value at ``u`` (log-linear interpolation; 1 below the grid, 0 above)."""
    out = np.interp(np.log(np.clip(u, _U[0], None)), np.log(_U), table, right=0.0)
    return np.where(u < _U[0], 1.0, out)


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
    if half_light_radius < 0 or psf_fwhm <= 0 or diameter <= 0 or not 0 < axis_ratio <= 1:
        raise ValueError(
            f"aperture_fraction: half_light_radius={half_light_radius}, psf_fwhm={psf_fwhm}, "
            f"diameter={diameter}, axis_ratio={axis_ratio}; expected radius >= 0, "
            "fwhm and diameter > 0, 0 < axis_ratio <= 1"
        )
    radius = 0.5 * diameter
    psf = _moffat_table(psf_beta)
    # The PSF transform sets where the integrand dies; stop where it is below 1e-9.
    u_max = _U[np.flatnonzero(np.abs(psf) > 1e-9)[-1]]
    k = np.geomspace(_K_MIN, u_max / psf_fwhm, _N_K)  # (K,) 1/arcsec
    theta = (np.arange(_N_THETA) + 0.5) * (0.5 * np.pi / _N_THETA)  # quarter turn suffices
    stretch = np.sqrt(np.cos(theta) ** 2 / axis_ratio + axis_ratio * np.sin(theta) ** 2)
    u = half_light_radius * k[:, None] * stretch[None]  # (K, T)
    gal = _lookup(_sersic_table(sersic_n), u).mean(axis=1)  # (K,)
    integrand = j1(k * radius) * _lookup(psf, k * psf_fwhm) * gal
    frac = radius * float(np.trapezoid(integrand, k) + integrand[0] * k[0] / 2)  # + [0, k0]
    return float(np.clip(frac, 0.0, 1.0))


# Effective wavelengths (A) of DECam g, r, z: where the per-band fractions are pinned.
BAND_WAVELENGTH = (4800.0, 6400.0, 9200.0)


def fiber_fractions(p: dict[str, float], diameter: float = FIBER_DIAMETER) -> np.ndarray:
    """(3,) fraction of the g, r, z light of galaxy ``p`` (``params.PARAM_DOC``) in the fibre.

    The fibre sits on the galaxy's centre and sees the band's seeing; bulge and disk have
    their own sizes, so the band's fraction mixes their fractions by the band's bulge
    share (the bulge is redder, ``images.bulge_fractions``).
    """
    from scifm.survey.images import MOFFAT_BETA, bulge_fractions

    out = np.empty(3)
    for k, (band, fb) in enumerate(zip("grz", bulge_fractions(float(p["bulge_frac"])))):
        seeing = dict(
            psf_fwhm=float(p[f"psf_fwhm_{band}"]), psf_beta=MOFFAT_BETA, diameter=diameter
        )
        bulge = aperture_fraction(float(p["r_bulge_arcsec"]), sersic_n=float(p["n_bulge"]),
                                  axis_ratio=float(p["q_bulge"]), **seeing)  # fmt: skip
        disk = aperture_fraction(float(p["r_disk_arcsec"]), sersic_n=1.0,
                                 axis_ratio=float(p["q_disk"]), **seeing)  # fmt: skip
        out[k] = fb * bulge + (1.0 - fb) * disk
    return out


def fiber_curve(fractions: np.ndarray, wavelength: np.ndarray) -> np.ndarray:
    """Fibre fraction at each ``wavelength`` (A): linear between the g, r, z values, flat beyond."""
    return np.interp(wavelength, BAND_WAVELENGTH, np.asarray(fractions, np.float64))
