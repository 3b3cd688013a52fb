"""Both modalities of one galaxy: photometry reference, image flux, spectrum noise."""

from __future__ import annotations

import numpy as np
import pytest

from scifm.survey import SurveyConfig, sample_galaxy
from scifm.survey.images import bulge_fractions, draw_noiseless
from scifm.survey.photometry import band_fluxes, nmgy_to_mag
from scifm.survey.spectra import SpectrumSimulator, noise_sigma, sky_spectrum


def test_band_fluxes_match_the_ab_definition():
    # A flat f_nu of 3631e-9 Jy is 1 nanomaggie (AB 22.5) in every band.
    wave = np.linspace(3000.0, 12000.0, 20000)
    fnu = 3631e-9 * 1e-23  # erg/s/cm2/Hz
    flam = fnu * 2.99792458e18 / wave**2
    np.testing.assert_allclose(band_fluxes(wave, flam), 1.0, rtol=2e-3)
    np.testing.assert_allclose(nmgy_to_mag(np.array([1.0, 100.0])), [22.5, 17.5])
    with pytest.raises(ValueError, match="need"):
        band_fluxes(wave[wave > 4000], flam[wave > 4000])


@pytest.fixture(scope="module")
def galaxy():
    cfg = SurveyConfig()
    p = sample_galaxy(cfg, 0, 7)
    return cfg, p, SpectrumSimulator(cfg).model(p)


def test_spectrum_model_is_on_the_desi_grid_and_full_range_photometry_matters(galaxy):
    cfg, _p, m = galaxy
    assert m.flux.shape == (7781,) and np.all(np.isfinite(m.flux))
    assert cfg.wavelength[0] == 3600.0 and cfg.wavelength[-1] == pytest.approx(9824.0)
    full = band_fluxes(m.full_wave, m.full_flux)
    # The DESI window alone, padded with zeros, loses z-band flux (the filter runs past 9824 A).
    wave = np.concatenate([[3000.0, 3599.0], cfg.wavelength, [9825.0, 12000.0]])
    flux = np.concatenate([[0.0, 0.0], m.flux * 1e-17, [0.0, 0.0]])
    cut = band_fluxes(wave, flux)
    assert cut[2] < 0.97 * full[2]
    np.testing.assert_allclose(cut[1], full[1], rtol=0.03)  # r lies inside the window
    assert 8.5 < m.log_mstar < 12.5 and 0 < m.age_mw < 14


def test_noise_has_sky_lines_and_falls_with_exposure(galaxy):
    cfg, _, m = galaxy
    w = cfg.wavelength
    sky = sky_spectrum(w)
    assert sky[np.argmin(np.abs(w - 5577.3))] > 10 * np.median(sky)
    s1 = noise_sigma(cfg, w, m.flux, exposure=1.0)
    s4 = noise_sigma(cfg, w, m.flux, exposure=4.0)
    np.testing.assert_allclose(s4, s1 / 2)
    assert s1[np.argmin(np.abs(w - 5577.3))] > 3 * np.median(s1)


def test_image_sums_to_the_synthesized_flux_and_bulge_is_redder(galaxy):
    cfg, p, _ = galaxy
    fluxes = np.array([10.0, 20.0, 30.0])
    img = draw_noiseless(cfg, p, fluxes)
    assert img.shape == (152, 152, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img.sum(axis=(0, 1)), fluxes, rtol=0.02)
    fb = bulge_fractions(0.4)
    assert fb[0] < fb[1] < fb[2] and fb[1] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="fluxes"):
        draw_noiseless(cfg, p, np.ones(2))


def test_survey_lines_sit_at_their_vacuum_wavelengths(monkeypatch):
    """The DESI grid is in vacuum while bagpipes' lines are in air: the survey asks bagpipes for
    the air wavelengths of the grid, which moves H-alpha at z = 0.3 by 6564.6/n - 6564.6 ~ 2.35 A
    to the red against a spectrum read off the grid as if it were air. (bagpipes' own grid puts
    a narrow line into one ~3 A bin, so the absolute centroid is only good to about a bin.)"""
    import scifm.survey.spectra as spectra

    cfg = SurveyConfig()
    p = {**sample_galaxy(cfg, 0, 7), "redshift": 0.3, "age": 1.0, "tau": 5.0, "av": 0.2,
         "log_u": -3.0, "veldisp": 50.0}  # fmt: skip
    wave, vac = cfg.wavelength, 6564.61 * 1.3
    near = np.abs(wave - vac) < 15

    def centroid() -> float:
        flux = SpectrumSimulator(cfg).model(p).flux[near]
        w = np.clip(flux - np.median(flux), 0, None)
        return float((wave[near] * w).sum() / w.sum())

    ours = centroid()
    monkeypatch.setattr(spectra, "vacuum_to_air", lambda w: w)
    shift = ours - centroid()
    assert abs(shift - vac * (1 - 1 / 1.000275)) < 0.3, shift
    assert abs(ours - vac) < 2.0, ours
