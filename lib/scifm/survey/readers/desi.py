"""DESI coadd FITS files (``coadd-*.fits``) onto the 7781-bin DESI grid.

A coadd holds three spectrograph arms, B (3600-5800 A), R (5760-7620 A) and
Z (7520-9824 A), each with ``X_WAVELENGTH``, ``X_FLUX``, ``X_IVAR``, ``X_MASK``
on the same 0.8 A grid, plus a ``FIBERMAP`` table (DESI Collaboration 2023, EDR
data model). Arms are merged by inverse-variance weighting where they overlap;
a pixel is good when at least one arm has it unmasked with ivar > 0. Sky fibres
(``OBJTYPE == 'SKY'``), unassigned fibres and negative TARGETIDs are skipped.
Redshifts live in a separate redrock file (``REDSHIFTS`` HDU, or ``ZBEST`` in
older releases) and are joined on TARGETID when one is given.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from scifm.survey.readers.grid import (
    DESI_N_WAVE,
    DESI_WAVE_MIN,
    DESI_WAVE_STEP,
    NOCOVERAGE,
    SpectrumRecord,
    fits_error,
)

ARMS = ("B", "R", "Z")
META_COLUMNS = ("TARGET_RA", "TARGET_DEC", "OBJTYPE", "FLUX_G", "FLUX_R", "FLUX_Z",
                "FIBERFLUX_R", "MORPHTYPE", "SHAPE_R", "COADD_FIBERSTATUS",
                "BGS_TARGET", "DESI_TARGET", "SV1_DESI_TARGET", "SV3_DESI_TARGET", "SV3_BGS_TARGET",
                "EBV")  # fmt: skip
SKIP_OBJTYPES = {"SKY", "NON", "BAD"}  # sky fibres, unassigned and broken positioners


def _arm_index(path: Path, arm: str, wave: np.ndarray) -> np.ndarray:
    """Indices of an arm's wavelengths on the DESI grid (they must fall on it)."""
    if wave.ndim != 1 or wave.size == 0 or not np.all(np.isfinite(wave)):
        what = f"has shape {wave.shape}" if wave.ndim != 1 or wave.size == 0 else "has NaN/inf"
        raise ValueError(
            f"DESI coadd {path.name}: {arm}_WAVELENGTH {what}; expected a 1-D array of finite "
            "wavelengths on the 3600 + 0.8 i A coadd grid"
        )
    idx = (wave - DESI_WAVE_MIN) / DESI_WAVE_STEP
    rounded = np.rint(idx).astype(int)
    if np.abs(idx - rounded).max() > 1e-3 or rounded.min() < 0 or rounded.max() >= DESI_N_WAVE:
        raise ValueError(
            f"DESI coadd {path.name}: {arm}_WAVELENGTH ({wave[0]:.1f}-{wave[-1]:.1f} A) is not on "
            "the 3600 + 0.8 i A coadd grid; expected a DESI coadd (not a frame or cframe) file"
        )
    return rounded


