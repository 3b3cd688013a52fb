"""Configuration of the simulated DESI x Legacy Surveys galaxy survey.

The survey follows the data AstroCLIP (Parker et al. 2024, arXiv:2310.03024)
trains on: DESI bright-galaxy spectra on the 7781-bin coadd grid paired with
152 x 152 g, r, z Legacy Surveys cutouts at 0.262"/pixel. One set of physical
parameters per galaxy drives both modalities (see ``params.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from scifm.core.config import ConfigMixin
from scifm.survey.readers.grid import DESI_N_WAVE, DESI_WAVE_MIN, DESI_WAVE_STEP

BANDS = ("g", "r", "z")


@dataclass(frozen=True)
class SurveyConfig(ConfigMixin):
    """Everything that sets the survey's populations, noise and file layout."""

    # --- sample selection (DESI BGS-like flux-limited sample) ---
    z_min: float = 0.002  # nearby galaxies as in BGS; the largest overflow the 152 px stamp
    z_max: float = 0.6  # BGS + low-z LRG range used by AstroCLIP
    r_mag_limit: float = 19.5  # approximate r-band flux limit of the bright-galaxy survey
    log_mstar_min: float = 9.0  # smallest stellar mass drawn (log10 Msun)
    log_mstar_max: float = 11.9  # largest stellar mass drawn
    # --- populations ---
    quiescent_mass: float = 10.6  # log M* where half of the galaxies are quiescent
    quiescent_width: float = 0.35  # width (dex) of the quenched-fraction transition
    # --- image (Legacy Surveys DR9 south) ---
    image_size: int = 152  # cutout side in pixels (AstroCLIP stores 152, crops 144/96)
    pixel_scale: float = 0.262  # arcsec per pixel of DECam coadds
    psf_fwhm: tuple[float, float, float] = (1.45, 1.30, 1.20)  # median seeing g, r, z (arcsec)
    psf_depth: tuple[float, float, float] = (24.7, 24.1, 23.3)  # 5-sigma point-source depth (AB)
    depth_scatter: float = 0.25  # per-galaxy scatter of the depth (mag), tiles differ
    # Photo-electrons per nanomaggy in a coadd: DECam zero points (25.08, 25.29, 24.92 AB mag
    # for 1 e-/s) times ~300 s of total exposure; sets the source photon (Poisson) noise.
    electrons_per_nmgy: tuple[float, float, float] = (3200.0, 3900.0, 2800.0)
    # --- spectrum (DESI coadd grid and noise) ---
    wave_min: float = DESI_WAVE_MIN  # first wavelength of the DESI coadd grid (Angstrom)
    wave_step: float = DESI_WAVE_STEP  # DESI coadd pixel (Angstrom)
    n_wave: int = DESI_N_WAVE  # number of coadd pixels (3600 ... 9824 A)
    spec_noise: float = 0.55  # continuum sigma at 6000 A of the sky alone (1e-17 erg/s/cm2/A)
    spec_noise_scatter: float = 0.2  # lognormal scatter (dex) of the effective exposure time
    fiber_diameter: float = 1.5  # DESI fibre on the sky (arcsec); spectra are fibre fluxes
    # --- generation ---
    chunk_size: int = 64  # galaxies per work unit; resume granularity of a generated file

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # tests: small stamps are not allowed (the layout is fixed); presets differ in noise only
        "tiny": {"chunk_size": 4},
        "small": {"chunk_size": 32},
        "desi": {},
    }

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if any(isinstance(x, float) and not math.isfinite(x)
                   for x in (v if isinstance(v, tuple) else (v,))):  # fmt: skip
                raise ValueError(f"SurveyConfig: {f.name}={v}; expected finite numbers")
        if not 0.0 < self.z_min < self.z_max <= 3.0:
            raise ValueError(
                f"SurveyConfig: z_min={self.z_min}, z_max={self.z_max}; "
                "expected 0 < z_min < z_max <= 3"
            )
        if not self.log_mstar_min < self.log_mstar_max:
            raise ValueError(
                f"SurveyConfig: log_mstar_min={self.log_mstar_min} must be below "
                f"log_mstar_max={self.log_mstar_max}"
            )
        if not 16 <= self.image_size <= 1024:
            raise ValueError(
                f"SurveyConfig: image_size={self.image_size}; expected 16 to 1024 pixels"
            )
        if self.pixel_scale <= 0 or self.wave_step <= 0 or self.n_wave < 2:
            raise ValueError("SurveyConfig: pixel_scale, wave_step must be > 0 and n_wave >= 2")
        # an optical spectrograph's grid: bagpipes models the rest UV to the near IR, and the
        # H-alpha equivalent width and the lines need a few hundred pixels of it
        if not (1000.0 <= self.wave_min and self.wave_max <= 25000.0 and self.n_wave >= 100):
            raise ValueError(
                f"SurveyConfig: wave_min={self.wave_min}, wave_step={self.wave_step}, "
                f"n_wave={self.n_wave} (grid {self.wave_min:.0f}-{self.wave_max:.0f} A); "
                "expected an optical grid inside 1000-25000 A with n_wave >= 100"
            )
        if len(self.psf_fwhm) != 3 or len(self.psf_depth) != 3:
            raise ValueError("SurveyConfig: psf_fwhm and psf_depth need one value per band g, r, z")
        if len(self.electrons_per_nmgy) != 3 or min(self.electrons_per_nmgy) <= 0:
            raise ValueError(
                f"SurveyConfig: electrons_per_nmgy={self.electrons_per_nmgy}; expected three "
                "positive gains (g, r, z)"
            )
        if self.fiber_diameter <= 0:
            raise ValueError(f"SurveyConfig: fiber_diameter={self.fiber_diameter}; expected > 0")
        if min(self.psf_fwhm) <= 0:
            raise ValueError(f"SurveyConfig: psf_fwhm={self.psf_fwhm}; expected positive arcsec")
        if self.spec_noise <= 0 or self.chunk_size < 1:
            raise ValueError("SurveyConfig: spec_noise must be > 0 and chunk_size >= 1")

    @property
    def wavelength(self) -> np.ndarray:
        """The DESI coadd grid, lambda_i = wave_min + wave_step * i (Angstrom), float64."""
        return self.wave_min + self.wave_step * np.arange(self.n_wave)

    @property
    def wave_max(self) -> float:
        return self.wave_min + self.wave_step * (self.n_wave - 1)

    @property
    def pixel_sigma(self) -> np.ndarray:
        """Sky noise per pixel (nanomaggies) for g, r, z at the median depth.

        A 5-sigma point-source depth m gives sigma_flux = 10**((22.5 - m) / 2.5) / 5 nmgy;
        a Moffat-ish PSF spreads that over its noise-equivalent area 4 pi sigma_psf^2.
        """
        fwhm = np.asarray(self.psf_fwhm) / self.pixel_scale  # pixels
        nea = 4.0 * np.pi * (fwhm / 2.3548) ** 2
        return 10 ** ((22.5 - np.asarray(self.psf_depth)) / 2.5) / 5.0 / np.sqrt(nea)
