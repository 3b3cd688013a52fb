"""The Well's HDF5 layout (Polymathic AI, 2024) and its ``stats.yaml``.

``<root>/<name>/data/{train,valid,test}/*.hdf5`` plus ``<root>/<name>/stats.yaml``.
A file holds root attributes ``dataset_name``, ``grid_type``, ``n_spatial_dims``,
``n_trajectories``, ``simulation_parameters``; ``dimensions/{time,x,y}``;
``boundary_conditions/<name>/{mask,values}``; ``scalars/`` (here the per-trajectory
parameters); ``t0_fields/`` (scalar fields, (N, T, X, Y)), ``t1_fields/`` (vector
fields, (N, T, X, Y, 2)) and ``t2_fields/``; every dataset carries ``dim_varying``,
``sample_varying`` and ``time_varying``. The official reader
(``the_well.data.WellDataset``) loads what ``write_well`` writes (see tests).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
import yaml

from scifm.pde.formats import FormatError, atomic_path, open_h5, read_dataset, require
from scifm.pde.systems import get_system
from scifm.pde.trajectories import Trajectories

SPLITS = ("train", "valid", "test")
# Our channels as Well fields: (t0 scalar fields, t1 vector fields made of (vx, vy)).
WELL_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "swe": (("h",), ()),
    "diffreact": (("u", "v"), ()),
    "ins": (("particles",), ("velocity",)),
    "cns": (("density", "pressure"), ("velocity",)),
}
BC_TYPES = {"periodic": "periodic", "outflow": "open", "wall": "wall"}


def well_dataset_name(system: str) -> str:
    return f"scifm_{system}"


def write_well(
    traj: Trajectories,
    root: str | Path,
    *,
    split: str = "train",
    file_name: str | None = None,
) -> Path:
    """Write ``traj`` as one Well file under ``root/<name>/data/<split>/``; atomic."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: expected one of {SPLITS}")
    fields = traj.fields.detach().cpu().float().numpy()  # (N, T, C, X, Y)
    if not np.isfinite(fields).all():
        raise ValueError(f"{traj.system}: refusing to write non-finite frames")
    name = well_dataset_name(traj.system)
    out_dir = Path(root) / name / "data" / split
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (file_name or f"{name}_{split}.hdf5")
    tmp = atomic_path(path)
    with h5py.File(tmp, "w") as f:
        _write_file(f, traj, fields, name)
    os.replace(tmp, path)
    return path


def _flags(
    ds: h5py.Dataset | h5py.Group, *, sample: bool, time: bool, dims: Sequence[bool]
) -> None:
    ds.attrs["sample_varying"] = sample
    ds.attrs["time_varying"] = time
    ds.attrs["dim_varying"] = np.asarray(dims, dtype=bool)


def _write_file(f: h5py.File, traj: Trajectories, fields: np.ndarray, name: str) -> None:
    spec = get_system(traj.system)
    t0_names, t1_names = WELL_FIELDS[traj.system]
    params = {k: v for k, v in traj.numpy_params().items() if v.ndim == 1}
    n, _, _, nx, ny = fields.shape
    f.attrs["dataset_name"] = name
    f.attrs["grid_type"] = "cartesian"
    f.attrs["n_spatial_dims"] = 2
    f.attrs["n_trajectories"] = n
    f.attrs["simulation_parameters"] = sorted(params)
    _write_grid(f, traj)
    _write_boundaries(f, spec.boundary, nx, ny)
    scalars = f.create_group("scalars")
    scalars.attrs["field_names"] = sorted(params)
    for k in sorted(params):
        ds = scalars.create_dataset(k, data=params[k].astype(np.float32))
        _flags(ds, sample=True, time=False, dims=[])
    _write_fields(f, traj, fields, t0_names, t1_names)


def _write_grid(f: h5py.File, traj: Trajectories) -> None:
    dims = f.create_group("dimensions")
    dims.attrs["spatial_dims"] = ["x", "y"]
    for key, value, time in (("time", traj.t, True), ("x", traj.x, False), ("y", traj.y, False)):
        ds = dims.create_dataset(key, data=value.detach().cpu().float().numpy())
        ds.attrs["sample_varying"] = False
        ds.attrs["time_varying"] = time


