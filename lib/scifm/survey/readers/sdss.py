"""SDSS / BOSS ``spec-PLATE-MJD-FIBER.fits`` files onto the DESI grid.

An SDSS spectrum file (DR8+ data model) has a ``COADD`` table (HDU 1) with
``flux`` (1e-17 erg/s/cm^2/A), ``loglam`` (log10 vacuum wavelength, step 1e-4),
``ivar`` and ``and_mask``, and a ``SPECOBJ`` table (``SPALL`` in SDSS-V) with the
pipeline redshift ``Z``. The spectrum is resampled flux-conservingly onto the
DESI grid (both vacuum wavelengths, same flux unit); pixels outside the SDSS
range or touching a flagged pixel are masked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from scifm.survey.readers.grid import SpectrumRecord, fits_error, resample_flux_conserving

SPECOBJ_HDUS = ("SPECOBJ", "SPALL")


def _column(table: fits.FITS_rec, name: str) -> np.ndarray | None:
    """Case-insensitive column lookup (SDSS files use lower case, SDSS-V upper)."""
    for c in table.columns.names:
        if c.lower() == name.lower():
            return np.asarray(table[c])
    return None


def read_sdss_spec(path: str | Path) -> list[SpectrumRecord]:
    """The one object of an SDSS spec file as a record on the DESI grid."""
    path = Path(path)
    try:
        hdul = fits.open(path)
    except OSError as e:
        raise fits_error("SDSS spec", path.name, e) from e
    with hdul:
        coadd = hdul["COADD"] if "COADD" in hdul else hdul[1] if len(hdul) > 1 else None
        if not isinstance(coadd, fits.BinTableHDU):
            raise ValueError(f"SDSS spec {path.name}: no COADD table in HDU 1")
        t = coadd.data
        cols = {n: _column(t, n) for n in ("flux", "loglam", "ivar", "and_mask")}
        missing = [n for n in ("flux", "loglam", "ivar") if cols[n] is None]
        if missing:
            raise ValueError(
                f"SDSS spec {path.name}: COADD lacks columns {missing}; expected flux, loglam, "
                "ivar (and and_mask) as in spec-PLATE-MJD-FIBER.fits"
            )
        for name, col in cols.items():
            if col is not None and (col.ndim != 1 or col.dtype.kind not in "biuf"):
                raise ValueError(
                    f"SDSS spec {path.name}: COADD column {name} has dtype {col.dtype} and shape "
                    f"{col.shape}; expected one number per pixel ({len(t)},)"
                )
        loglam = cols["loglam"].astype(np.float64)
        if loglam.size < 2 or not np.all(np.diff(loglam) > 0) or not 3.3 < loglam[0] < 4.2:
            raise ValueError(
                f"SDSS spec {path.name}: loglam {loglam[:1]}...: expected increasing log10(A)"
            )
        bad = cols["and_mask"] != 0 if cols["and_mask"] is not None else None
        flux, ivar, mask = resample_flux_conserving(
            10**loglam, cols["flux"], cols["ivar"], bad_in=bad
        )
        z, tid, meta = None, -1, {}
        for name in SPECOBJ_HDUS:
            if name in hdul and isinstance(hdul[name], fits.BinTableHDU):
                so = hdul[name].data
                zc = _column(so, "Z")
                z = float(zc[0]) if zc is not None and np.isfinite(zc[0]) else None
                sid = _column(so, "SPECOBJID")
                sid = str(sid[0]).strip() if sid is not None else ""
                if sid.isdigit():
                    meta["specobjid"] = sid  # eBOSS plates >= 8192 give ids >= 2**63
                    tid = int(sid) if int(sid) < 2**63 else -1  # target ids are int64
                for key in ("PLATE", "MJD", "FIBERID", "CLASS", "ZWARNING", "PLUG_RA", "PLUG_DEC"):
                    col = _column(so, key)
                    if col is not None:
                        v = col[0]
                        meta[key.lower()] = v.item() if hasattr(v, "item") else str(v).strip()
                break
    return [SpectrumRecord(targetid=tid, flux=flux, ivar=ivar, mask=mask, redshift=z,
                           source=f"SDSS spec {path.name}", meta=meta)]  # fmt: skip
