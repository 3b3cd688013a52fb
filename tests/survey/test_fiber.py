"""Fibre spectra and image photon noise: aperture fractions, Poisson variance, redshift range."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scifm.survey import SurveyConfig, sample_params
from scifm.survey.fiber import aperture_fraction, fiber_curve, fiber_fractions
from scifm.survey.images import add_image_noise


def _drawn_fraction(hlr: float, n: float, q: float, fwhm: float, radius: float = 0.75) -> float:
    """Reference: GalSim draws galaxy * Moffat on a fine grid; sum the pixels in the circle."""
    import galsim

    gal = galsim.Sersic(n=n, half_light_radius=hlr).shear(q=q, beta=0.7 * galsim.radians)
    img = galsim.Convolve(gal, galsim.Moffat(beta=3.5, fwhm=fwhm)).drawImage(
        nx=240, ny=240, scale=0.02, method="no_pixel"
    )
    y, x = (np.mgrid[:240, :240] - 119.5) * 0.02
    return float(img.array[x**2 + y**2 < radius**2].sum())


@pytest.mark.parametrize(("hlr", "n", "q", "fwhm"), [(0.4, 1.0, 0.5, 1.2), (0.8, 4.0, 0.8, 1.0)])
def test_aperture_fraction_matches_a_galsim_drawing(hlr, n, q, fwhm):
    got = aperture_fraction(hlr, sersic_n=n, axis_ratio=q, psf_fwhm=fwhm)
    assert got == pytest.approx(_drawn_fraction(hlr, n, q, fwhm), abs=0.004)


def test_aperture_fraction_is_one_for_a_point_source_and_falls_with_size():
    assert aperture_fraction(0.0, psf_fwhm=0.01) == pytest.approx(1.0, abs=1e-3)
    sizes = [0.0, 0.3, 1.0, 3.0, 10.0, 50.0]
    fracs = [aperture_fraction(r, psf_fwhm=1.2) for r in sizes]
    assert fracs[0] < 1.0  # seeing alone spills light out of the 1.5" fibre
    assert all(a > b for a, b in itertools.pairwise(fracs))
    # A galaxy much larger than the fibre: the fibre sees its central surface brightness.
    r_s = 50.0 / 1.678  # exponential scale length of a 50" half-light radius
    assert fracs[-1] == pytest.approx(0.75**2 / (2 * r_s**2), rel=0.1)
    with pytest.raises(ValueError, match="axis_ratio"):
        aperture_fraction(1.0, axis_ratio=0.0)


def test_fiber_fractions_per_band_and_curve():
    p = {k: v[0] for k, v in sample_params(SurveyConfig(), 1, seed=0).items()}
    fr = fiber_fractions(p)
    assert fr.shape == (3,) and ((fr > 0) & (fr < 1)).all()
    wave = SurveyConfig().wavelength
    curve = fiber_curve(fr, wave)
    assert curve[0] == fr[0] and curve[-1] == fr[2]
    assert np.isclose(np.interp(6400, wave, curve), fr[1])
    bigger = fiber_fractions({**p, "r_disk_arcsec": 3 * p["r_disk_arcsec"]})
    assert (bigger < fr).all()


def test_image_photon_noise_variance_grows_with_flux():
    rng = np.random.default_rng(0)
    sky, gain = np.array([0.004, 0.005, 0.008]), np.array([3200.0, 3900.0, 2800.0])
    for level in (0.0, 0.1, 1.0):
        clean = np.full((64, 64, 3), level, np.float32)
        noisy = add_image_noise(clean, sky, gain, rng)
        var = noisy.reshape(-1, 3).var(axis=0)
        expected = sky**2 + level / gain
        np.testing.assert_allclose(var, expected, rtol=0.05)
        mean_err = np.abs(noisy.reshape(-1, 3).mean(axis=0) - level)
        assert (mean_err < 5 * np.sqrt(expected / clean[..., 0].size)).all()  # unbiased


def test_redshift_range_reaches_nearby_galaxies():
    cfg = SurveyConfig()
    assert cfg.z_min <= 0.002 and cfg.z_max >= 0.6
    z = sample_params(cfg, 600, seed=1)["redshift"]
    assert z.min() >= cfg.z_min and z.max() <= cfg.z_max
    assert (z < 0.05).any() and (z > 0.4).any()
    assert 0.1 < np.median(z) < 0.3  # BGS-like median redshift