def _write_boundaries(f: h5py.File, boundary: str, nx: int, ny: int) -> None:
    bcs = f.create_group("boundary_conditions")
    for axis, size in (("x", nx), ("y", ny)):
        g = bcs.create_group(f"{axis}_{boundary}")
        g.attrs["bc_type"] = BC_TYPES[boundary]
        g.attrs["associated_dims"] = [axis]
        g.attrs["associated_fields"] = []
        g.attrs["sample_varying"] = False
        g.attrs["time_varying"] = False
        mask = np.zeros(size, dtype=bool)
        mask[[0, -1]] = True
        g.create_dataset("mask", data=mask)
        g.create_dataset("values", data=np.zeros(0, dtype=np.float32))


def _write_fields(
    f: h5py.File,
    traj: Trajectories,
    fields: np.ndarray,
    t0_names: Sequence[str],
    t1_names: Sequence[str],
) -> None:
    idx = {c: i for i, c in enumerate(traj.field_names)}
    t0 = f.create_group("t0_fields")
    t0.attrs["field_names"] = list(t0_names)
    for k in t0_names:
        _flags(
            t0.create_dataset(k, data=fields[:, :, idx[k]]),
            sample=True,
            time=True,
            dims=[True, True],
        )
    t1 = f.create_group("t1_fields")
    extra_t1 = ["forcing"] if "forcing" in traj.params else []
    t1.attrs["field_names"] = list(t1_names) + extra_t1
    for k in t1_names:
        vec = np.stack([fields[:, :, idx["vx"]], fields[:, :, idx["vy"]]], axis=-1)
        _flags(t1.create_dataset(k, data=vec), sample=True, time=True, dims=[True, True])
    if extra_t1:  # INS forcing: a constant-in-time vector field per trajectory
        force = traj.params["forcing"].detach().cpu().float().numpy().transpose(0, 2, 3, 1)
        _flags(t1.create_dataset("forcing", data=force), sample=True, time=False, dims=[True, True])
    t2 = f.create_group("t2_fields")
    t2.attrs["field_names"] = []


def _system_from_fields(path: str | Path, t0: Sequence[str], t1: Sequence[str]) -> str:
    t1 = [k for k in t1 if k != "forcing"]
    for system, (a, b) in WELL_FIELDS.items():
        if tuple(t0) == a and tuple(t1) == b:
            return system
    raise FormatError(
        f"{path}: Well fields t0={list(t0)} t1={list(t1)} match none of our systems "
        f"{ {k: v for k, v in WELL_FIELDS.items()} }"
    )


def field_names(group: h5py.Group) -> list[str]:
    """A Well group's ``field_names`` attribute as str (h5py gives bytes for some files)."""
    return [
        s.decode() if isinstance(s, bytes) else str(s) for s in group.attrs.get("field_names", [])
    ]


