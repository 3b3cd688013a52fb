"""The fast paths of the survey generator against the slow references they replace.

Each vectorised step must give the reference's numbers: bagpipes' own model (spectres'
resampling, its stellar and nebular sums), speclite's AB photometry and GalSim's
``drawImage`` to round-off; the fibre integral on its coarser k grid to 1e-5 of a dense
one. A file begun by another generator version is refused.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.special import j1

from scifm.survey import SurveyConfig, generate_survey, sample_galaxy
from scifm.survey.bagpipes_fast import resample_flux
from scifm.survey.fiber import _K_MIN, _U, _moffat_table, _sersic_table, aperture_fractions
from scifm.survey.images import draw_noiseless, draw_noiseless_galsim
from scifm.survey.io import VERSION, create_survey_file
from scifm.survey.photometry import FILTERS, band_fluxes, load_filters
from scifm.survey.spectra import SpectrumSimulator, noise_sigma, sky_spectrum, throughput
from scifm.survey.templates import vacuum_to_air


def test_resample_flux_is_spectres():
    spectres = pytest.importorskip("spectres")
    rng = np.random.default_rng(0)
    old = np.cumsum(rng.uniform(0.1, 3.0, 400))
    new = np.cumsum(rng.uniform(0.05, 4.0, 500)) - 40.0  # runs past both ends of ``old``
    flux = rng.normal(size=400)
    with pytest.warns(RuntimeWarning, match="outside"):
        expected = spectres.spectres(new, old, flux, fill=0)
    np.testing.assert_allclose(resample_flux(new, old, flux), expected, rtol=0, atol=1e-12)


def test_fast_bagpipes_model_is_bagpipes():
    bagpipes = pytest.importorskip("bagpipes")
    cfg = SurveyConfig()
    sim, ref = SpectrumSimulator(cfg), None
    for object_id in (3, 11):  # a star-forming and a quiescent galaxy of seed 2
        p = sample_galaxy(cfg, 2, object_id)
        sim.model(p)
        comp = sim.components(p)
        ref = ref or bagpipes.model_galaxy(comp, spec_wavs=vacuum_to_air(cfg.wavelength))
        ref.update(comp)
        fast = sim._model
        np.testing.assert_allclose(fast.spectrum_full, ref.spectrum_full, rtol=1e-12, atol=0)
        np.testing.assert_allclose(fast.spectrum, ref.spectrum, rtol=1e-12, atol=1e-40)
        for name, value in ref.line_fluxes.items():
            assert fast.line_fluxes[name] == pytest.approx(value, rel=1e-12, abs=1e-300)


def test_band_fluxes_are_speclites():
    fs = load_filters(FILTERS)
    rng = np.random.default_rng(1)
    for step in (0.5, 60.0):  # sampled finer than the filter curves, and coarser
        wave = np.arange(3000.0, 11500.0, step)
        flux = 1e-17 * (1 + 0.3 * np.sin(wave / 300.0) + 0.1 * rng.random(wave.size))
        maggies = fs.get_ab_maggies(flux, wave)
        expected = np.array([float(maggies[n][0]) for n in fs.names]) * 1e9
        np.testing.assert_allclose(band_fluxes(wave, flux), expected, rtol=1e-12)


@pytest.mark.parametrize("object_id", [0, 6, 39])  # stamps on 192, 192 and 768 px FFT grids
def test_image_bands_at_once_equal_galsim_drawimage(object_id):
    cfg = SurveyConfig()
    p = sample_galaxy(cfg, 2, object_id)
    fluxes = np.array([10.0, 20.0, 30.0])
    fast, ref = draw_noiseless(cfg, p, fluxes), draw_noiseless_galsim(cfg, p, fluxes)
    assert fast.shape == ref.shape == (152, 152, 3) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, ref, rtol=0, atol=2e-6 * ref.max())


def test_image_odd_stamp_and_sharp_psf_equal_galsim():
    cfg = SurveyConfig(image_size=41)
    p = sample_galaxy(cfg, 2, 5)
    fluxes = np.array([1.0, 2.0, 3.0])
    ref = draw_noiseless_galsim(cfg, p, fluxes)
    np.testing.assert_allclose(draw_noiseless(cfg, p, fluxes), ref, atol=2e-6 * ref.max())
    sharp = {**p, "psf_fwhm_z": 0.3}  # a PSF finer than the pixels: GalSim's own path
    ref = draw_noiseless_galsim(cfg, sharp, fluxes)
    np.testing.assert_allclose(draw_noiseless(cfg, sharp, fluxes), ref, atol=2e-6 * ref.max())


def _dense_aperture_fraction(r: float, n: float, q: float, fwhm: float) -> float:
    """The fibre integral on 40,000 k nodes and 96 angles (linear in k, as version 2 did)."""
    radius, (psf, u_max) = 0.75, _moffat_table(3.5)
    k = np.geomspace(_K_MIN, u_max / fwhm, 40_000)
    theta = (np.arange(96) + 0.5) * (0.5 * np.pi / 96)
    stretch = np.sqrt(np.cos(theta) ** 2 / q + q * np.sin(theta) ** 2)

    def lookup(table, u):
        out = np.interp(np.log(np.clip(u, _U[0], None)), np.log(_U), table, right=0.0)
        return np.where(u < _U[0], 1.0, out)

    gal = lookup(_sersic_table(n), r * k[:, None] * stretch).mean(axis=1)
    integrand = j1(k * radius) * lookup(psf, k * fwhm) * gal
    return radius * float(np.trapezoid(integrand, k) + integrand[0] * k[0] / 2)


@pytest.mark.parametrize(("r", "n", "q"), [(0.0, 1.0, 1.0), (0.3, 4.0, 0.6), (1.2, 1.0, 0.15),
                                           (25.0, 2.5, 0.8)])  # fmt: skip
def test_fibre_integral_on_few_nodes_matches_a_dense_one(r, n, q):
    fwhm = np.array([1.45, 1.3, 1.2])
    got = aperture_fractions(r, sersic_n=n, axis_ratio=q, psf_fwhm=fwhm)
    dense = [_dense_aperture_fraction(r, n, q, f) for f in fwhm]
    np.testing.assert_allclose(got, dense, rtol=1e-5)


def test_cached_noise_terms_equal_the_formula():
    cfg = SurveyConfig()
    w = cfg.wavelength
    flux = np.linspace(-1.0, 5.0, w.size)
    ref = sky_spectrum(np.array([6000.0]))[0] / throughput(np.array([6000.0]))[0]
    var = cfg.spec_noise**2 * sky_spectrum(w) / throughput(w) / ref
    var += cfg.spec_noise**2 * np.clip(flux, 0.0, None) / throughput(w) / 4.0
    for _ in range(2):  # the second call reads the cache
        np.testing.assert_array_equal(noise_sigma(cfg, w, flux, 2.0), np.sqrt(var / 2.0))


def test_a_file_of_another_generator_version_is_not_resumed(tiny_config, tmp_path):
    path = tmp_path / "old.h5"
    create_survey_file(path, tiny_config, 8, 1)
    with h5py.File(path, "r+") as f:
        assert f.attrs["version"] == VERSION and "bagpipes" in f.attrs["provenance"]
        f.attrs["version"] = VERSION - 1
    with pytest.raises(ValueError, match=f"generator version {VERSION - 1}"):
        generate_survey(path, 8, config=tiny_config, seed=1, progress=False)