def merge_arms(
    arms: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse-variance merge of (index, flux, ivar, mask) per arm into (flux, ivar, mask)."""
    num = np.zeros(DESI_N_WAVE)
    ivar = np.zeros(DESI_N_WAVE)
    mask_or = np.zeros(DESI_N_WAVE, np.uint32)
    seen = np.zeros(DESI_N_WAVE, bool)
    for idx, f, iv, m in arms:
        good = (m == 0) & (iv > 0) & np.isfinite(f)
        num[idx] += np.where(good, f * iv, 0.0)
        ivar[idx] += np.where(good, iv, 0.0)
        mask_or[idx] |= np.where(good, 0, m).astype(np.uint32)
        seen[idx] = True
    flux = np.where(ivar > 0, num / np.where(ivar > 0, ivar, 1.0), 0.0)
    mask = np.where(ivar > 0, 0, np.maximum(mask_or, 1)).astype(np.uint32)
    mask[~seen] |= NOCOVERAGE
    return flux.astype(np.float32), ivar.astype(np.float32), mask


def read_redrock(path: str | Path) -> dict[int, dict]:
    """TARGETID -> {z, zwarn, spectype} from a redrock/zbest file."""
    path = Path(path)
    try:
        with fits.open(path) as hdul:
            name = "REDSHIFTS" if "REDSHIFTS" in hdul else "ZBEST" if "ZBEST" in hdul else None
            if name is None:
                raise ValueError(
                    f"redrock file {path.name}: no REDSHIFTS or ZBEST HDU; found "
                    f"{[h.name for h in hdul]}"
                )
            t = hdul[name].data
            cols = set(t.columns.names)
            missing = {"TARGETID", "Z"} - cols
            if missing:
                raise ValueError(f"redrock file {path.name}: {name} lacks columns {missing}")
            return {
                int(tid): {"z": float(z),
                           "zwarn": int(t["ZWARN"][i]) if "ZWARN" in cols else 0,
                           "spectype": str(t["SPECTYPE"][i]).strip() if "SPECTYPE" in cols else ""}
                for i, (tid, z) in enumerate(zip(t["TARGETID"], t["Z"]))
                if np.isfinite(z)  # a NaN Z is no redshift
            }  # fmt: skip
    except OSError as e:
        raise fits_error("redrock file", path.name, e) from e


def read_desi_coadd(path: str | Path, redrock: str | Path | None = None) -> list[SpectrumRecord]:
    """All science targets of a DESI coadd file as records on the DESI grid."""
    path = Path(path)
    redshifts = read_redrock(redrock) if redrock is not None else {}
    try:
        hdul = fits.open(path)
    except OSError as e:
        raise fits_error("DESI coadd", path.name, e) from e
    with hdul:
        names = {h.name for h in hdul}
        need = {"FIBERMAP"} | {f"{a}_{k}" for a in ARMS for k in ("WAVELENGTH", "FLUX", "IVAR")}
        if need - names:
            raise ValueError(
                f"DESI coadd {path.name}: missing HDUs {sorted(need - names)}; expected a DESI "
                "coadd with FIBERMAP and B/R/Z arms"
            )
        if not isinstance(hdul["FIBERMAP"], fits.BinTableHDU | fits.TableHDU):
            raise ValueError(
                f"DESI coadd {path.name}: HDU FIBERMAP is {type(hdul['FIBERMAP']).__name__}, not "
                "a table; expected a binary table with a TARGETID column"
            )
        fm = hdul["FIBERMAP"].data
        if "TARGETID" not in fm.columns.names:
            raise ValueError(
                f"DESI coadd {path.name}: HDU FIBERMAP has no TARGETID column; expected a DESI "
                "coadd FIBERMAP (TARGETID, OBJTYPE, ...)"
            )
        arms = []
        for a in ARMS:
            wave = np.asarray(hdul[f"{a}_WAVELENGTH"].data, np.float64)
            flux = np.asarray(hdul[f"{a}_FLUX"].data, np.float64)
            ivar = np.asarray(hdul[f"{a}_IVAR"].data, np.float64)
            mask = (np.asarray(hdul[f"{a}_MASK"].data, np.uint32) if f"{a}_MASK" in names
                    else np.zeros(flux.shape, np.uint32))  # fmt: skip
            if flux.shape != ivar.shape or flux.shape[-1] != wave.size:
                raise ValueError(
                    f"DESI coadd {path.name}: {a}_FLUX {flux.shape}, {a}_IVAR {ivar.shape} and "
                    f"{a}_WAVELENGTH ({wave.size},) disagree"
                )
            if flux.shape[0] != len(fm):
                raise ValueError(
                    f"DESI coadd {path.name}: {a}_FLUX has {flux.shape[0]} rows, FIBERMAP {len(fm)}"
                )
            arms.append((_arm_index(path, a, wave), flux, ivar, mask))
        cols = set(fm.columns.names)
        coadded = "COADD_FIBERSTATUS" in cols or "EXP_FIBERMAP" in names
        if "FIBERSTATUS" in cols and not coadded:
            warnings.warn(
                f"DESI file {path.name}: single-exposure spectra (FIBERMAP has FIBERSTATUS, no "
                "COADD_FIBERSTATUS or EXP_FIBERMAP), not a coadd: one record per exposure, so a "
                "target may appear more than once at lower S/N; its coadd-*.fits has one "
                "spectrum per target",
                stacklevel=2,
            )
        records, matched = [], 0
        for row in range(len(fm)):
            tid = int(fm["TARGETID"][row])
            objtype = str(fm["OBJTYPE"][row]).strip() if "OBJTYPE" in cols else "TGT"
            if tid < 0 or objtype in SKIP_OBJTYPES or objtype == "":
                continue
            flux, ivar, mask = merge_arms([(i, f[row], iv[row], m[row]) for i, f, iv, m in arms])
            meta = {c: _jsonable(fm[c][row]) for c in META_COLUMNS if c in cols}
            z = redshifts.get(tid)
            if z is not None:
                meta.update(zwarn=z["zwarn"], spectype=z["spectype"])
            matched += z is not None
            records.append(SpectrumRecord(
                targetid=tid, flux=flux, ivar=ivar, mask=mask,
                redshift=None if z is None else z["z"],
                source=f"DESI coadd {path.name}", meta=meta,
            ))  # fmt: skip
    if redrock is not None and records and not matched:
        warnings.warn(
            f"redrock file {Path(redrock).name}: none of its TARGETIDs is a target of "
            f"{path.name} (another tile or petal?); no redshift joined",
            stacklevel=2,
        )
    return records


def _jsonable(value: object) -> object:
    if isinstance(value, bytes | np.bytes_):
        return value.decode().strip()
    if isinstance(value, str | np.str_):
        return str(value).strip()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
