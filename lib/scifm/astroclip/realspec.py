"""Real DESI / SDSS spectra through the AstroCLIP spectrum pipeline.

The survey engine's reader ``scifm.survey.readers.read_spectrum_file`` puts
each object of a DESI coadd or SDSS ``spec-*.fits`` file on the 7781-bin DESI grid
(records with targetid, flux, ivar, mask, redshift or None). Here masked pixels are
filled by interpolation (the SpecFormer has no notion of a mask), the spectra are
binned like the training spectra, embedded, and their redshift estimated by k-NN
over the simulated catalog (Parker et al. 2024: zero-shot redshift from spectra).
``redshift_verdict`` and ``template_verdict`` say what a page may claim about the k-NN and
the template-fit redshift (``scifm.survey.redshift``) of a real spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scifm.astroclip.config import N_SPECTRUM_BINS
from scifm.astroclip.data import prepare_spectra
from scifm.astroclip.embed import embed_arrays
from scifm.astroclip.model import AstroClip
from scifm.astroclip.redshift_index import knn_redshifts, load_for_assets
from scifm.survey.redshift import AGREE, OUTSIDE_NOTE, range_note

MIN_COVERAGE = 0.3  # an object with fewer good pixels is not placed
NOT_PLACED = "too few good pixels to place"  # below MIN_COVERAGE, as on the galaxies page
# enough good pixels, but values so large (e.g. 3e38) that the model gives no finite vector
OUT_OF_RANGE = "flux values out of range (the model gives no finite embedding); not placed"


@dataclass
class RealSpectra:
    flux: np.ndarray  # (N, 7781) float32, masked pixels interpolated
    coverage: np.ndarray  # (N,) fraction of good pixels
    redshift: np.ndarray  # (N,) pipeline redshift, NaN if the file has none
    targetid: np.ndarray  # (N,) int64
    source: str  # file name
    ivar: np.ndarray | None = None  # (N, 7781) inverse variance, 0 on masked pixels

    def __len__(self) -> int:
        return len(self.targetid)


def _field(rec: Any, name: str, default: Any = None) -> Any:
    return rec.get(name, default) if isinstance(rec, dict) else getattr(rec, name, default)


def fill_masked(flux: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Linear interpolation over bad pixels (edges take the nearest good value)."""
    if good.all():
        return flux
    if not good.any():
        return np.zeros_like(flux)
    idx = np.arange(len(flux))
    return np.interp(idx, idx[good], flux[good]).astype(np.float32)


def usable_flux(
    flux: np.ndarray,
    ivar: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    min_coverage: float = MIN_COVERAGE,
) -> tuple[np.ndarray | None, np.ndarray]:
    """The flux (7781,) the AstroCLIP encoders read from one real spectrum on the DESI grid,
    and its good pixels (finite, ivar > 0, mask 0; their mean is the coverage): bad pixels
    interpolated over (``fill_masked``); None for the flux when fewer than ``min_coverage`` of
    the pixels are good. The galaxies page's uploads and ``scifm astroclip redshift`` both
    go through it."""
    flux = np.asarray(flux, np.float32)
    good = np.isfinite(flux)
    if ivar is not None:
        good &= np.asarray(ivar) > 0
    if mask is not None:
        good &= np.asarray(mask) == 0
    if good.mean() < min_coverage or not good.any():
        return None, good
    return fill_masked(np.where(good, flux, 0.0), good), good


