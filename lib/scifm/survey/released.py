"""The released AstroCLIP data file, read as it is.

The DESI EDR x Legacy Surveys DR9 pairs AstroCLIP trains on (Parker et al. 2024)
are one HDF5 file with groups ``"0"`` .. ``"9"``, each holding

    images     (N_g, 152, 152, 3)             g, r, z nanomaggies (any float dtype)
    spectra    (N_g, 7781, 1) or (N_g, 7781)  1e-17 erg/s/cm^2/A on 3600 + 0.8 i A
    redshifts  (N_g,) or (N_g, 1)             floats
    targetids  (N_g,) or (N_g, 1)             integers

and nothing else (no inverse variance, no physical properties). The reference
dataset builder splits each group 80/20 in file order: rows ``[0, int(0.8 N_g))``
train, the rest test. Rows are numbered here group after group, in numeric
group order, which is the order ``io.read_survey`` returns them in.
"""

from __future__ import annotations

import itertools

import h5py
import numpy as np

from scifm.survey.readers.grid import DESI_N_WAVE

LAYOUT = "astroclip-release"
KEYS = ("images", "spectra", "redshifts", "targetids")
TRAIN_FRACTION = 0.8  # the reference builder's split inside each group


def is_released(f: h5py.File) -> bool:
    """True when ``f`` has the released layout (numeric groups holding the four datasets)."""
    names = [k for k in f if isinstance(f[k], h5py.Group)]
    return bool(names) and all(k.isdigit() and all(d in f[k] for d in KEYS) for k in names)


def groups(f: h5py.File) -> list[tuple[str, int]]:
    """(group name, rows) in numeric order; checks shapes and dtypes of every group."""
    out = []
    for name in sorted((k for k in f if isinstance(f[k], h5py.Group)), key=int):
        g = f[name]
        n = g["targetids"].shape[0] if g["targetids"].ndim else 0  # a scalar fails below
        im, sp = g["images"], g["spectra"]
        if im.ndim != 4 or im.shape[0] != n or im.shape[-1] != 3:
            raise ValueError(
                f"{f.filename}: group {name!r} images have shape {im.shape}; "
                f"expected ({n}, H, W, 3)"
            )
        if sp.shape not in ((n, DESI_N_WAVE), (n, DESI_N_WAVE, 1)):
            raise ValueError(
                f"{f.filename}: group {name!r} spectra have shape {sp.shape}; expected "
                f"({n}, {DESI_N_WAVE}) or ({n}, {DESI_N_WAVE}, 1) on the DESI grid"
            )
        for key in ("redshifts", "targetids"):  # (N, 1) columns are read flat, as spectra
            if g[key].shape not in ((n,), (n, 1)):
                raise ValueError(
                    f"{f.filename}: group {name!r} {key} have shape {g[key].shape}; expected "
                    f"({n},) or ({n}, 1), one per row of its {n} targetids"
                )
        for key, kind, what in (("images", np.floating, "floats"), ("spectra", np.floating,
                                "floats"), ("redshifts", np.floating, "floats"),
                                ("targetids", np.integer, "integers")):  # fmt: skip
            if not np.issubdtype(g[key].dtype, kind):
                raise ValueError(
                    f"{f.filename}: group {name!r} {key} has dtype {g[key].dtype}; expected {what}"
                )
        out.append((name, n))
    return out


def read_rows(f: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
    """Rows ``start:stop`` (numbered across groups): float32 images, spectra (N, 7781), redshift."""
    layout = groups(f)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in KEYS}
    offset = 0
    for name, n in layout:
        lo, hi = max(start - offset, 0), min(stop - offset, n)
        for key in KEYS:  # an empty slice keeps the shapes right when no row is asked for
            parts[key].append(f[name][key][lo:hi] if lo < hi else f[name][key][:0])
        offset += n
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return {
        "images": cat["images"].astype(np.float32, copy=False),
        "spectra": cat["spectra"].reshape(-1, DESI_N_WAVE).astype(np.float32, copy=False),
        "redshift": cat["redshifts"].reshape(-1).astype(np.float32),
        "targetid": cat["targetids"].reshape(-1).astype(np.int64),
    }


def row_locator(f: h5py.File) -> tuple[list[str], np.ndarray]:
    """Group names and the global row each starts at (numeric group order), for ``read_row``."""
    layout = groups(f)
    starts = np.cumsum([0] + [n for _, n in layout])
    return [name for name, _ in layout], starts


def read_row(f: h5py.File, locator: tuple[list[str], np.ndarray], j: int) -> dict[str, np.ndarray]:
    """Row ``j`` (numbered across groups): float32 image (H, W, 3), spectrum (7781,), redshift."""
    names, starts = locator
    if not 0 <= j < starts[-1]:
        raise IndexError(f"{f.filename}: row {j} out of range for {int(starts[-1])} rows")
    k = int(np.searchsorted(starts, j, side="right")) - 1
    g, i = f[names[k]], j - int(starts[k])
    return {
        "image": np.asarray(g["images"][i], np.float32),
        "spectrum": np.asarray(g["spectra"][i], np.float32).reshape(DESI_N_WAVE),
        "redshift": np.float32(np.reshape(g["redshifts"][i], ())),
        "targetid": np.int64(np.reshape(g["targetids"][i], ())),
    }


def split(f: h5py.File) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices of the reference 80/20 split inside each group."""
    train, test, offset = [], [], 0
    for _, n in groups(f):
        cut = int(TRAIN_FRACTION * n)
        train.append(offset + np.arange(cut))
        test.append(offset + np.arange(cut, n))
        offset += n
    return np.concatenate(train).astype(np.int64), np.concatenate(test).astype(np.int64)


def write_released(
    path: str,
    images: np.ndarray,
    spectra: np.ndarray,
    redshifts: np.ndarray,
    targetids: np.ndarray,
    n_groups: int = 10,
) -> None:
    """Write arrays in the released layout, split into ``n_groups`` groups (tests, examples)."""
    bounds = np.linspace(0, len(targetids), n_groups + 1).astype(int)
    with h5py.File(path, "w") as f:
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            g = f.create_group(str(i))
            g.create_dataset("images", data=images[a:b])
            g.create_dataset("spectra", data=spectra[a:b])
            g.create_dataset("redshifts", data=redshifts[a:b])
            g.create_dataset("targetids", data=targetids[a:b])
