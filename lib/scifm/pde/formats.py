"""Shared file helpers: clear errors for bad files, atomic writes, reading datasets."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py


class FormatError(ValueError):
    """A file is unreadable, truncated, or not in the expected layout."""


@contextlib.contextmanager
def open_h5(path: str | Path) -> Iterator[h5py.File]:
    """Open ``path`` read-only; a missing, truncated or non-HDF5 file gives a FormatError."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise FormatError(f"{path}: cannot open as HDF5 (truncated or corrupt?): {err}") from None
    with f:
        yield f


def require(f: h5py.File | h5py.Group, key: str, layout: str, shape_rank: int | None = None) -> Any:
    """``f[key]``, or a FormatError naming the file, the key and the expected layout."""
    if key not in f:
        raise FormatError(f"{f.file.filename}: missing key {key!r} expected in the {layout} layout")
    obj = f[key]
    if shape_rank is not None and (not isinstance(obj, h5py.Dataset) or obj.ndim != shape_rank):
        got = obj.shape if isinstance(obj, h5py.Dataset) else "a group"
        raise FormatError(
            f"{f.file.filename}: key {key!r} is {got}; expected a {shape_rank}-D dataset "
            f"({layout} layout)"
        )
    return obj


def read_dataset(ds: h5py.Dataset, sel: Any = ()) -> Any:
    """Read ``ds[sel]``, turning HDF5 read failures (truncation) into FormatError."""
    try:
        return ds[sel]
    except (OSError, RuntimeError, KeyError) as err:
        raise FormatError(f"{ds.file.filename}: cannot read {ds.name!r}: {err}") from None


def atomic_path(path: Path) -> Path:
    """A temporary sibling of ``path`` to write first and then ``os.replace`` into place."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")