def read_real_spectra(path: str | Path, min_coverage: float = MIN_COVERAGE) -> RealSpectra:
    """Read every usable object of a real spectrum file (ValueError with the reason if none)."""
    from scifm.survey.readers import read_spectrum_file

    path = Path(path)
    try:
        records = read_spectrum_file(path)
    except (OSError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(
            f"{path.name}: not a readable DESI coadd or SDSS spec file ({exc})"
        ) from exc
    fluxes, cover, zs, tids, ivars = [], [], [], [], []
    for rec in records:
        flux = np.asarray(_field(rec, "flux"), np.float32)
        if flux.shape != (N_SPECTRUM_BINS,):
            raise ValueError(f"{path.name}: reader gave flux of shape {flux.shape}")
        ivar = np.asarray(_field(rec, "ivar", np.ones_like(flux)), np.float32)
        filled, good = usable_flux(flux, ivar, _field(rec, "mask"), min_coverage)
        if filled is None:
            continue
        fluxes.append(filled)
        ivars.append(np.where(good, ivar, 0.0).astype(np.float32))
        cover.append(good.mean())
        z = _field(rec, "redshift")
        zs.append(np.nan if z is None else float(z))
        tids.append(int(_field(rec, "targetid", -1)))
    if not fluxes:
        raise ValueError(
            f"{path.name}: no object covers at least {min_coverage:.0%} of 3600-9824 A"
        )
    return RealSpectra(np.stack(fluxes), np.array(cover), np.array(zs), np.array(tids, np.int64),
                       path.name, np.stack(ivars))  # fmt: skip


def read_uploaded_spectra(data: bytes, filename: str) -> RealSpectra:
    """``read_real_spectra`` of uploaded bytes; a ValueError is one sentence that names
    ``filename`` (the bytes are written under that name in a private temporary folder, so no
    temporary name shows) and says what was expected."""
    import re
    import tempfile

    name = re.sub(r"[^A-Za-z0-9._+-]", "_", Path(filename).name)[:120] or "upload.fits"
    with tempfile.TemporaryDirectory(prefix="scifm-upload-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            return read_real_spectra(path)
        except (ValueError, ImportError, OSError) as exc:
            reason = str(exc).split(f"{name}: ", 1)[-1].rstrip(".")
    if "expected" not in reason:
        reason += "; expected a DESI coadd or an SDSS spec FITS file"
    raise ValueError(f"Could not read {filename}: {reason}.")


def embed_real_spectra(model: AstroClip, spectra: RealSpectra) -> np.ndarray:
    """Unit AstroCLIP spectrum embeddings (N, E) of real spectra."""
    x = prepare_spectra(spectra.flux, model.config.spectrum)
    return embed_arrays(model, None, x, device=next(model.parameters()).device)["spectrum"]


def knn_redshift_estimate(
    catalog_embeddings: np.ndarray,
    catalog_redshift: np.ndarray,
    query: np.ndarray,
    k: int = 64,
) -> np.ndarray:
    """Zero-shot k-NN redshift (standardized embeddings, distance-weighted, k = 64)."""
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(catalog_embeddings)
    knn = KNeighborsRegressor(n_neighbors=min(k, len(catalog_embeddings)), weights="distance")
    knn.fit(sc.transform(catalog_embeddings), catalog_redshift)
    return knn.predict(sc.transform(np.atleast_2d(query)))


@dataclass
class RedshiftVerdict:
    """What a page or CLI may say about a real spectrum's k-NN redshift."""

    text: str  # one sentence
    ok: bool  # False: a warning (out of range: ``text`` says so instead of a number)
    z: float | None  # the k-NN redshift to mark lines at, None when out of range


def redshift_verdict(
    knn_z: float,
    file_z: float,
    z_range: tuple[float, float],
    source: str = "the file's pipeline redshift",
) -> RedshiftVerdict:
    """Judge a k-NN redshift against the catalog's redshift range ``z_range`` (its own min and
    max). A k-NN estimate is a mean of catalog redshifts, so it always lies inside the range
    even for a galaxy far beyond it: the file's own pipeline redshift (NaN if none) decides
    when there is one, and an estimate at the range's edge is flagged as possibly beyond.
    The galaxies page passes the template-fit redshift (``scifm.survey.redshift``, flag ok)
    as ``file_z`` when the file carries none."""
    lo, hi = z_range
    cover = f"the catalogue covers z = {lo:.3f}-{hi:.3f}"
    if np.isfinite(file_z) and not lo <= file_z <= hi:
        return RedshiftVerdict(
            f"outside the catalogue's redshift range: {source} is "
            f"{file_z:.4f} and {cover}, so no k-NN redshift is given", False, None)  # fmt: skip
    if not lo <= knn_z <= hi:
        return RedshiftVerdict(f"outside the catalogue's redshift range ({cover})", False, None)
    edge = 0.02 * (hi - lo)
    if np.isfinite(file_z):
        return RedshiftVerdict(f"k-NN redshift {knn_z:.4f}; {source} is "
                               f"{file_z:.4f} ({cover})", True, knn_z)  # fmt: skip
    if knn_z < lo + edge or knn_z > hi - edge:
        return RedshiftVerdict(
            f"k-NN redshift {knn_z:.4f} lies at the edge of the catalogue's redshift range "
            f"({cover}); the true redshift may lie outside it", False, knn_z)  # fmt: skip
    return RedshiftVerdict(f"k-NN redshift {knn_z:.4f} (the file carries no redshift to "
                           f"compare with; {cover})", True, knn_z)  # fmt: skip


def template_verdict(
    fit: Any, knn_z: float | None, z_range: tuple[float, float]
) -> RedshiftVerdict:
    """Judge a template-fit redshift ``fit`` (a ``scifm.survey.redshift.RedshiftFit``) of a
    real spectrum: z with its error, flag and Delta chi^2; "outside the catalogue's redshift
    range" when z lies outside ``z_range``; inside it, whether the k-NN redshift ``knn_z``
    agrees within ``AGREE`` (1 + z). ``ok`` is False for a flagged fit, an outside z or a
    disagreement; ``z`` is the template redshift (None when the fit found none)."""
    if not np.isfinite(fit.z):
        return RedshiftVerdict(f"no template redshift (flag {fit.flag})", False, None)
    err = f" ± {fit.z_err:.1e}" if np.isfinite(fit.z_err) else ""
    head = f"template redshift {fit.z:.4f}{err} (flag {fit.flag}, Δχ² = {fit.deltachi2:.1f})"
    lo, hi = z_range
    if note := range_note(fit.z, z_range):  # the CLI's words for it (scifm survey redshift)
        return RedshiftVerdict(f"{head}: {note} (it covers z = {lo:.3f}-{hi:.3f})", False, fit.z)
    if knn_z is None or not np.isfinite(knn_z):
        return RedshiftVerdict(f"{head}; no k-NN redshift to compare with", fit.ok, fit.z)
    dz, tol = abs(knn_z - fit.z), AGREE * (1 + fit.z)
    if dz <= tol:
        return RedshiftVerdict(f"{head}; the k-NN redshift {knn_z:.4f} agrees (|Δz| = {dz:.4f}, "
                               f"within 0.01 (1 + z) = {tol:.4f})", fit.ok, fit.z)  # fmt: skip
    return RedshiftVerdict(f"{head}; the k-NN redshift {knn_z:.4f} disagrees by |Δz| = {dz:.4f} "
                           f"(more than 0.01 (1 + z) = {tol:.4f})", False, fit.z)  # fmt: skip


def add_knn_redshifts(
    rows: list[dict],
    path: str | Path,
    root: str | Path,
    *,
    split: str = "all",
    n: int | None = None,
    k: int = 16,
) -> None:
    """Add the galaxies page's k-NN redshift to ``scifm.survey.redshift.redshift_rows``' rows
    of the file ``path`` (same ``split`` and ``n``): ``knn_z`` from the redshift index of the
    AstroCLIP asset folder ``root`` (``redshift_index.knn_redshifts``, ``k`` neighbours) and
    ``knn_note``: whether it agrees with the template redshift within ``AGREE`` (1 + z); where
    the template redshift lies outside the catalogue's range (the row's note), OUTSIDE_NOTE and
    no number, since a k-NN redshift is a mean of catalogue redshifts and always lies inside.

    A real file's spectra are prepared as the page prepares an upload (``usable_flux``; under
    MIN_COVERAGE good pixels: NOT_PLACED; values the model cannot embed: OUT_OF_RANGE) and
    search the whole index, as the page does; a survey file's spectra are read as stored (as
    the index was built; only non-finite pixels interpolated over, and good pixels finite with
    ivar > 0, as for a real file) and never find their own galaxies (by target id)."""
    import h5py

    from scifm.survey.readers import read_spectrum_file
    from scifm.survey.redshift import survey_input

    path = Path(path)
    model, index = load_for_assets(root)
    exclude = None
    if h5py.is_hdf5(path):
        tids, src = survey_input(path, split, n)
        flux = np.array(src["arrays"]["flux"], np.float32)  # a copy: filled below
        # a released file's ivar is 1 everywhere: a NaN flux must not count as data
        good = np.isfinite(flux) & (np.asarray(src["arrays"]["ivar"]) > 0)
        usable = (good.mean(axis=1) >= MIN_COVERAGE) & good.any(axis=1)
        fin = np.isfinite(flux)
        for i in np.flatnonzero(usable & ~fin.all(axis=1)):
            flux[i] = fill_masked(np.where(fin[i], flux[i], 0.0), fin[i])
        exclude = np.asarray(tids, np.int64)
    else:
        records = read_spectrum_file(path)[:n]
        tids = [r.targetid for r in records]
        prepared = [usable_flux(r.flux, r.ivar, r.mask)[0] for r in records]
        usable = np.array([f is not None for f in prepared], bool)
        blank = np.zeros(N_SPECTRUM_BINS, np.float32)
        flux = np.stack([blank if f is None else f for f in prepared] or [blank])
    if [int(t) for t in tids] != [r["targetid"] for r in rows]:
        raise ValueError(f"{path.name}: its spectra are not the rows given (target ids differ)")
    z_knn = np.full(len(rows), np.nan)
    if usable.any():
        z_knn[usable] = knn_redshifts(index, model, flux[usable], k=k, exclude=exclude)
    for i, (r, zk) in enumerate(zip(rows, z_knn)):
        zt = r["z"]
        if r["note"]:
            r["knn_z"], r["knn_note"] = None, OUTSIDE_NOTE
        elif not usable[i]:
            r["knn_z"], r["knn_note"] = None, NOT_PLACED
        elif not np.isfinite(zk):
            r["knn_z"], r["knn_note"] = None, OUT_OF_RANGE
        elif zt is None:
            r["knn_z"], r["knn_note"] = float(zk), "no template redshift to compare with"
        else:
            d = abs(zk - zt) / (1 + zt)
            word = "agrees" if d <= AGREE else "disagrees"
            r["knn_z"], r["knn_note"] = float(zk), f"{word}: |dz|/(1+z) = {d:.4f}"
