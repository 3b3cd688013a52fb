"""One entry point for spectrum files: DESI coadds and SDSS spec files by their content."""

from __future__ import annotations

from pathlib import Path

from astropy.io import fits

from scifm.survey.readers.desi import read_desi_coadd
from scifm.survey.readers.grid import SpectrumRecord, fits_error
from scifm.survey.readers.sdss import read_sdss_spec


def spectrum_file_kind(path: str | Path) -> str:
    """'desi' or 'sdss' from the HDUs of ``path`` (ValueError when neither)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"spectrum file {path}: does not exist")
    try:
        with fits.open(path) as hdul:
            names = [h.name for h in hdul]
            cols = (
                [c.lower() for c in hdul[1].columns.names]
                if len(hdul) > 1 and isinstance(hdul[1], fits.BinTableHDU)
                else []
            )
    except OSError as e:
        raise fits_error("spectrum file", path.name, e) from e
    if "B_FLUX" in names or "FIBERMAP" in names:
        return "desi"
    if "COADD" in names or "loglam" in cols:
        return "sdss"
    raise ValueError(
        f"spectrum file {path.name}: HDUs {names} look like neither a DESI coadd (B_FLUX, "
        "FIBERMAP) nor an SDSS spec file (COADD with loglam)"
    )


def read_spectrum_file(path: str | Path, redrock: str | Path | None = None) -> list[SpectrumRecord]:
    """Every usable object of a DESI coadd or SDSS spec file, on the 7781-bin DESI grid.

    ``redrock`` (DESI only) is a redrock/zbest file whose redshifts are joined on TARGETID.
    """
    kind = spectrum_file_kind(path)
    if kind == "desi":
        return read_desi_coadd(path, redrock=redrock)
    if redrock is not None:
        raise ValueError(f"spectrum file {Path(path).name}: a redrock file applies to DESI only")
    return read_sdss_spec(path)
