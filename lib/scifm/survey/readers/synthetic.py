"""Files in the real formats for tests: specutils' DESI coadds, and tiny written ones.

PyPI ships real DESI coadds (inside specutils' tests; ``specutils_desi_coadds``
finds them) but no SDSS spec file, redrock file or Legacy Surveys cutout; the
writers here follow the published data models so the readers can be exercised
offline (as the_well does for its format).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np
from astropy.io import fits

SPECUTILS_DESI_DATA = "io/default_loaders/tests/desi_test_data"  # inside the specutils package


def specutils_desi_coadds(pattern: str = "coadd-*.fits") -> list[Path]:
    """The real DESI coadd files shipped inside the installed specutils, sorted.

    Found through the installed package (no import of it), wherever it lives.
    Raises ``ModuleNotFoundError`` when specutils is not installed and
    ``FileNotFoundError`` when it is but holds no file matching ``pattern``.
    """
    spec = importlib.util.find_spec("specutils")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "specutils is not installed; its DESI test files need it (pip install 'scifm[astro]')",
            name="specutils",
        )
    folder = Path(spec.origin).parent / SPECUTILS_DESI_DATA
    files = sorted(folder.glob(pattern))
    if not files:
        version = importlib.metadata.version("specutils")
        raise FileNotFoundError(
            f"specutils {version} is installed but {folder} holds no {pattern}; "
            "expected the DESI test data its wheels ship (specutils >= 1.15)"
        )
    return files


def write_sdss_spec(
    path: str | Path,
    loglam: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    z: float,
    and_mask: np.ndarray | None = None,
    specobjid: int = 1_234_567_890_123,
) -> Path:
    """An SDSS DR8-style spec file: COADD (flux, loglam, ivar, and_mask) + SPECOBJ (Z)."""
    n = len(loglam)
    and_mask = np.zeros(n, np.int32) if and_mask is None else np.asarray(and_mask, np.int32)
    coadd = fits.BinTableHDU.from_columns([
        fits.Column(name="flux", format="E", array=np.asarray(flux, np.float32)),
        fits.Column(name="loglam", format="E", array=np.asarray(loglam, np.float32)),
        fits.Column(name="ivar", format="E", array=np.asarray(ivar, np.float32)),
        fits.Column(name="and_mask", format="J", array=and_mask),
        fits.Column(name="or_mask", format="J", array=and_mask),
    ], name="COADD")  # fmt: skip
    specobj = fits.BinTableHDU.from_columns([
        fits.Column(name="SPECOBJID", format="21A", array=np.array([str(specobjid)])),
        fits.Column(name="PLATE", format="J", array=np.array([1234])),
        fits.Column(name="MJD", format="J", array=np.array([56000])),
        fits.Column(name="FIBERID", format="J", array=np.array([42])),
        fits.Column(name="Z", format="E", array=np.array([z], np.float32)),
        fits.Column(name="CLASS", format="6A", array=np.array(["GALAXY"])),
    ], name="SPECOBJ")  # fmt: skip
    fits.HDUList([fits.PrimaryHDU(), coadd, specobj]).writeto(path, overwrite=True)
    return Path(path)


def write_redrock(path: str | Path, targetid: np.ndarray, z: np.ndarray) -> Path:
    """A redrock file with a REDSHIFTS table (TARGETID, Z, ZWARN, SPECTYPE)."""
    t = fits.BinTableHDU.from_columns([
        fits.Column(name="TARGETID", format="K", array=np.asarray(targetid, np.int64)),
        fits.Column(name="Z", format="D", array=np.asarray(z, np.float64)),
        fits.Column(name="ZWARN", format="K", array=np.zeros(len(z), np.int64)),
        fits.Column(name="SPECTYPE", format="6A", array=np.array(["GALAXY"] * len(z))),
    ], name="REDSHIFTS")  # fmt: skip
    fits.HDUList([fits.PrimaryHDU(), t]).writeto(path, overwrite=True)
    return Path(path)


def write_legacy_cutout(path: str | Path, image: np.ndarray, layout: str = "cube") -> Path:
    """An (H, W, 3) g, r, z image as a cutout-service cube or as one HDU per band."""
    image = np.asarray(image, np.float32)
    if layout == "cube":
        hdu = fits.PrimaryHDU(np.moveaxis(image, -1, 0))
        hdu.header["BANDS"] = "grz"
        for i, b in enumerate("grz"):
            hdu.header[f"BAND{i}"] = b
        hdus = [hdu]
    elif layout == "planes":
        hdus = [fits.PrimaryHDU()]
        for i, b in enumerate("grz"):
            h = fits.ImageHDU(image[..., i], name=f"IMAGE_{b.upper()}")
            h.header["BAND"] = b
            hdus.append(h)
    else:
        raise ValueError(f"write_legacy_cutout: layout {layout!r}; expected 'cube' or 'planes'")
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return Path(path)