def read_well(path: str | Path, *, limit: int | None = None) -> Trajectories:
    """Read one Well file of one of the four systems into ``Trajectories``."""
    layout = "The Well"
    with open_h5(path) as f:
        for key in ("dimensions", "t0_fields", "t1_fields"):
            require(f, key, layout)
        t0_names, t1_names = field_names(f["t0_fields"]), field_names(f["t1_fields"])
        system = _system_from_fields(path, t0_names, t1_names)
        spec = get_system(system)
        n_total = int(f.attrs.get("n_trajectories", 0)) or None
        sel = slice(0, limit if limit is not None else n_total)
        channels: dict[str, np.ndarray] = {}
        for k in t0_names:
            channels[k] = read_dataset(require(f["t0_fields"], k, layout, 4), sel)
        if "velocity" in t1_names:
            vel = read_dataset(require(f["t1_fields"], "velocity", layout, 5), sel)
            channels["vx"], channels["vy"] = vel[..., 0], vel[..., 1]
        fields = np.stack([channels[c] for c in spec.field_names], axis=2)
        t = read_dataset(require(f["dimensions"], "time", layout))
        x = read_dataset(require(f["dimensions"], "x", layout, 1))
        y = read_dataset(require(f["dimensions"], "y", layout, 1))
        n = fields.shape[0]
        params: dict[str, torch.Tensor] = {}
        if "scalars" in f:
            for k in field_names(f["scalars"]):
                v = np.asarray(read_dataset(f["scalars"][k]))
                if not np.issubdtype(v.dtype, np.number):
                    continue
                if v.ndim == 0:  # one value for the whole file, as the Well writes constants
                    params[k] = torch.full((n,), float(v), dtype=torch.float64)
                elif v.ndim == 1 and len(v) >= n:
                    params[k] = torch.from_numpy(np.asarray(v[:n], dtype=np.float64))
        if "forcing" in t1_names:
            force = read_dataset(f["t1_fields"]["forcing"], sel)
            params["forcing"] = torch.from_numpy(force.transpose(0, 3, 1, 2).copy())
    if t.shape[-1] != fields.shape[1]:
        raise FormatError(f"{path}: {t.shape[-1]} times for {fields.shape[1]} frames")
    t = np.asarray(t).reshape(-1, t.shape[-1])[0]  # (T,) or (N, T) per sample: the first's
    return Trajectories(
        system=system,
        fields=torch.from_numpy(fields).float(),
        field_names=spec.field_names,
        t=torch.from_numpy(np.asarray(t, dtype=np.float32)),
        x=torch.from_numpy(np.asarray(x, dtype=np.float32)),
        y=torch.from_numpy(np.asarray(y, dtype=np.float32)),
        params=params,
    )


def write_well_stats(dataset_dir: str | Path, split: str = "train") -> Path:
    """Compute ``stats.yaml`` (mean, std, mean_delta, std_delta, rms, rms_delta per field)."""
    dataset_dir = Path(dataset_dir)
    files = sorted((dataset_dir / "data" / split).glob("*.hdf5"))
    if not files:
        raise FormatError(f"{dataset_dir}: no *.hdf5 files under data/{split}")
    sums: dict[str, dict[str, np.ndarray]] = {}
    for path in files:
        with open_h5(path) as f:
            for group in ("t0_fields", "t1_fields"):
                for k in field_names(f[group]):
                    a = read_dataset(f[group][k]).astype(np.float64)
                    if not f[group][k].attrs.get("time_varying", True):
                        a = a[:, None]  # a constant field: one "frame", no deltas
                    acc = sums.setdefault(str(k), {})
                    parts = [("", a)] + (
                        [("_delta", a[:, 1:] - a[:, :-1])] if a.shape[1] > 1 else []
                    )
                    for tag, arr in parts:
                        # Reduce over (N, T, X, Y); a vector field keeps its component axis.
                        acc["n" + tag] = acc.get("n" + tag, 0) + int(np.prod(arr.shape[:4]))
                        acc["s" + tag] = acc.get("s" + tag, 0) + arr.sum((0, 1, 2, 3))
                        acc["ss" + tag] = acc.get("ss" + tag, 0) + (arr**2).sum((0, 1, 2, 3))
    keys = ("mean", "std", "mean_delta", "std_delta", "rms", "rms_delta")
    stats: dict[str, dict[str, object]] = {k: {} for k in keys}
    for k, acc in sums.items():
        for tag in [t for t in ("", "_delta") if "n" + t in acc]:
            n, s, ss = acc["n" + tag], acc["s" + tag], acc["ss" + tag]
            mean, msq = s / n, ss / n
            std = np.sqrt(np.maximum(msq - mean**2, 0))
            stats["mean" + tag][k] = _yaml_value(mean)
            stats["std" + tag][k] = _yaml_value(std)
            stats["rms" + tag][k] = _yaml_value(np.sqrt(msq))
    out = dataset_dir / "stats.yaml"
    tmp = atomic_path(out)
    tmp.write_text(yaml.safe_dump(stats, sort_keys=True))
    os.replace(tmp, out)
    return out


def _yaml_value(v: np.ndarray) -> float | list[float]:
    v = np.asarray(v, dtype=np.float64)
    return float(v) if v.ndim == 0 else [float(x) for x in v]
