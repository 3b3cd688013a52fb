"""Read any PDE data file: PDEBench or The Well HDF5, told apart by their keys."""

from __future__ import annotations

from pathlib import Path

from scifm.pde.formats import FormatError, open_h5
from scifm.pde.pdebench import read_pdebench
from scifm.pde.trajectories import Trajectories
from scifm.pde.well import read_well


def detect_format(path: str | Path) -> str:
    """'pdebench' or 'well', from the keys of an HDF5 file."""
    with open_h5(path) as f:
        if "t0_fields" in f and "dimensions" in f:
            return "well"
        keys = set(f.keys())
        if keys & {"Vx", "velocity"} or any(k.isdigit() for k in keys):
            return "pdebench"
        raise FormatError(
            f"{path}: neither a PDEBench file (keys '0000'..., 'velocity' or 'Vx') nor a "
            f"Well file (keys 't0_fields', 'dimensions'); found keys {sorted(keys)[:10]}"
        )


def read_any(
    path: str | Path, *, system: str | None = None, limit: int | None = None
) -> Trajectories:
    """Read a PDEBench or The Well file (here or upstream); ``limit``: first N trajectories."""
    fmt = detect_format(path)
    reader = read_pdebench if fmt == "pdebench" else read_well
    traj = reader(path, limit=limit)
    if system is not None and traj.system != system:
        raise FormatError(f"{path}: holds {traj.system} data; expected {system}")
    return traj
