"""The survey HDF5 layout (AstroCLIP-style) and its reader.

AstroCLIP (Parker et al. 2024) stores matched pairs as HDF5 datasets ``images``
(N, 152, 152, 3 in g, r, z nanomaggies), ``spectra`` (N, 7781 on the DESI coadd
grid), ``redshift`` and ``targetid``, next to the physical properties of each
galaxy. This file keeps that layout (one flat group instead of ten shards) and
adds what a simulation knows:

    /images      (N, H, W, 3) float32  nanomaggies, bands g, r, z
    /spectra     (N, n_wave)  float32  1e-17 erg/s/cm^2/A on /wavelength
    /ivar        (N, n_wave)  float32  inverse variance of /spectra
    /wavelength  (n_wave,)    float64  Angstrom (3600 + 0.8 i)
    /redshift    (N,)         float32
    /targetid    (N,)         int64
    /props/<name>  (N,)       derived properties (``simulate.PROP_DOC``)
    /params/<name> (N,)       generating parameters (``params.PARAM_DOC``)
    /chunk_done  (n_chunks,)  bool     generation progress (rows of a chunk are valid when set)
    attrs: format, version, n, seed, chunk_size, config (JSON), units

Rows are written chunk by chunk and a chunk is marked done only after its rows
are flushed, so an interrupted generation resumes where it stopped.

The released AstroCLIP file (groups "0".."9", see ``released.py``) is read too:
``survey_info`` and ``read_survey`` accept it (no ivar, props or params there), and
``survey_split`` returns its own 80/20 split inside each group.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from scifm.core import numpy_rng
from scifm.survey import released
from scifm.survey.config import SurveyConfig
from scifm.survey.params import PARAM_DOC, PARAM_NAMES
from scifm.survey.simulate import PROP_DOC, PROP_NAMES

FORMAT = "scifm-astroclip-survey"
# Version of the generator: which numbers a (seed, object id) gives. A file is only resumed by
# the version that began it. 2: fibre spectra, image photon noise, z from 0.002 (issue 14).
# 3: the same physics computed ~3x faster (fibre integral on 384 log-k nodes, 4e-6 relative
# from version 2; images from one FFT pass for the three bands, 4e-7 of the peak), with image
# and spectrum noise drawn from separate streams, so the noise realisations differ from 2.
# 4: spectra on vacuum wavelengths (bagpipes works in air; 1-3 A redder lines than 3).
VERSION = 4
TARGETID_BASE = 39_600_000_000_000_000  # DESI-like 17-digit ids; + seed * 1e9 + object id
MAX_GALAXIES = 100_000_000  # a survey file's row limit (object ids stay below 1e9; ~11 TB of rows)


def make_targetid(seed: int, object_id: np.ndarray | int) -> np.ndarray:
    """Unique int64 target ids of simulated galaxies (distinct per seed and object)."""
    return TARGETID_BASE + np.int64(seed) * 1_000_000_000 + np.asarray(object_id, dtype=np.int64)


@dataclass
class SurveyData:
    """A slice of a survey file held in memory (arrays as documented in this module)."""

    images: np.ndarray  # (N, H, W, 3) float32 nanomaggies (g, r, z)
    spectra: np.ndarray  # (N, n_wave) float32, 1e-17 erg/s/cm2/A
    ivar: np.ndarray  # (N, n_wave) float32
    redshift: np.ndarray  # (N,) float32
    targetid: np.ndarray  # (N,) int64
    props: dict[str, np.ndarray]  # name -> (N,)
    params: dict[str, np.ndarray]  # name -> (N,)
    wavelength: np.ndarray  # (n_wave,) Angstrom
    config: SurveyConfig = field(default_factory=SurveyConfig)
    seed: int = 0

    def __len__(self) -> int:
        return int(self.targetid.shape[0])

    def subset(self, index: np.ndarray | slice) -> SurveyData:
        """Rows ``index`` (a slice, integer array or boolean mask) as a new SurveyData."""
        return SurveyData(
            images=self.images[index],
            spectra=self.spectra[index],
            ivar=self.ivar[index],
            redshift=self.redshift[index],
            targetid=self.targetid[index],
            props={k: v[index] for k, v in self.props.items()},
            params={k: v[index] for k, v in self.params.items()},
            wavelength=self.wavelength,
            config=self.config,
            seed=self.seed,
        )


def create_survey_file(path: str | Path, cfg: SurveyConfig, n: int, seed: int) -> None:
    """Create an empty survey file of ``n`` rows (datasets chunked one galaxy per chunk).

    The empty file is made beside ``path`` and renamed onto it once complete, so a failure
    while creating it (a full disk, an interrupt) leaves a file already at ``path`` as it was;
    a file open for writing by a running generation is refused. Once renamed, the old survey
    is gone: generation then fills the new file.
    """
    if not 1 <= n <= MAX_GALAXIES:
        raise ValueError(f"survey file {path}: n={n}; expected 1 <= n <= {MAX_GALAXIES:.0e}")
    path = Path(os.path.realpath(path))  # a symlinked target stays a link to the new file
    if path.exists():  # a generation still writing it holds HDF5's lock: refuse, do not orphan
        try:
            h5py.File(path, "a").close()
        except OSError as e:
            raise ValueError(f"survey file {path}: cannot replace it ({e}); is a generation "
                             "still writing it?") from e  # fmt: skip
    tmp = path.with_name(f".{path.name}.creating")
    try:
        _create(tmp, cfg, n, seed)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _create(path: Path, cfg: SurveyConfig, n: int, seed: int) -> None:
    n_chunks = -(-n // cfg.chunk_size)
    with h5py.File(path, "w") as f:
        f.attrs.update(
            format=FORMAT, version=VERSION, n=n, seed=seed, chunk_size=cfg.chunk_size,
            config=cfg.to_json(), bands="g,r,z", provenance=json.dumps(_provenance()),
            units=json.dumps({"images": "nanomaggies", "spectra": "1e-17 erg/s/cm2/A",
                              "wavelength": "Angstrom"}),
        )  # fmt: skip
        s = cfg.image_size
        f.create_dataset("images", (n, s, s, 3), "f4", chunks=(1, s, s, 3))
        f.create_dataset("spectra", (n, cfg.n_wave), "f4", chunks=(1, cfg.n_wave))
        f.create_dataset("ivar", (n, cfg.n_wave), "f4", chunks=(1, cfg.n_wave))
        f.create_dataset("wavelength", data=cfg.wavelength)
        f.create_dataset("redshift", (n,), "f4")
        f.create_dataset("targetid", data=make_targetid(seed, np.arange(n)))
        for group, names, doc in (
            ("props", PROP_NAMES, PROP_DOC),
            ("params", PARAM_NAMES, PARAM_DOC),
        ):
            g = f.create_group(group)
            for name in names:
                g.create_dataset(name, (n,), "f8").attrs["doc"] = doc[name]
        f.create_dataset("chunk_done", data=np.zeros(n_chunks, dtype=bool))


def _provenance() -> dict[str, object]:
    """Generator version and the versions of the libraries whose numbers go into each galaxy."""
    import importlib.metadata

    libs = {}
    for name in ("bagpipes", "galsim", "speclite", "numpy", "scipy"):
        try:
            libs[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            libs[name] = None
    return {"generator_version": VERSION, **libs}


def write_chunk(f: h5py.File, chunk: int, start: int, rows: dict) -> None:
    """Write the rows of ``chunk`` (from ``simulate.simulate_range``) and mark it done."""
    stop = start + rows["images"].shape[0]
    for name in ("images", "spectra", "ivar"):
        f[name][start:stop] = rows[name]
    f["redshift"][start:stop] = rows["params"]["redshift"].astype(np.float32)
    for group in ("props", "params"):
        for name, values in rows[group].items():
            f[group][name][start:stop] = values
    f.flush()
    f["chunk_done"][chunk] = True
    f.flush()


@contextlib.contextmanager
def _open(path: str | Path) -> Iterator[h5py.File]:
    """Open a survey file for reading; HDF5 failures inside become errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"survey file {path}: does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        if "unable to lock file" in str(e):
            raise ValueError(
                f"survey file {path}: open for writing by another process (a generation still "
                "running?); set HDF5_USE_FILE_LOCKING=FALSE to read its finished chunks"
            ) from e
        raise ValueError(f"survey file {path}: not a readable HDF5 file ({e})") from e
    with f:
        if f.attrs.get("format") != FORMAT and not released.is_released(f):
            raise ValueError(
                f"survey file {path}: attribute format={f.attrs.get('format')!r} and no groups "
                f"'0'..'9' of {released.KEYS}; expected {FORMAT!r} (write one with `scifm survey "
                "generate`) or the released AstroCLIP layout"
            )
        try:
            if f.attrs.get("format") == FORMAT:
                _check_layout(f, path)
            yield f
        except (KeyError, OSError, RuntimeError) as e:
            raise ValueError(f"survey file {path}: corrupt or truncated ({e})") from e


