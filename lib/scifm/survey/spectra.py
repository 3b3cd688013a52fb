"""Galaxy spectra on the DESI coadd grid: bagpipes models plus DESI-like noise.

bagpipes (Carnall et al. 2018) turns the parameters of ``params.py`` into an
observed-frame spectrum (BC03 stellar populations, Cloudy nebular lines,
Calzetti dust, velocity broadening). Noise follows what a DESI coadd shows
(DESI Collaboration 2022, instrument overview): per-pixel variance from the sky
continuum, the night-sky emission lines (OI 5577, NaD, OI 6300, the OH forest in
the red) and the object itself, divided by a throughput that falls at the blue
end, in the dichroic overlaps and in the far red. Fluxes are in
1e-17 erg/s/cm^2/A, as in DESI and AstroCLIP. The model here is the galaxy's
total light; ``simulate.py`` scales it to what the 1.5" fibre collects
(``fiber.py``) before the noise is drawn, so the object's photon noise is that of
the fibre flux.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from scifm.survey.bagpipes_fast import fast_model_galaxy
from scifm.survey.config import SurveyConfig
from scifm.survey.templates import vacuum_to_air

FLUX_UNIT = 1e-17  # erg/s/cm^2/A per stored flux unit
BIRTH_CLOUD_ETA = 2.0  # extra attenuation of stars < 10 Myr (Charlot & Fall 2000)

# Rest-frame emission lines worth marking (name -> Angstrom, vacuum-ish as in bagpipes' list).
EMISSION_LINES: dict[str, float] = {
    "[OII]": 3727.4,
    "Hbeta": 4861.3,
    "[OIII]4959": 4958.9,
    "[OIII]5007": 5006.8,
    "Halpha": 6562.8,
    "[NII]6583": 6583.5,
    "[SII]": 6724.0,
}
# Rest-frame absorption lines worth marking (Angstrom, vacuum).
ABSORPTION_LINES: dict[str, float] = {"Ca K": 3934.8, "Ca H": 3969.6}
_BAGPIPES_LINES = {
    "halpha": ("H  1  6562.80A",),
    "hbeta": ("H  1  4861.32A",),
    "oii": ("O  2  3726.03A", "O  2  3728.81A"),
    "oiii": ("O  3  5006.84A",),
}

# Strong night-sky lines (Angstrom, air): OI, NaD, OI, then OH bands in the red.
SKY_LINES = np.array(
    [5577.3, 5889.9, 5895.9, 6300.3, 6363.8, 6498.7, 6553.6, 6863.9, 6923.2, 7276.4,
     7316.3, 7340.9, 7369.2, 7401.7, 7750.6, 7794.1, 7821.5, 7853.3, 7913.7, 7964.6,
     7993.3, 8344.6, 8399.2, 8430.2, 8465.4, 8505.1, 8827.1, 8885.9, 8919.6, 8958.1,
     9001.4, 9375.9, 9439.7, 9476.9, 9522.0, 9568.0, 9607.0, 9651.0, 9701.0, 9793.0]
)  # fmt: skip
SKY_LINE_STRENGTH = np.where(SKY_LINES < 6400, 30.0, 12.0)  # peak / continuum at 0.8 A pixels


def sky_spectrum(wavelength: np.ndarray) -> np.ndarray:
    """Relative sky brightness per pixel: a red-rising continuum plus emission lines."""
    cont = 1.0 + 1.5 * np.clip((wavelength - 5000.0) / 5000.0, 0.0, None) ** 2
    sigma = 0.8  # DESI resolution at these wavelengths is ~1.8 A FWHM
    lines = np.zeros_like(wavelength)
    for lam, amp in zip(SKY_LINES, SKY_LINE_STRENGTH):
        near = np.abs(wavelength - lam) < 6 * sigma
        lines[near] += amp * np.exp(-0.5 * ((wavelength[near] - lam) / sigma) ** 2)
    return cont + lines


def throughput(wavelength: np.ndarray) -> np.ndarray:
    """Relative throughput: blue fall-off, dips at the arm overlaps (5800, 7600 A), red tail."""
    blue = 1.0 / (1.0 + np.exp(-(wavelength - 3900.0) / 120.0))
    red = 1.0 / (1.0 + np.exp((wavelength - 9600.0) / 150.0))
    dips = 1.0 - 0.35 * np.exp(-0.5 * ((wavelength - 5800.0) / 40.0) ** 2)
    dips -= 0.35 * np.exp(-0.5 * ((wavelength - 7600.0) / 40.0) ** 2)
    return np.clip(blue * red * dips, 0.05, None)


def noise_sigma(
    cfg: SurveyConfig, wavelength: np.ndarray, flux: np.ndarray, exposure: float
) -> np.ndarray:
    """Per-pixel sigma (flux units) of a DESI-like coadd of a galaxy with model ``flux``."""
    sky, thru, ref = _sky_and_throughput(np.asarray(wavelength, np.float64).tobytes())
    # Variance in units where the sky at 6000 A gives spec_noise**2; the object adds its photons.
    var_sky = cfg.spec_noise**2 * sky / thru / ref
    var_obj = cfg.spec_noise**2 * np.clip(flux, 0.0, None) / thru / 4.0
    return np.sqrt((var_sky + var_obj) / exposure)


@functools.lru_cache(maxsize=8)
def _sky_and_throughput(wavelength: bytes) -> tuple[np.ndarray, np.ndarray, float]:
    """Sky and throughput on a wavelength grid (given as float64 bytes), and sky / throughput
    at 6000 A: the same for every galaxy, so computed once per grid."""
    wave = np.frombuffer(wavelength, np.float64)
    ref = sky_spectrum(np.array([6000.0]))[0] / throughput(np.array([6000.0]))[0]
    return sky_spectrum(wave), throughput(wave), float(ref)


@dataclass
class ModelSpectrum:
    """What bagpipes returns for one galaxy (noiseless)."""

    flux: np.ndarray  # (n_wave,) observed-frame flux on the DESI grid, 1e-17 erg/s/cm2/A
    full_wave: np.ndarray  # (M,) observed wavelength (A) of the full-range model
    full_flux: np.ndarray  # (M,) full-range flux, erg/s/cm2/A (for photometry)
    log_mstar: float  # log10 surviving stellar mass (Msun)
    log_sfr: float  # log10 SFR averaged over 100 Myr (Msun/yr); -5 floor
    age_mw: float  # mass-weighted age (Gyr)
    zmet_mw: float  # mass-weighted metallicity (Z/Zsun)
    lines: dict[str, float]  # line fluxes (1e-17 erg/s/cm2): halpha, hbeta, oii, oiii
    ew_halpha: float  # rest-frame equivalent width of H-alpha (A, emission positive)


class SpectrumSimulator:
    """A bagpipes model kept alive between galaxies (building one costs ~1 s, updating ~10 ms)."""

    def __init__(self, cfg: SurveyConfig) -> None:
        self.cfg = cfg
        self.wavelength = cfg.wavelength
        self._model = None

    @staticmethod
    def components(p: dict[str, float]) -> dict:
        """bagpipes model components for parameters ``p`` (see ``params.PARAM_DOC``)."""
        return {
            "redshift": float(p["redshift"]),
            "delayed": {
                "age": float(p["age"]),
                "tau": float(p["tau"]),
                "massformed": float(p["log_mass_formed"]),
                "metallicity": float(p["metallicity"]),
            },
            # eta = 2: birth clouds (and so the lines) see twice the dust of older stars.
            "dust": {"type": "Calzetti", "Av": float(p["av"]), "eta": BIRTH_CLOUD_ETA},
            "nebular": {"logU": float(p["log_u"])},
            "veldisp": float(p["veldisp"]),
        }

    def model(self, p: dict[str, float]) -> ModelSpectrum:
        comp = self.components(p)
        if self._model is None:
            # bagpipes' grid and line list are in air (above 2000 A), the DESI grid in vacuum:
            # ask bagpipes for the air wavelengths of the vacuum grid (the refractive index at
            # the observed rather than the rest wavelength: < 0.03 A off for z <= 0.6)
            self._model = fast_model_galaxy(comp, spec_wavs=vacuum_to_air(self.wavelength))
        else:
            self._model.update(comp)
        m = self._model
        if m.sfh.unphysical:
            raise ValueError(f"galaxy {int(p['object_id'])}: SFH older than the universe: {p}")
        z = float(p["redshift"])
        full_wave = m.wavelengths * (1.0 + z)
        lines = {k: sum(float(m.line_fluxes[n]) for n in names) / FLUX_UNIT
                 for k, names in _BAGPIPES_LINES.items()}  # fmt: skip
        return ModelSpectrum(
            flux=(m.spectrum[:, 1] / FLUX_UNIT).astype(np.float64),
            full_wave=full_wave,
            full_flux=np.asarray(m.spectrum_full, dtype=np.float64),
            log_mstar=float(m.sfh.stellar_mass),
            log_sfr=float(np.log10(max(float(m.sfh.sfr), 1e-5))),
            age_mw=float(m.sfh.mass_weighted_age),
            zmet_mw=float(m.sfh.mass_weighted_zmet),
            lines=lines,
            ew_halpha=rest_equivalent_width(full_wave, m.spectrum_full, z, lines["halpha"]),
        )


def rest_equivalent_width(wave: np.ndarray, flux: np.ndarray, z: float, line_flux: float) -> float:
    """Rest-frame H-alpha EW from a line flux (1e-17 cgs) and the model continuum beside it."""
    rest = wave / (1.0 + z)
    side = ((rest > 6480) & (rest < 6520)) | ((rest > 6610) & (rest < 6650))
    cont = float(np.median(flux[side])) / FLUX_UNIT  # observed f_lambda near the line
    return line_flux / max(cont, 1e-12) / (1.0 + z)


def observe_spectrum(
    cfg: SurveyConfig, flux: np.ndarray, exposure: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy flux and its inverse variance, (n_wave,) float32 each, and the sigma (float64)."""
    sigma = noise_sigma(cfg, cfg.wavelength, flux, exposure)
    noisy = flux + sigma * rng.standard_normal(flux.shape)
    return noisy.astype(np.float32), (1.0 / sigma**2).astype(np.float32), sigma
