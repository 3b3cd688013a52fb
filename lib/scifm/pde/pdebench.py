"""PDEBench's HDF5 layouts for the four 2D systems (Takamoto et al., 2022).

Exact public file names, keys and shapes, so real PDEBench files load unchanged:

- SWE ``2D_rdb_NA_NA.h5`` / diffusion-reaction ``2D_diff-react_NA_NA.h5``: one group
  per trajectory ('0000', '0001', ...) holding ``data`` (T, X, Y, C) float32 and
  ``grid/x`` (X,), ``grid/y`` (Y,), ``grid/t`` (T,).
- INS ``ns_incom_inhom_2d_{res}-{k}.h5``: ``velocity`` (N, T, X, Y, 2), ``particles``
  (N, T, X, Y, 1), ``force`` (N, X, Y, 2), ``t`` (N, T).
- CNS ``2D_CFD_{Rand|Turb}_M{M}_Eta{eta}_Zeta{zeta}_periodic_{res}_Train.hdf5``:
  ``Vx``, ``Vy``, ``density``, ``pressure`` (N, T, X, Y), ``x-coordinate`` (X,),
  ``y-coordinate`` (Y,), ``t-coordinate`` (T + 1,), attributes ``M``, ``eta``, ``zeta``.

Per-trajectory parameters that PDEBench does not store (e.g. the dam radius) go into
HDF5 attributes, which leaves the key layout untouched.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import h5py
import numpy as np
import torch

from scifm.pde.formats import FormatError, atomic_path, open_h5, read_dataset, require
from scifm.pde.systems import get_system
from scifm.pde.trajectories import Trajectories

GROUPED = {"swe": "2D_rdb_NA_NA.h5", "diffreact": "2D_diff-react_NA_NA.h5"}
CNS_KEYS = ("Vx", "Vy", "density", "pressure")


def pdebench_filename(traj: Trajectories, index: int = 0) -> str:
    """The public PDEBench file name for these trajectories (``index`` numbers INS files)."""
    if traj.system in GROUPED:
        return GROUPED[traj.system]
    res = traj.fields.shape[-2]
    if traj.system == "ins":
        return f"ns_incom_inhom_2d_{res}-{index}.h5"
    p = traj.params
    kind = "Turb" if float(p.get("turbulent", torch.zeros(1)).max()) > 0 else "Rand"
    m, eta, zeta = (_one_value(p, k) for k in ("M", "eta", "zeta"))
    return f"2D_CFD_{kind}_M{m}_Eta{eta}_Zeta{zeta}_periodic_{res}_Train.hdf5"


def _one_value(params: dict[str, torch.Tensor], key: str) -> float:
    """The single value of a per-trajectory parameter, rounded as PDEBench names print it."""
    values = params[key].detach().cpu().double().unique()
    if values.numel() != 1:
        raise ValueError(
            f"params[{key!r}] varies across trajectories ({values.tolist()[:4]}...); a PDEBench "
            "CNS file holds one (M, eta, zeta): split the trajectories by value"
        )
    return float(str(np.float32(values.item())))


def write_pdebench(traj: Trajectories, path: str | Path, *, first_index: int = 0) -> Path:
    """Write ``traj`` to ``path`` (a directory gets the public file name); atomic."""
    path = Path(path)
    if path.is_dir():
        path = path / pdebench_filename(traj)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    fields = traj.fields.detach().cpu().float().numpy()  # (N, T, C, X, Y)
    if not np.isfinite(fields).all():
        raise ValueError(f"{path}: refusing to write non-finite frames")
    with h5py.File(tmp, "w") as f:
        {"swe": _write_grouped, "diffreact": _write_grouped, "ins": _write_ins, "cns": _write_cns}[
            traj.system
        ](f, traj, fields, first_index)
    os.replace(tmp, path)
    return path


def _coords(traj: Trajectories) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(v.detach().cpu().float().numpy() for v in (traj.x, traj.y, traj.t))  # type: ignore[return-value]


def _write_grouped(f: h5py.File, traj: Trajectories, fields: np.ndarray, first: int) -> None:
    x, y, t = _coords(traj)
    params = traj.numpy_params()
    for i in range(fields.shape[0]):
        g = f.create_group(f"{first + i:04d}")
        g.create_dataset("data", data=fields[i].transpose(0, 2, 3, 1))  # (T, X, Y, C)
        g.create_dataset("grid/x", data=x)
        g.create_dataset("grid/y", data=y)
        g.create_dataset("grid/t", data=t)
        for k, v in params.items():
            if v.ndim == 1:
                g.attrs[k] = float(v[i])


def _write_ins(f: h5py.File, traj: Trajectories, fields: np.ndarray, first: int) -> None:
    n, t_len = fields.shape[:2]
    f.create_dataset("velocity", data=fields[:, :, :2].transpose(0, 1, 3, 4, 2))
    f.create_dataset("particles", data=fields[:, :, 2:3].transpose(0, 1, 3, 4, 2))
    force = traj.params["forcing"].detach().cpu().float().numpy()  # (N, 2, X, Y)
    f.create_dataset("force", data=force.transpose(0, 2, 3, 1))
    _, _, t = _coords(traj)
    f.create_dataset("t", data=np.broadcast_to(t, (n, t_len)).copy())
    for k, v in traj.numpy_params().items():
        if v.ndim == 1:
            f.attrs[k] = v.astype(np.float64)


def _write_cns(f: h5py.File, traj: Trajectories, fields: np.ndarray, first: int) -> None:
    names = get_system("cns").field_names
    for key, name in zip(CNS_KEYS, names):
        f.create_dataset(key, data=fields[:, :, names.index(name)])
    x, y, t = _coords(traj)
    f.create_dataset("x-coordinate", data=x)
    f.create_dataset("y-coordinate", data=y)
    # PDEBench stores one time more than frames saved.
    dt = t[-1] - t[-2] if len(t) > 1 else 0.0
    f.create_dataset("t-coordinate", data=np.append(t, t[-1] + dt).astype(np.float32))
    for k in ("M", "eta", "zeta"):
        f.attrs[k] = _one_value(traj.params, k)
    for k, v in traj.numpy_params().items():
        if v.ndim == 1 and k not in ("M", "eta", "zeta"):
            f.attrs[k] = v.astype(np.float64)


def read_pdebench(path: str | Path, *, limit: int | None = None) -> Trajectories:
    """Read a PDEBench 2D file (written here or downloaded); ``limit`` reads the first N."""
    with open_h5(path) as f:
        keys = set(f.keys())
        if "Vx" in keys or "density" in keys:
            return _read_cns(f, limit)
        if "velocity" in keys or "particles" in keys:
            return _read_ins(f, limit)
        groups = sorted(k for k in keys if k.isdigit())
        if groups:
            return _read_grouped(f, groups[:limit], path)
        raise FormatError(
            f"{path}: not a PDEBench 2D file: expected groups '0000'... (2D_rdb, "
            f"2D_diff-react), 'velocity' (ns_incom) or 'Vx' (2D_CFD); found {sorted(keys)[:10]}"
        )


def _read_grouped(f: h5py.File, groups: list[str], path: str | Path) -> Trajectories:
    layout = "PDEBench 2D_rdb / 2D_diff-react"
    first = f[groups[0]]
    data0 = require(first, "data", layout, 4)
    c = data0.shape[-1]
    system = {1: "swe", 2: "diffreact"}.get(c)
    if system is None:
        raise FormatError(
            f"{path}: '{groups[0]}/data' has {c} channels; expected 1 (h) or 2 (u, v)"
        )
    x = read_dataset(require(first, "grid/x", layout, 1))
    y = read_dataset(require(first, "grid/y", layout, 1))
    t = read_dataset(require(first, "grid/t", layout, 1))
    out, params = [], {}
    for name in groups:
        ds = require(f[name], "data", layout, 4)
        if ds.shape != data0.shape:
            raise FormatError(f"{path}: '{name}/data' has shape {ds.shape}; expected {data0.shape}")
        out.append(read_dataset(ds).transpose(0, 3, 1, 2))  # (T, C, X, Y)
        for k, v in f[name].attrs.items():
            if np.ndim(v) == 0 and np.issubdtype(np.asarray(v).dtype, np.number):
                params.setdefault(k, []).append(float(v))
    fields = torch.from_numpy(np.stack(out))
    full = {k: torch.tensor(v) for k, v in params.items() if len(v) == len(out)}
    return _trajectories(system, fields, t, x, y, full, path)


def _read_ins(f: h5py.File, limit: int | None) -> Trajectories:
    layout, path = "PDEBench ns_incom_inhom_2d", f.filename
    vel = require(f, "velocity", layout, 5)
    part = require(f, "particles", layout, 5)
    n = vel.shape[0] if limit is None else min(limit, vel.shape[0])
    v = read_dataset(vel, slice(0, n))  # (N, T, X, Y, 2)
    s = read_dataset(part, slice(0, n))  # (N, T, X, Y, 1)
    if v.shape[:4] != s.shape[:4] or v.shape[-1] != 2 or s.shape[-1] != 1:
        raise FormatError(
            f"{path}: 'velocity' {v.shape} and 'particles' {s.shape}; expected (N, T, X, Y, 2) "
            "and (N, T, X, Y, 1)"
        )
    t = read_dataset(require(f, "t", layout))
    t = t[0] if t.ndim == 2 else t
    fields = torch.from_numpy(np.concatenate([v, s], -1).transpose(0, 1, 4, 2, 3).copy())
    params = {}
    if "force" in f:
        params["forcing"] = torch.from_numpy(
            read_dataset(f["force"], slice(0, n)).transpose(0, 3, 1, 2).copy()
        )
    nx, ny = fields.shape[-2:]
    x = (np.arange(nx) + 0.5) / nx  # PDEBench's INS files carry no spatial grid: unit square
    y = (np.arange(ny) + 0.5) / ny
    params.update(_root_params(f, n))
    return _trajectories("ins", fields, t, x, y, params, path)


def _read_cns(f: h5py.File, limit: int | None) -> Trajectories:
    layout, path = "PDEBench 2D_CFD", f.filename
    arrays = []
    for key in CNS_KEYS:
        ds = require(f, key, layout, 4)
        n = ds.shape[0] if limit is None else min(limit, ds.shape[0])
        arrays.append(read_dataset(ds, slice(0, n)))
    if len({a.shape for a in arrays}) != 1:
        raise FormatError(f"{path}: {CNS_KEYS} have different shapes {[a.shape for a in arrays]}")
    fields = torch.from_numpy(np.stack(arrays, axis=2))  # (N, T, 4, X, Y): vx vy rho p
    x = read_dataset(require(f, "x-coordinate", layout, 1))
    y = read_dataset(require(f, "y-coordinate", layout, 1))
    t = read_dataset(require(f, "t-coordinate", layout, 1))[: fields.shape[1]]
    params = _root_params(f, fields.shape[0])
    mach = mach_from_name(path)
    if "M" not in params and mach is not None:  # public files name their Mach number
        params["M"] = torch.full((fields.shape[0],), mach, dtype=torch.float64)
    return _trajectories("cns", fields, t, x, y, params, path)


def mach_from_name(path: str | Path) -> float | None:
    """The Mach number a PDEBench 2D_CFD file name carries (``..._M0.1_Eta...``), if any."""
    m = re.search(r"_M([0-9]+(?:\.[0-9]+)?)_", Path(path).name)
    return float(m.group(1)) if m else None


def _root_params(f: h5py.File, n: int) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in f.attrs.items():
        arr = np.asarray(v)
        if np.issubdtype(arr.dtype, np.number) and arr.ndim <= 1:
            arr = np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr[:n]
            if arr.shape == (n,):
                out[k] = torch.from_numpy(arr.astype(np.float64).copy())
    return out


def _trajectories(
    system: str,
    fields: torch.Tensor,
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    params: dict[str, torch.Tensor],
    path: str | Path,
) -> Trajectories:
    t = np.asarray(t, dtype=np.float32)
    if t.shape[0] != fields.shape[1]:
        raise FormatError(f"{path}: {t.shape[0]} times for {fields.shape[1]} frames")
    return Trajectories(
        system=system,
        fields=fields.float(),
        field_names=get_system(system).field_names,
        t=torch.from_numpy(t),
        x=torch.as_tensor(np.asarray(x, dtype=np.float32)),
        y=torch.as_tensor(np.asarray(y, dtype=np.float32)),
        params=params,
    )
