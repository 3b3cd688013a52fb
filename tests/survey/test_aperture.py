"""Photometry measured on cutouts: aperture fluxes, errors from the image noise, asinh mags."""

from __future__ import annotations

import numpy as np
import pytest

from scifm.survey.photometry import aperture_photometry, asinh_mag


def _stamps(n: int, flux: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 152, 152, 3): a centred Gaussian source (FWHM ~1.3") of ``flux`` per band + noise."""
    yy, xx = np.mgrid[:152, :152] - 75.5
    psf = np.exp(-0.5 * (yy**2 + xx**2) / 2.1**2)
    psf /= psf.sum()
    clean = psf[None, :, :, None] * np.asarray(flux)[None, None, None, :]
    return (clean + rng.normal(0.0, sigma, (n, 152, 152, 3))).astype(np.float32)


def test_aperture_flux_and_error_follow_the_image_noise():
    rng = np.random.default_rng(0)
    flux, sigma = np.array([5.0, 10.0, 20.0]), 0.01
    flux_hat, err = aperture_photometry(_stamps(300, flux, sigma, rng), 3.5)
    n_pix = np.pi * (3.5 / 0.262) ** 2
    np.testing.assert_allclose(err, sigma * np.sqrt(n_pix), rtol=0.05)  # from the frame's MAD
    np.testing.assert_allclose(flux_hat.mean(0), flux, rtol=0.01)  # the PSF fits in 3.5"
    pull = (flux_hat - flux) / err  # the quoted errors describe the scatter
    assert 0.85 < pull.std() < 1.15 and abs(pull.mean()) < 0.2


def test_asinh_magnitudes():
    mag, err = asinh_mag(np.array([100.0, 0.0, -0.5]), np.array([0.1, 0.1, 0.1]))
    assert mag[0] == pytest.approx(22.5 - 2.5 * np.log10(100.0), abs=1e-5)  # bright: AB
    assert err[0] == pytest.approx(2.5 / np.log(10) * 0.1 / 100.0, rel=1e-4)
    assert np.isfinite(mag).all() and mag[2] > mag[1] > mag[0]  # faint and negative stay finite
    assert np.isnan(asinh_mag(np.array([1.0]), np.array([0.0]))[0]).all()  # blank cutout


def test_aperture_that_does_not_fit_is_an_error():
    with pytest.raises(ValueError, match=r"does not fit a 152 x 152 cutout"):
        aperture_photometry(np.zeros((1, 152, 152, 3)), 20.0)
    with pytest.raises(ValueError, match=r"expected \(N, H, W, 3\)"):
        aperture_photometry(np.zeros((152, 152, 3)))
