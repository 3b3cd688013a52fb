"""Galaxy templates for the template-fitting redshift, in redrock's file format.

The redshift fitter (``redshift.py``) runs DESI's redrock (Bailey et al. 2023,
arXiv:2305.06975) with non-negative amplitudes (its NMF solver) on a basis of
rest-frame spectra built here, independently of the survey's own draws, so that
fitting the simulated survey is not circular:

- five stellar-population continua: single bursts (instantaneous star formation)
  at hand-picked ages and metallicities, no dust, no nebular emission. The survey
  draws delayed-tau histories with continuous ages, metallicities 0.2-2.0 Zsun,
  Calzetti dust and Cloudy nebular emission (``params.py``); a burst is none of
  those, and three of the five metallicities (0.1, 2.5 Zsun) lie outside its
  range. The spectra come from bagpipes' BC03 grid (the same stellar library the
  survey uses: the only one installed offline), so the library itself is shared;
  what is independent is the star-formation history, metallicity and dust.
- six emission-line templates with fixed, textbook line ratios: Gaussian lines at
  vacuum rest wavelengths (DESI spectra are in vacuum), 100 km/s wide, integrated
  over each 1 A template pixel: [OII] 3727/3730, the higher Balmer lines
  (Hbeta, Hgamma, Hdelta in case-B ratios), [OIII] 4960/5008, Halpha,
  [NII] 6550/6585 and [SII] 6718/6733. Lines are separate templates so that dust
  (the Balmer decrement) and excitation can vary.

No low-order polynomial is included: redrock's NMF solver needs every basis
vector non-negative with a non-negative amplitude, and a polynomial is neither.

bagpipes works in air wavelengths above 2000 A (its line list has Halpha at
6562.80 A); the stellar spectra are computed at the air wavelengths of a vacuum
grid so the file is in vacuum throughout.

Nothing here is random. The file is made once by

    python -m scifm.survey.templates --out assets/survey/redshift_templates.fits

(bagpipes needed; ~15 s) and shipped; the fitter reads it without bagpipes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.special import erf

from scifm.core.paths import assets_dir

WAVE_MIN, WAVE_MAX, WAVE_STEP = 1200.0, 10500.0, 1.0  # rest frame, vacuum Angstrom
LINE_SIGMA_KMS = 100.0  # emission-line width (velocity dispersion), km/s
C_KMS = 299_792.458

# (age in Gyr, metallicity Z/Zsun) of the single-burst continua.
BURSTS: tuple[tuple[float, float], ...] = ((0.01, 0.1), (0.1, 0.4), (0.6, 1.0), (2.5, 1.0),
                                            (10.0, 2.5))  # fmt: skip
# Emission-line templates: name -> ((vacuum rest wavelength A, relative flux), ...).
LINES: dict[str, tuple[tuple[float, float], ...]] = {
    "[OII]": ((3727.09, 1.0), (3729.88, 1.3)),
    "Hbeta+Hgamma+Hdelta": ((4862.68, 1.0), (4341.68, 0.468), (4102.89, 0.259)),
    "[OIII]": ((4960.30, 1.0), (5008.24, 2.98)),
    "Halpha": ((6564.61, 1.0),),
    "[NII]": ((6549.86, 1.0), (6585.27, 2.95)),
    "[SII]": ((6718.29, 1.2), (6732.67, 1.0)),
}
DEFAULT_PATH = "survey/redshift_templates.fits"  # under assets/


def rest_wave() -> np.ndarray:
    """(M,) rest-frame vacuum wavelengths of the templates (A)."""
    return WAVE_MIN + WAVE_STEP * np.arange(round((WAVE_MAX - WAVE_MIN) / WAVE_STEP) + 1)


def vacuum_to_air(wave: np.ndarray) -> np.ndarray:
    """Air wavelengths of vacuum ones above 2000 A (Morton 2000, IAU standard)."""
    s2 = (1e4 / wave) ** 2
    n = 1 + 8.34254e-5 + 2.406147e-2 / (130 - s2) + 1.5998e-4 / (38.9 - s2)
    return np.where(wave > 2000.0, wave / n, wave)


def line_template(wave: np.ndarray, lines: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Sum of Gaussians integrated over pixels of width WAVE_STEP; unit total flux."""
    lo, hi = wave - WAVE_STEP / 2, wave + WAVE_STEP / 2
    out = np.zeros_like(wave)
    for center, rel in lines:
        sig = center * LINE_SIGMA_KMS / C_KMS
        cdf = lambda x: 0.5 * (1 + erf((x - center) / (np.sqrt(2) * sig)))  # noqa: B023
        out += rel * (cdf(hi) - cdf(lo)) / WAVE_STEP
    return out / (out.sum() * WAVE_STEP)