def _check_layout(f: h5py.File, path: Path) -> None:
    """The datasets a scifm survey file must hold, with shapes that agree with its ``n``
    attribute (read from the metadata only: no array is loaded)."""

    def bad(what: str) -> ValueError:
        return ValueError(f"survey file {path}: {what}; not a complete scifm survey file")

    try:
        n, cs, _ = int(f.attrs["n"]), int(f.attrs["chunk_size"]), int(f.attrs["seed"])
        SurveyConfig.from_dict(json.loads(f.attrs["config"]))
    except (KeyError, TypeError, ValueError) as e:
        raise bad(f"attributes n, chunk_size, seed and config unreadable ({e})") from e
    if not (1 <= n <= MAX_GALAXIES and cs >= 1):
        raise bad(f"attributes n={n}, chunk_size={cs}")
    names = ("images", "spectra", "ivar", "wavelength", "redshift", "targetid", "chunk_done")
    missing = [k for k in (*names, "props", "params") if k not in f]
    if missing:
        raise bad(f"no {', '.join(missing)}")
    if f["wavelength"].ndim != 1:  # the grid every spectrum is on: one axis
        raise bad(f"dataset wavelength has shape {f['wavelength'].shape}; expected (n_wave,)")
    n_wave = f["wavelength"].shape[0]
    expect = {"images": (n, None, None, 3), "spectra": (n, n_wave), "ivar": (n, n_wave),
              "redshift": (n,), "targetid": (n,), "chunk_done": (-(-n // cs),)}  # fmt: skip
    for name, shape in expect.items():
        got = f[name].shape
        if len(got) != len(shape) or any(e is not None and g != e for g, e in zip(got, shape)):
            want = ", ".join("*" if e is None else str(e) for e in shape)
            want += "," if len(shape) == 1 else ""
            raise bad(f"dataset {name} has shape {got}; expected ({want}) for n={n}")
    for group in ("props", "params"):
        for k, d in f[group].items():
            if d.shape != (n,):
                raise bad(f"dataset {group}/{k} has shape {d.shape}; expected ({n},)")
    kinds = {"targetid": ((np.integer,), "integers"),
             "chunk_done": ((np.bool_, np.integer), "bools")}  # fmt: skip
    for name in names:  # strings or compounds would fail much later, far from the file
        kind, what = kinds.get(name, ((np.number,), "numbers"))
        dtype = f[name].dtype
        if not any(np.issubdtype(dtype, k) for k in kind):
            raise bad(f"dataset {name} has dtype {dtype}; expected {what}")


def survey_info(path: str | Path) -> dict:
    """n, seed, config, chunk_size, generator version and how many rows are complete, without
    reading arrays.

    A released AstroCLIP file has no seed, config or chunks (None) and adds its groups.
    """
    with _open(path) as f:
        if f.attrs.get("format") != FORMAT:
            layout = released.groups(f)
            train, test = released.split(f)
            n = sum(n for _, n in layout)
            return {"n": n, "seed": None, "chunk_size": None, "n_done": n, "complete": True,
                    "config": None, "layout": released.LAYOUT, "groups": dict(layout),
                    "split": {"train": len(train), "test": len(test),
                              "how": "first 80% of each group train"},
                    "note": "redshift only: no ivar, no physical properties"}  # fmt: skip
        done = f["chunk_done"][:]
        n, cs = int(f.attrs["n"]), int(f.attrs["chunk_size"])
        n_done = int(sum(min(cs, n - int(i) * cs) for i in np.flatnonzero(done)))
        return {"n": n, "seed": int(f.attrs["seed"]), "chunk_size": cs, "n_done": n_done,
                "complete": bool(done.all()), "layout": FORMAT,
                "version": int(f.attrs.get("version", 1)),
                "config": SurveyConfig.from_dict(json.loads(f.attrs["config"]))}  # fmt: skip


def read_survey(path: str | Path, *, start: int = 0, stop: int | None = None) -> SurveyData:
    """Rows ``start:stop`` of a survey file as a SurveyData (all requested rows must be done).

    A released AstroCLIP file gives its images, spectra, redshifts and targetids; it has no
    inverse variance (ivar is all ones: uniform weights) and no props or params (empty).
    """
    with _open(path) as f:
        if f.attrs.get("format") != FORMAT:
            return _read_released(f, path, start, stop)
        n, cs = int(f.attrs["n"]), int(f.attrs["chunk_size"])
        stop = n if stop is None else stop
        if not 0 <= start <= stop <= n:
            raise ValueError(
                f"survey file {path}: rows {start}:{stop} requested; the file has {n} rows"
            )
        chunks = np.arange(start // cs, -(-stop // cs)) if stop > start else np.array([], int)
        missing = chunks[~f["chunk_done"][:][chunks]]
        if missing.size:
            raise ValueError(
                f"survey file {path}: rows {start}:{stop} are not all generated (chunks of "
                f"{cs} rows starting at {list(missing[:5] * cs)} pending); resume the generation "
                "or read a smaller range"
            )
        sl = slice(start, stop)
        return SurveyData(
            images=f["images"][sl],
            spectra=f["spectra"][sl],
            ivar=f["ivar"][sl],
            redshift=f["redshift"][sl],
            targetid=f["targetid"][sl],
            props={k: f["props"][k][sl] for k in f["props"]},
            params={k: f["params"][k][sl] for k in f["params"]},
            wavelength=f["wavelength"][:],
            config=SurveyConfig.from_dict(json.loads(f.attrs["config"])),
            seed=int(f.attrs["seed"]),
        )


def _read_released(f: h5py.File, path: str | Path, start: int, stop: int | None) -> SurveyData:
    n = sum(n for _, n in released.groups(f))
    stop = n if stop is None else stop
    if not 0 <= start <= stop <= n:
        raise ValueError(
            f"survey file {path}: rows {start}:{stop} requested; the file has {n} rows"
        )
    rows = released.read_rows(f, start, stop)
    cfg = SurveyConfig()
    return SurveyData(
        images=rows["images"], spectra=rows["spectra"], ivar=np.ones_like(rows["spectra"]),
        redshift=rows["redshift"], targetid=rows["targetid"], props={}, params={},
        wavelength=cfg.wavelength, config=cfg, seed=0,
    )  # fmt: skip


def survey_split(path: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The file's own (train, test) rows: the released file's 80/20 per group, else None."""
    with _open(path) as f:
        return None if f.attrs.get("format") == FORMAT else released.split(f)


def write_survey(path: str | Path, data: SurveyData, compression: str | None = None) -> Path:
    """Write an in-memory SurveyData (e.g. a subset) as a complete survey file."""
    cfg = data.config.replace(chunk_size=max(len(data), 1))
    path = Path(path)
    with h5py.File(path, "w") as f:
        f.attrs.update(format=FORMAT, version=VERSION, n=len(data), seed=data.seed,
                       chunk_size=cfg.chunk_size, config=cfg.to_json(), bands="g,r,z")  # fmt: skip
        for name in ("images", "spectra", "ivar", "redshift", "targetid"):
            f.create_dataset(name, data=getattr(data, name), compression=compression)
        f.create_dataset("wavelength", data=data.wavelength)
        for group in ("props", "params"):
            g = f.create_group(group)
            for k, v in getattr(data, group).items():
                g.create_dataset(k, data=v)
        f.create_dataset("chunk_done", data=np.ones(1, dtype=bool))
    return path


def finished_rows(path: str | Path) -> np.ndarray:
    """(n_done,) indices of the rows whose chunk is generated (every row of a released file)."""
    with _open(path) as f:
        if f.attrs.get("format") != FORMAT:
            return np.arange(sum(n for _, n in released.groups(f)), dtype=np.int64)
        done, n, cs = f["chunk_done"][:], int(f.attrs["n"]), int(f.attrs["chunk_size"])
        rows = np.arange(n, dtype=np.int64)
        return rows[done[rows // cs]]


def read_spectra(path: str | Path, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Spectra, ivar, redshift and targetid of the (increasing) ``rows`` only, no images.

    Every row must be generated; a released file has no ivar (all ones: uniform weights).
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or np.any(np.diff(rows) <= 0):
        raise ValueError("read_spectra: rows must be a 1-D increasing array of row indices")
    done = finished_rows(path)
    missing = np.setdiff1d(rows, done)
    if missing.size:
        raise ValueError(
            f"survey file {path}: rows {missing[:5].tolist()} are not generated (or beyond its "
            f"{len(done)} finished rows); expected finished rows only"
        )
    with _open(path) as f:
        if f.attrs.get("format") == FORMAT:
            return {k: f[k][rows] for k in ("spectra", "ivar", "redshift", "targetid")}
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("spectra", "redshift", "targetid")}
        offset = 0
        for name, n in released.groups(f):
            local = rows[(rows >= offset) & (rows < offset + n)] - offset
            g = f[name]
            for key, src in (("spectra", "spectra"), ("redshift", "redshifts"),
                             ("targetid", "targetids")):  # fmt: skip
                parts[key].append(g[src][local] if local.size else g[src][:0])
            offset += n
        out = {k: np.concatenate(v) for k, v in parts.items()}
        out["spectra"] = out["spectra"].reshape(len(rows), -1).astype(np.float32)
        out["ivar"] = np.ones_like(out["spectra"])
        out["redshift"] = out["redshift"].reshape(-1).astype(np.float32)
        out["targetid"] = out["targetid"].reshape(-1).astype(np.int64)
        return out


def held_out_rows(path: str | Path, test_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """The test rows AstroCLIP evaluates a survey file on (sorted).

    A released file: its own last 20 % of each group. A simulated file: over its longest
    finished prefix of n rows, the rows ``scifm.astroclip.data.split_indices(n, 0.2, 0)``
    holds out (the first 20 % of ``numpy_rng([seed, 7]).permutation(n)``; the engine
    repeats that rule rather than import the idea, and a test checks they agree).
    """
    own = survey_split(path)
    if own is not None:
        return own[1]
    done = finished_rows(path)
    n = int(np.argmax(done != np.arange(len(done)))) if np.any(done != np.arange(len(done))) \
        else len(done)  # fmt: skip
    if n == 0:
        raise ValueError(f"survey file {path}: row 0 is not generated yet; no split to take")
    perm = numpy_rng([seed, 7]).permutation(n)
    return np.sort(perm[: max(1, round(n * test_fraction))])
