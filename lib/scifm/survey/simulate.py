"""One galaxy, both modalities: parameters -> bagpipes spectrum -> DECam fluxes -> GalSim image.

This is the step that makes images and spectra share information the way real
DESI x Legacy Surveys pairs do (AstroCLIP, Parker et al. 2024): the image's
band fluxes are synthesized from the very spectrum that is observed, and its
size and shape follow the same mass, redshift and population. The observed
spectrum is a fibre spectrum: the model times the share of the light that falls
into the 1.5" fibre (``fiber.py``), with the noise of that fibre flux.
"""

from __future__ import annotations

import numpy as np

from scifm.survey.config import BANDS, SurveyConfig
from scifm.survey.fiber import fiber_curve, fiber_fractions
from scifm.survey.images import add_image_noise, draw_noiseless
from scifm.survey.params import PARAM_NAMES, sample_galaxy
from scifm.survey.photometry import band_fluxes, nmgy_to_mag
from scifm.survey.spectra import SpectrumSimulator, observe_spectrum

# Name -> meaning of every derived property (stored under /props in a survey file).
PROP_DOC: dict[str, str] = {
    "log_mstar": "log10 surviving stellar mass (Msun), from the bagpipes SFH",
    "log_sfr": "log10 star-formation rate over the last 100 Myr (Msun/yr), floor -5",
    "log_ssfr": "log10 specific SFR (1/yr)",
    "log_z": "log10 mass-weighted stellar metallicity (Z/Zsun)",
    "age": "mass-weighted stellar age (Gyr)",
    "av": "Calzetti V-band attenuation (mag)",
    "quiescent": "1 if drawn from the quiescent population",
    "flux_g": "g flux synthesized from the full spectrum (nanomaggies, noiseless)",
    "flux_r": "r flux synthesized from the full spectrum (nanomaggies, noiseless)",
    "flux_z": "z flux synthesized from the full spectrum (nanomaggies, noiseless)",
    "mag_g": "g AB magnitude", "mag_r": "r AB magnitude", "mag_z": "z AB magnitude",
    "stamp_flux_g": "noiseless g flux inside the 152 x 152 stamp (nanomaggies)",
    "stamp_flux_r": "noiseless r flux inside the stamp (nanomaggies)",
    "stamp_flux_z": "noiseless z flux inside the stamp (nanomaggies)",
    "fiber_frac_g": "share of the g light inside the 1.5\" fibre (seeing included)",
    "fiber_frac_r": "share of the r light inside the fibre",
    "fiber_frac_z": "share of the z light inside the fibre",
    "halpha_flux": "H-alpha line flux (1e-17 erg/s/cm2), total (not fibre), dust attenuated",
    "hbeta_flux": "H-beta line flux (1e-17 erg/s/cm2)",
    "oii_flux": "[OII] 3726+3729 line flux (1e-17 erg/s/cm2)",
    "oiii_flux": "[OIII] 5007 line flux (1e-17 erg/s/cm2)",
    "ew_halpha": "rest-frame H-alpha equivalent width (A, emission positive)",
    "r_half_arcsec": "flux-weighted mean of bulge and disk half-light radii in r (arcsec)",
    "bulge_frac": "bulge-to-total ratio in r",
    "spec_snr": "median S/N per pixel of the fibre spectrum over 6000-7000 A observed",
}  # fmt: skip
PROP_NAMES: tuple[str, ...] = tuple(PROP_DOC)


def simulate_galaxy(
    cfg: SurveyConfig, seed: int, object_id: int, spectra: SpectrumSimulator
) -> dict:
    """Image (H, W, 3), spectrum and ivar (n_wave,), props and params of one galaxy."""
    p = sample_galaxy(cfg, seed, object_id)
    model = spectra.model(p)
    fluxes = band_fluxes(model.full_wave, model.full_flux)
    clean = draw_noiseless(cfg, p, fluxes)
    fractions = fiber_fractions(p, cfg.fiber_diameter)
    fiber_flux = model.flux * fiber_curve(fractions, cfg.wavelength)  # (n_wave,) down the fibre
    # Image and spectrum noise from their own streams: a round-off change in the image (which
    # can shift a Poisson draw) leaves the spectrum's noise as it was.
    sky = np.array([p[f"sky_sigma_{b}"] for b in BANDS])
    image_rng = np.random.default_rng([int(seed), int(object_id), 1])
    image = add_image_noise(clean, sky, np.asarray(cfg.electrons_per_nmgy), image_rng)
    spec_rng = np.random.default_rng([int(seed), int(object_id), 2])
    spectrum, ivar, sigma = observe_spectrum(cfg, fiber_flux, p["spec_exposure"], spec_rng)
    band = (cfg.wavelength > 6000) & (cfg.wavelength < 7000)
    mags = nmgy_to_mag(fluxes)
    props = {
        "log_mstar": model.log_mstar,
        "log_sfr": model.log_sfr,
        "log_ssfr": model.log_sfr - model.log_mstar,
        "log_z": float(np.log10(model.zmet_mw)),
        "age": model.age_mw,
        "av": p["av"],
        "quiescent": p["quiescent"],
        **{f"flux_{b}": float(f) for b, f in zip(BANDS, fluxes)},
        **{f"mag_{b}": float(m) for b, m in zip(BANDS, mags)},
        **{f"stamp_flux_{b}": float(f) for b, f in zip(BANDS, clean.sum((0, 1), np.float64))},
        **{f"fiber_frac_{b}": float(f) for b, f in zip(BANDS, fractions)},
        **{f"{k}_flux": v for k, v in model.lines.items()},
        "ew_halpha": model.ew_halpha,
        "r_half_arcsec": p["bulge_frac"] * p["r_bulge_arcsec"]
        + (1 - p["bulge_frac"]) * p["r_disk_arcsec"],
        "bulge_frac": p["bulge_frac"],
        "spec_snr": float(np.median(fiber_flux[band] / sigma[band])),
    }
    return {"image": image, "spectrum": spectrum, "ivar": ivar, "props": props, "params": p}


def simulate_range(
    cfg: SurveyConfig, seed: int, start: int, stop: int, spectra: SpectrumSimulator | None = None
) -> dict:
    """Galaxies ``start .. stop - 1`` stacked: images (n, H, W, 3), spectra, ivar, props, params."""
    spectra = spectra or SpectrumSimulator(cfg)
    recs = [simulate_galaxy(cfg, seed, i, spectra) for i in range(start, stop)]
    return {
        "images": np.stack([r["image"] for r in recs]).astype(np.float32),
        "spectra": np.stack([r["spectrum"] for r in recs]).astype(np.float32),
        "ivar": np.stack([r["ivar"] for r in recs]).astype(np.float32),
        "props": {k: np.array([r["props"][k] for r in recs]) for k in PROP_NAMES},
        "params": {k: np.array([r["params"][k] for r in recs]) for k in PARAM_NAMES},
    }
