"""Template-fitting redshifts of spectra on the DESI grid, with DESI's fitter redrock.

For each spectrum, redrock (Bailey et al. 2023, arXiv:2305.06975; the fitter of
DESI's pipeline) scans chi^2(z) = min_a sum_i ivar_i (f_i - sum_k a_k T_k(lambda_i /
(1 + z)))^2 over a redshift grid, with non-negative amplitudes a_k (its NMF
solver, scipy's NNLS) and the spectrum's inverse variance; it refines the three
lowest minima with a parabola (z and its error from the chi^2 curvature, the
Delta chi^2 = 1 interval) and reports DELTACHI2, the chi^2 gap between the best
minimum and the next one more than 1000 km/s away, and ZWARN bits. The templates
are ours (``templates.py``, independent of the survey's draws), in redrock's format;
redrock's own DESI templates are not in its wheel and are not used.

Quality flag: "ok" when ZWARN is 0 and DELTACHI2 >= 40, else the reasons, comma-separated
(ZWARN bit names and/or "DELTACHI2<40"). A spectrum with no usable pixel (NODATA) gets
z = z_err = NaN; so does one with absurd values (BAD_VALUES: sum flux^2 ivar, the chi^2 of
a zero model and so a bound on the best fit's, beyond float32's range, e.g. a 3e38 fill
value), which is not fitted: its chi^2 would overflow the file's own float32 and its
minuscule z_err would look confident. 40 is DESI's criterion for its bright-galaxy survey
(Hahn et al. 2023, AJ 165, 253: ZWARN == 0 and DELTACHI2 > 40), the sample the
simulated survey follows; redrock itself only sets SMALL_DELTA_CHI2 below 9.

The spectra are binned by 4 DESI pixels (3.2 A, still finer than a line's width
at z > 0) before the fit: redrock holds every template at every redshift of the
grid in memory (n_z x n_pixels x n_templates doubles), 1 GB at full resolution and
0.25 GB binned. That grid is the same for every call with the same templates and redshift
scan, so it is built once per process and kept (the last one only); ``warm_up`` builds the
default one and compiles redrock's numba rebinning, which otherwise makes the first fit of
a process several seconds slower (benchmarks/redshift_warmup.py). Fits run one at a time
per process (a lock): redrock prints its progress to stdout, which a fit silences, and
stdout is one for all threads.

Library entry points: ``fit_redshifts`` (arrays), ``fit_spectrum`` (one spectrum,
what the galaxies page calls on an upload), ``fit_records`` (reader records), ``warm_up``.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from scifm.survey.readers.grid import DESI_N_WAVE, DESI_WAVE
from scifm.survey.templates import read_templates

MIN_DELTACHI2 = 40.0  # DESI BGS good-redshift criterion (see the module docstring)
Z_MIN, Z_MAX, DLOG10_Z = -0.005, 1.7, 3e-4  # redrock's default galaxy scan (~200 km/s)
BIN = 4  # DESI pixels per fitted pixel
OUTSIDE_NOTE = "outside the catalogue's redshift range"
BAD_VALUES = "BAD_VALUES"  # the flag of a spectrum whose values are absurd (module docstring)
FLOAT32_MAX = float(np.finfo(np.float32).max)
AGREE = 0.01  # the k-NN and template redshifts agree when |dz| <= AGREE (1 + z) (issue 14)
CATASTROPHIC = 0.0033  # |dz| / (1 + z) beyond which a fit failed: DESI's ~1000 km/s threshold

_LOCK = threading.Lock()  # one fit at a time: redrock's stdout is silenced per fit
_PREPARED: dict[tuple, object] = {}  # the last redshifted template grid (~0.25 GB), by key


@dataclass(frozen=True)
class RedshiftFit:
    """The template-fitting redshift of one spectrum."""

    z: float  # best redshift (NaN without any usable pixel)
    z_err: float  # 1-sigma, from the chi^2 curvature at the minimum (statistical only)
    flag: str  # "ok", or why not: ZWARN bit names and/or "DELTACHI2<40", comma-separated
    zwarn: int  # redrock's ZWARN bit mask
    deltachi2: float  # chi^2 of the next minimum > 1000 km/s away minus the best
    chi2: float  # chi^2 of the best fit
    npixels: int  # fitted (binned) pixels with ivar > 0

    @property
    def ok(self) -> bool:
        return self.flag == "ok"

    def to_dict(self) -> dict:
        return asdict(self)


def zwarn_names(zwarn: int) -> list[str]:
    """Names of the redrock ZWARN bits set in ``zwarn``."""
    from redrock.zwarning import ZWarningMask

    return [name for name, bit in ZWarningMask.flags() if zwarn & bit]


def quality_flag(zwarn: int, deltachi2: float, min_deltachi2: float = MIN_DELTACHI2) -> str:
    reasons = zwarn_names(zwarn)
    if deltachi2 < min_deltachi2:
        reasons.append(f"DELTACHI2<{min_deltachi2:g}")
    return ",".join(reasons) if reasons else "ok"


def bin_spectra(flux: np.ndarray, ivar: np.ndarray, factor: int = BIN) -> tuple[np.ndarray, ...]:
    """(wave (M,), flux (N, M), ivar (N, M)): inverse-variance means over ``factor`` pixels."""
    m = DESI_N_WAVE // factor
    w = DESI_WAVE[: m * factor].reshape(m, factor).mean(axis=1)
    f = flux[:, : m * factor].reshape(len(flux), m, factor)
    iv = ivar[:, : m * factor].reshape(len(flux), m, factor)
    ivar_b = iv.sum(axis=2)
    flux_b = np.where(ivar_b > 0, (f * iv).sum(axis=2) / np.where(ivar_b > 0, ivar_b, 1.0), 0.0)
    return w, flux_b, ivar_b


def _as_rows(name: str, x: np.ndarray | None, n: int | None = None) -> np.ndarray | None:
    if x is None:
        return None
    shape = np.shape(x)
    x = np.atleast_2d(np.asarray(x))
    if x.ndim != 2 or x.shape[1] != DESI_N_WAVE or (n is not None and x.shape[0] != n):
        expected = f"({n}, {DESI_N_WAVE})" if n is not None else f"(N, {DESI_N_WAVE})"
        raise ValueError(
            f"fit_redshifts: {name} has shape {shape}; expected {expected} or "
            f"({DESI_N_WAVE},) on the DESI grid 3600 + 0.8 i A"
        )
    return x


def fit_redshifts(
    flux: np.ndarray,
    ivar: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    z_range: tuple[float, float] = (Z_MIN, Z_MAX),
    dlog10_z: float = DLOG10_Z,
    templates: str | Path | None = None,
    min_deltachi2: float = MIN_DELTACHI2,
) -> list[RedshiftFit]:
    """Template-fitting redshift of each (7781,) spectrum on the DESI grid.

    ``flux`` and ``ivar`` are (N, 7781) or (7781,); pixels with ``mask`` != 0, ivar <= 0 or
    non-finite values are ignored. The redshift grid is uniform in log10(1 + z) with step
    ``dlog10_z`` over ``z_range``; ``templates`` is a redrock template file (default: ours).
    A spectrum with absurd values is not fitted: flag BAD_VALUES, z = z_err = NaN.
    """
    from redrock.targets import DistTargetsCopy, Spectrum, Target
    from redrock.zfind import zfind
    from scipy import sparse

    flux = _as_rows("flux", flux).astype(np.float64)
    ivar = _as_rows("ivar", ivar, len(flux)).astype(np.float64)
    mask = _as_rows("mask", mask, len(flux))
    if not z_range[0] < z_range[1] or z_range[0] <= -1 or dlog10_z <= 0:
        raise ValueError(f"fit_redshifts: z_range={z_range}, dlog10_z={dlog10_z}; expected "
                         "-1 < z_min < z_max and a positive step")  # fmt: skip
    good = np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    if mask is not None:
        good &= mask == 0
    absurd = _absurd(flux, ivar, good)
    good[absurd] = False  # not fitted (NODATA to redrock), reported as BAD_VALUES below
    wave, fb, ivb = bin_spectra(np.where(good, flux, 0.0), np.where(good, ivar, 0.0))
    lz = np.arange(np.log10(1 + z_range[0]), np.log10(1 + z_range[1]), dlog10_z)
    n = len(wave)
    resolution = sparse.dia_matrix((np.ones((1, n)), [0]), shape=(n, n))  # already binned
    targets = [Target(i, [Spectrum(wave, fb[i], ivb[i].copy(), resolution, resolution.tocsr())])
               for i in range(len(fb))]  # fmt: skip
    with _LOCK, contextlib.redirect_stdout(io.StringIO()):  # redrock prints progress, INFO
        dtargets = DistTargetsCopy(targets)
        dtemplate = _prepared(templates, lz, dtargets.wavegrids())
        _, zfit = zfind(dtargets, [dtemplate], mp_procs=1, nminima=3)
    best = zfit[zfit["znum"] == 0]
    out = []
    for i in range(len(fb)):
        row = best[best["targetid"] == i][0]
        zwarn, dchi2 = int(row["zwarn"]), float(row["deltachi2"])
        nodata = int(row["npixels"]) == 0  # redrock still reports its grid's first redshift
        bad = absurd[i] or not np.isfinite(row["chi2"])
        flag = BAD_VALUES if bad else quality_flag(zwarn, dchi2, min_deltachi2)
        out.append(RedshiftFit(z=np.nan if nodata or bad else float(row["z"]),
                               z_err=np.nan if nodata or bad else float(row["zerr"]),
                               flag=flag, zwarn=zwarn,
                               deltachi2=dchi2, chi2=float(row["chi2"]),
                               npixels=int(row["npixels"])))  # fmt: skip
    return out


def _absurd(flux: np.ndarray, ivar: np.ndarray, good: np.ndarray) -> np.ndarray:
    """(N,) True where sum flux^2 ivar over the good pixels (the chi^2 of a zero model, which
    bounds the best fit's: NNLS amplitudes may be 0) is beyond float32's range."""
    with np.errstate(over="ignore", invalid="ignore"):
        chi2_zero = np.where(good, flux**2 * ivar, 0.0).sum(axis=1)
    return ~(chi2_zero <= FLOAT32_MAX)


def _prepared(templates: str | Path | None, lz: np.ndarray, dwave: dict) -> object:
    """redrock's DistTemplate: our templates redshifted to every ``10**lz - 1`` and rebinned
    onto the wavelength grids ``dwave`` (wavehash -> wave), kept for the next call with the
    same key (the caller holds ``_LOCK``)."""
    from redrock.templates import DistTemplate, Template

    key = (str(templates), float(lz[0]), float(lz[-1]), len(lz), tuple(sorted(dwave)))
    if key not in _PREPARED:
        _PREPARED.clear()  # free the old grid before building the new one
        t_wave, t_flux, _ = read_templates(templates)
        template = Template(spectype="GALAXY", subtype="SCIFM", redshifts=10**lz - 1, wave=t_wave,
                            flux=t_flux, method="NMF", igm_model="Inoue14")  # fmt: skip
        _PREPARED[key] = DistTemplate(template, dwave)
    return _PREPARED[key]


def warm_up() -> dict[str, float]:
    """Prepare redrock in this process so that the next fit is as fast as any later one:
    import it, build the default redshifted template grid and compile its numba rebinning, by
    fitting one spectrum made from our templates at z = 0.1. Returns the seconds spent
    (``import_s``, ``fit_s``). The galaxies page's server calls it at start, in a thread."""
    t0 = time.perf_counter()
    import redrock.templates
    import redrock.zfind  # noqa: F401

    t1 = time.perf_counter()
    t_wave, t_flux, _ = read_templates()
    flux = np.interp(DESI_WAVE / 1.1, t_wave, t_flux.sum(axis=0))
    fit_spectrum(flux / np.max(flux), np.full(DESI_N_WAVE, 1e4))
    return {"import_s": t1 - t0, "fit_s": time.perf_counter() - t1}


def fit_spectrum(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray | None = None) -> RedshiftFit:
    """The redshift of one (7781,) spectrum on the DESI grid: z, z_err, flag (and more).

    What the galaxies page calls on an uploaded spectrum (a reader record's flux, ivar, mask).
    """
    if np.ndim(flux) != 1:
        raise ValueError(
            f"fit_spectrum: flux has shape {np.shape(flux)}; expected ({DESI_N_WAVE},)"
        )
    return fit_redshifts(flux, ivar, mask)[0]


def fit_records(records: list, **kwargs: object) -> list[RedshiftFit]:
    """Redshifts of reader records (``scifm.survey.readers.SpectrumRecord``)."""
    if not records:
        return []
    flux = np.stack([r.flux for r in records])
    ivar = np.stack([r.ivar for r in records])
    mask = np.stack([r.mask for r in records])
    return fit_redshifts(flux, ivar, mask, **kwargs)


def catalog_redshift_range(path: str | Path) -> tuple[float, float]:
    """(min, max) finite redshift of an AstroCLIP catalog file (``props/redshift``) or survey
    file (``redshift``); non-finite ones are ignored."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"catalog {path}: does not exist")
    try:
        with h5py.File(path, "r") as f:
            name = "props/redshift" if "props/redshift" in f else "redshift"
            d = f[name]
            if not isinstance(d, h5py.Dataset) or d.dtype.kind not in "iuf":
                what = f"a dataset of dtype {d.dtype}" if isinstance(d, h5py.Dataset) else "a group"
                raise ValueError(f"catalog {path}: {name} is {what}; expected a dataset of "
                                 "redshifts (numbers)")  # fmt: skip
            z = np.asarray(d[()], np.float64)
    except (OSError, KeyError, TypeError) as e:
        raise ValueError(f"catalog {path}: no props/redshift or redshift dataset ({e})") from e
    z = z[np.isfinite(z)]
    if z.size == 0:
        raise ValueError(f"catalog {path}: dataset {name} holds no finite redshift")
    return float(np.min(z)), float(np.max(z))


def range_note(z: float, z_range: tuple[float, float] | None) -> str:
    """OUTSIDE_NOTE when ``z`` lies outside ``z_range`` (None: no catalogue, no note)."""
    if z_range is None or not np.isfinite(z) or z_range[0] <= z <= z_range[1]:
        return ""
    return OUTSIDE_NOTE


# Bits of DESI_TARGET / SV1_ / SV3_DESI_TARGET (desitarget's target masks; the same in all three).
DESI_TARGET_BITS = {0: "LRG", 1: "ELG", 2: "QSO", 60: "BGS", 61: "MWS"}


def desi_target_class(meta: dict) -> str:
    """'ELG', 'LRG', ... from a DESI FIBERMAP's target bits ('' when none is set)."""
    for col in ("DESI_TARGET", "SV3_DESI_TARGET", "SV1_DESI_TARGET", "SV2_DESI_TARGET"):
        bits = int(meta.get(col) or 0)
        names = [name for bit, name in DESI_TARGET_BITS.items() if bits >> bit & 1]
        if names:
            return "+".join(names)
    return str(meta.get("class", ""))  # SDSS SPECOBJ CLASS, when present


def survey_input(path: Path, split: str, n: int | None) -> tuple[list[int], dict]:
    """Target ids and the fit's input (flux, ivar; row and true z each) of a survey file's
    finished rows (``split`` "all") or its AstroCLIP test split ("test"), first ``n``."""
    from scifm.survey.io import finished_rows, held_out_rows, read_spectra

    rows = held_out_rows(path) if split == "test" else finished_rows(path)
    rows = rows[:n] if n is not None else rows
    if rows.size == 0:
        raise ValueError(f"survey file {path}: no finished rows to fit")
    d = read_spectra(path, rows)
    if d["spectra"].shape[1] != DESI_N_WAVE:
        raise ValueError(
            f"survey file {path}: dataset spectra has {d['spectra'].shape[1]} wavelengths; the "
            f"template fit needs the {DESI_N_WAVE}-pixel DESI grid 3600 + 0.8 i A"
        )
    arrays = {"flux": d["spectra"], "ivar": d["ivar"], "mask": None}
    meta = [{"row": int(r), "true_z": float(z)} for r, z in zip(rows, d["redshift"])]
    return [int(t) for t in d["targetid"]], {"arrays": arrays, "meta": meta}


def finite_or_none(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)  # JSON has no NaN


def redshift_rows(
    path: str | Path,
    *,
    split: str = "all",
    n: int | None = None,
    catalog: str | Path | None = None,
    templates: str | Path | None = None,
    redrock: str | Path | None = None,
) -> tuple[list[dict], list[float] | None]:
    """One row per spectrum of a DESI coadd, SDSS spec file or survey HDF5 file, and the
    catalogue's z range used for the note (``catalog``; default the shipped AstroCLIP one).
    ``redrock``: DESI's own redrock/zbest file for a coadd, joined on TARGETID as true_z.

    Each row: targetid, z, z_err, flag, zwarn, deltachi2, note ("outside the catalogue's
    redshift range" or ""), true_z (the file's own redshift or None) and target_class.
    """
    import h5py

    from scifm.core.paths import assets_dir
    from scifm.survey.readers import read_spectrum_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"spectrum file {path}: does not exist")
    if catalog is None and (assets_dir() / "astroclip/catalog.h5").is_file():
        catalog = assets_dir() / "astroclip/catalog.h5"
    z_range = list(catalog_redshift_range(catalog)) if catalog is not None else None
    if h5py.is_hdf5(path):
        if redrock is not None:
            raise ValueError(f"survey file {path.name}: --redrock applies to DESI coadds")
        tids, src = survey_input(path, split, n)
        fits_ = fit_redshifts(**src["arrays"], templates=templates)
        extra = [{"true_z": finite_or_none(m["true_z"]), "target_class": "simulated",
                  "row": m["row"]} for m in src["meta"]]  # fmt: skip
    else:
        if split != "all":
            raise ValueError(f"spectrum file {path.name}: --split applies to survey HDF5 files")
        records = read_spectrum_file(path, redrock=redrock)[:n]
        if not records:
            raise ValueError(f"spectrum file {path.name}: holds no science target")
        tids = [r.targetid for r in records]
        fits_ = fit_records(records, templates=templates)
        extra = [{"true_z": finite_or_none(r.redshift), "target_class": desi_target_class(r.meta)}
                 for r in records]  # fmt: skip
    rows = []
    for tid, fit, ex in zip(tids, fits_, extra):
        rows.append({"targetid": int(tid), "z": finite_or_none(fit.z),
                     "z_err": finite_or_none(fit.z_err), "flag": fit.flag,
                     "zwarn": fit.zwarn, "deltachi2": fit.deltachi2,
                     "note": range_note(fit.z, z_range), **ex})  # fmt: skip
    return rows, z_range