def burst_templates(wave: np.ndarray) -> np.ndarray:
    """(len(BURSTS), M) bagpipes single-burst spectra, each of unit mean in 4000-5000 A."""
    import bagpipes

    air = vacuum_to_air(wave)
    out, model = [], None
    for age, zmet in BURSTS:
        comp = {"redshift": 0.0, "burst": {"age": age, "massformed": 10.0, "metallicity": zmet}}
        if model is None:
            model = bagpipes.model_galaxy(comp, spec_wavs=air)
        else:
            model.update(comp)
        f = np.asarray(model.spectrum[:, 1], np.float64)
        out.append(f / f[(wave > 4000) & (wave < 5000)].mean())
    return np.stack(out)


def build_templates() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(wave (M,), flux (K, M), names) of the whole basis: bursts, then lines."""
    wave = rest_wave()
    lines = np.stack([line_template(wave, v) for v in LINES.values()])
    # Lines to a peak near the continua's level keeps the NNLS normal equations well scaled.
    lines /= lines.max(axis=1, keepdims=True)
    names = [f"burst age {a:g} Gyr Z {z:g} Zsun" for a, z in BURSTS] + list(LINES)
    return wave, np.concatenate([burst_templates(wave), lines]), names


def write_templates(path: str | Path) -> Path:
    """Write the basis as a redrock template file (BASIS_VECTORS image, NMF, GALAXY)."""
    wave, flux, names = build_templates()
    hdu = fits.ImageHDU(flux.astype(np.float32), name="BASIS_VECTORS")
    hdr = hdu.header
    hdr.update(CRVAL1=float(wave[0]), CDELT1=WAVE_STEP, LOGLAM=0, RRTYPE="GALAXY",
               RRSUBTYP="SCIFM", RRMETHOD="NMF", RRIGM="Inoue14", VERSION="scifm-1",
               AIRORVAC="vac", LINESIG=LINE_SIGMA_KMS)  # fmt: skip
    for i, name in enumerate(names):
        hdr[f"TEMPL{i}"] = name
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    return path


def read_templates(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(wave, flux (K, M), names) from a template file (default: the shipped one)."""
    path = Path(path) if path is not None else assets_dir() / DEFAULT_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"redshift templates {path}: does not exist; make them with "
            "`python -m scifm.survey.templates --out assets/survey/redshift_templates.fits`"
        )
    try:
        with fits.open(path) as hdul:
            if "BASIS_VECTORS" not in hdul:
                raise ValueError("no BASIS_VECTORS HDU (redrock format)")
            h = hdul["BASIS_VECTORS"].header
            flux = np.asarray(hdul["BASIS_VECTORS"].data, np.float64)
            if flux.ndim != 2 or flux.shape[1] != h["NAXIS1"] or 0 in flux.shape:
                raise ValueError(f"BASIS_VECTORS has shape {flux.shape}; expected (K, NAXIS1)")
            wave = h["CRVAL1"] + h["CDELT1"] * np.arange(h["NAXIS1"])
            names = [str(h.get(f"TEMPL{i}", f"template {i}")) for i in range(flux.shape[0])]
    except (OSError, KeyError, TypeError, ValueError) as e:  # astropy: OSError, KeyError
        raise ValueError(f"redshift templates {path}: {e}") from e
    if not (np.isfinite(flux).all() and np.isfinite(wave).all() and np.all(np.diff(wave) > 0)):
        raise ValueError(f"redshift templates {path}: non-finite basis vectors or a wavelength "
                         "grid that does not increase (CRVAL1, CDELT1)")  # fmt: skip
    return wave, flux, names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scifm.survey.templates", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", default=str(assets_dir() / DEFAULT_PATH), help="output FITS path")
    out = write_templates(p.parse_args(argv).out)
    manifest = {
        "command": f"python -m scifm.survey.templates --out {out}",
        "file": out.name,
        "bytes": out.stat().st_size,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "bursts_age_gyr_metallicity_zsun": BURSTS,
        "lines_vacuum_a_relative_flux": LINES,
        "line_sigma_kms": LINE_SIGMA_KMS,
        "rest_wave_a": [WAVE_MIN, WAVE_MAX, WAVE_STEP],
        "bagpipes": importlib.metadata.version("bagpipes"),
        "seed": None,  # nothing here is random
    }
    (out.parent / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB) and its MANIFEST.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
