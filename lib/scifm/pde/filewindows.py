"""Training windows read lazily from PDEBench and The Well files.

``scan_file`` opens a file once to learn its layout (format, system, trajectories,
frames, grid, constant parameters) and closes it. ``FileWindows`` is a map-style
Dataset of (n_ctx frames, next frame) windows that opens the file on first use in
each process (so DataLoader workers each hold their own handle) and reads only the
frames one window needs with an h5py hyperslab; the whole file is never loaded.

Files of another resolution or frame count are brought to the model's by one rule:

- space: a grid of X cells is average-pooled by the integer factor ``X // res``
  (``X`` must be a multiple of ``res``; a coarser grid than ``res`` is refused);
- time: with F frames in the file and ``frames`` wanted, every k-th frame is kept,
  k = max(1, (F - 1) // (frames - 1)), so the time step matches a ``frames``-frame
  trajectory over the same span (a file with fewer frames keeps all of them).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, Dataset

from scifm.pde.files import detect_format
from scifm.pde.formats import FormatError, open_h5, read_dataset, require
from scifm.pde.pdebench import CNS_KEYS, mach_from_name
from scifm.pde.systems import get_system
from scifm.pde.well import WELL_FIELDS, _system_from_fields, field_names

SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class PDEFile:
    """What ``scan_file`` learnt about one file (no data held)."""

    path: Path
    fmt: str  # "pdebench" or "well"
    layout: str  # "grouped", "ins", "cns" (PDEBench) or "well"
    system: str  # key of SYSTEMS
    n_traj: int  # trajectories
    n_frames: int  # frames per trajectory, t = 0 included
    nx: int  # cells along x
    ny: int  # cells along y
    groups: tuple[str, ...] = ()  # PDEBench 2D_rdb / diff-react trajectory groups
    params: dict[str, float] = field(default_factory=dict)  # parameters equal for all traj
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # (min, max) over traj
    dt: float | None = None  # time between saved frames (None: the file has no time axis)
    nonfinite: tuple[str, ...] = ()  # numeric parameters holding NaN/inf: in no range above

    @property
    def shape(self) -> tuple[int, int, int]:
        """(frames, x, y): files of one data set must agree on it."""
        return (self.n_frames, self.nx, self.ny)


def find_files(paths: Sequence[str | Path]) -> list[Path]:
    """Files named in ``paths``; a directory gives its ``*.h5``/``*.hdf5`` files (recursive).

    In a Well tree (``.../data/<split>/*.hdf5``) only the ``train`` split is taken.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                q
                for q in p.rglob("*")
                if q.suffix in SUFFIXES and q.is_file() and not _held_out_split(q)
            )
            if not found:
                raise FormatError(f"{p}: empty directory: no *.h5 or *.hdf5 files under it")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FormatError(f"{p}: no such file or directory")
    return out


def _held_out_split(path: Path) -> bool:
    parts = path.parts
    return len(parts) >= 3 and parts[-3] == "data" and parts[-2] in ("valid", "test")


def scan_file(path: str | Path) -> PDEFile:
    """The layout of a PDEBench or Well file, checked; a FormatError names the file."""
    path = Path(path)
    fmt = detect_format(path)
    with open_h5(path) as f:
        info = _scan_well(f, path) if fmt == "well" else _scan_pdebench(f, path)
    if info.n_traj < 1 or info.n_frames < 2:
        raise FormatError(
            f"{path}: {info.n_traj} trajectories of {info.n_frames} frames; expected at least "
            "1 trajectory of 2 frames"
        )
    return info


MAX_ABS = 1e15  # largest field magnitude read: squares in float32 (max 3.4e38) overflow from
# ~1.8e19, and a mean of squares over a 512^2 grid earlier


def _constants(attrs: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in attrs.items():
        a = np.asarray(v)
        if np.issubdtype(a.dtype, np.number) and a.size >= 1 and np.all(a == a.flat[0]):
            out[str(k)] = float(a.flat[0])
    return out


def _numeric(values: Mapping[str, Any]) -> Iterator[tuple[str, np.ndarray]]:
    """(name, array) of every numeric, non-empty attribute or scalar."""
    for k, v in values.items():
        a = np.asarray(v)
        if np.issubdtype(a.dtype, np.number) and a.size >= 1:
            yield str(k), a


def _ranges(values: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """(min, max) of every numeric, finite attribute or scalar (one value or one per traj)."""
    return {k: (float(a.min()), float(a.max())) for k, a in _numeric(values)
            if np.all(np.isfinite(a))}  # fmt: skip


def _nonfinite(values: Mapping[str, Any]) -> set[str]:
    """Numeric attributes or scalars holding a NaN or an inf (``_ranges`` leaves them out)."""
    return {k for k, a in _numeric(values) if not np.all(np.isfinite(a))}


def _spacing(f: h5py.Group, key: str, n_frames: int) -> float | None:
    """Mean time between the first ``n_frames`` entries of the time axis ``key``, if any."""
    if key not in f or not isinstance(f[key], h5py.Dataset) or n_frames < 2:
        return None
    t = np.asarray(f[key][()], dtype=np.float64)
    t = t.reshape(-1, t.shape[-1])[0] if t.ndim else t  # (N, T) in PDEBench INS files
    if t.size < n_frames:
        raise FormatError(f"{f.file.filename}: time coordinate {f[key].name} has {t.size} "
                          f"entries for {n_frames} frames; expected one per frame")  # fmt: skip
    dt = float((t[n_frames - 1] - t[0]) / (n_frames - 1))
    if not (np.isfinite(t[:n_frames]).all() and dt > 0):
        raise FormatError(f"{f.file.filename}: time coordinate {f[key].name} holds "
                          f"{t[:3].tolist()}...; expected finite, increasing times")  # fmt: skip
    return dt


def _scan_pdebench(f: h5py.File, path: Path) -> PDEFile:
    keys = set(f.keys())
    if "Vx" in keys or "density" in keys:
        shapes = {k: require(f, k, "PDEBench 2D_CFD", 4).shape for k in CNS_KEYS}
        if len(set(shapes.values())) != 1:
            raise FormatError(f"{path}: {CNS_KEYS} have different shapes {shapes}")
        n, t, nx, ny = shapes["Vx"]
        params = _constants(f.attrs)
        if "M" not in params and (mach := mach_from_name(path)) is not None:
            params["M"] = mach  # public files name their Mach number
        ranges = {**{k: (v, v) for k, v in params.items()}, **_ranges(f.attrs)}
        dt = _spacing(f, "t-coordinate", t)  # PDEBench stores one time more than frames
        bad = tuple(sorted(_nonfinite(f.attrs)))
        return PDEFile(path, "pdebench", "cns", "cns", n, t, nx, ny, (), params, ranges, dt, bad)
    if "velocity" in keys or "particles" in keys:
        vel = require(f, "velocity", "PDEBench ns_incom_inhom_2d", 5)
        part = require(f, "particles", "PDEBench ns_incom_inhom_2d", 5)
        if vel.shape[:4] != part.shape[:4] or vel.shape[-1] != 2 or part.shape[-1] != 1:
            raise FormatError(
                f"{path}: 'velocity' {vel.shape} and 'particles' {part.shape}; expected "
                "(N, T, X, Y, 2) and (N, T, X, Y, 1)"
            )
        n, t, nx, ny = vel.shape[:4]
        params, ranges, dt = _constants(f.attrs), _ranges(f.attrs), _spacing(f, "t", t)
        bad = tuple(sorted(_nonfinite(f.attrs)))
        return PDEFile(path, "pdebench", "ins", "ins", n, t, nx, ny, (), params, ranges, dt, bad)
    groups = tuple(sorted(k for k in keys if k.isdigit()))
    first = require(f[groups[0]], "data", "PDEBench 2D_rdb / 2D_diff-react", 4)
    t, nx, ny, c = first.shape
    system = {1: "swe", 2: "diffreact"}.get(c)
    if system is None:
        raise FormatError(
            f"{path}: '{groups[0]}/data' has {c} channels; expected 1 (swe: h) or "
            "2 (diffreact: u, v)"
        )
    for g in groups:
        ds = require(f[g], "data", "PDEBench 2D_rdb / 2D_diff-react", 4)
        if ds.shape != first.shape:
            raise FormatError(f"{path}: '{g}/data' has shape {ds.shape}; expected {first.shape}")
    values: dict[str, list[float]] = {}  # per-trajectory attributes of each group
    bad: set[str] = set()
    for g in groups:
        for k, v in _ranges(f[g].attrs).items():
            values.setdefault(k, []).extend(v)
        bad |= _nonfinite(f[g].attrs)
    ranges = {k: (min(v), max(v)) for k, v in values.items() if k not in bad}
    dt = _spacing(f[groups[0]], "grid/t", t)
    return PDEFile(path, "pdebench", "grouped", system, len(groups), t, nx, ny, groups, {},
                   ranges, dt, tuple(sorted(bad)))  # fmt: skip


def _scan_well(f: h5py.File, path: Path) -> PDEFile:
    layout = "The Well"
    for key in ("dimensions", "t0_fields", "t1_fields"):
        require(f, key, layout)
    t0, t1 = field_names(f["t0_fields"]), field_names(f["t1_fields"])
    system = _system_from_fields(path, t0, t1)
    shapes = {k: require(f["t0_fields"], k, layout, 4).shape for k in t0}
    if WELL_FIELDS[system][1]:
        vel = require(f["t1_fields"], "velocity", layout, 5)
        if vel.shape[-1] != 2:
            raise FormatError(f"{path}: 't1_fields/velocity' is {vel.shape}; expected (..., 2)")
        shapes["velocity"] = vel.shape[:4]
    if len(set(shapes.values())) != 1:
        raise FormatError(f"{path}: fields of different shapes {shapes}; expected one (N, T, X, Y)")
    n, t, nx, ny = next(iter(shapes.values()))
    params, ranges, bad = {}, {}, set()
    if "scalars" in f:
        for k in field_names(f["scalars"]):
            value = {k: read_dataset(f["scalars"][k])}
            params.update(_constants(value))
            ranges.update(_ranges(value))
            bad |= _nonfinite(value)
    dt = _spacing(f["dimensions"], "time", t)
    return PDEFile(path, "well", "well", system, n, t, nx, ny, (), params, ranges, dt,
                   tuple(sorted(bad)))  # fmt: skip


def resample_rule(info: PDEFile, res: int | None, frames: int | None) -> tuple[int, int]:
    """(spatial pooling factor, frame stride) that bring ``info`` to ``res`` and ``frames``."""
    pool = 1
    if res is not None:
        if info.nx != info.ny or info.nx < res or info.nx % res:
            raise FormatError(
                f"{info.path}: grid {info.nx}x{info.ny} cannot be average-pooled to {res}x{res}; "
                f"expected a square grid whose side is a multiple of {res}"
            )
        pool = info.nx // res
    step = 1 if frames is None or frames < 2 else max(1, (info.n_frames - 1) // (frames - 1))
    return pool, step


def usable_frames(info: PDEFile, step: int) -> int:
    """Frames of a trajectory of ``info`` left after taking every ``step``-th from t = 0."""
    return (info.n_frames - 1) // step + 1


class FileWindows(Dataset):
    """(n_ctx frames, next frame) windows of one file, read lazily; items as TrajectoryWindows.

    Window ``i`` is trajectory ``i // per_traj``, start ``(i % per_traj) * stride`` in the
    frame-strided trajectory. ``name`` labels the batches (default: the system), and
    ``field_index``/``periodic`` default to the system's (fine-tuning may give new slots).
    """

    def __init__(
        self,
        file: PDEFile | str | Path,
        *,
        n_ctx: int,
        res: int | None = None,
        frames: int | None = None,
        stride: int = 1,
        name: str | None = None,
        field_index: Sequence[int] | None = None,
        periodic: bool | None = None,
        step: int | None = None,
    ) -> None:
        self.info = file if isinstance(file, PDEFile) else scan_file(file)
        spec = get_system(self.info.system)
        self.pool, self.step = resample_rule(self.info, res, frames)
        if step is not None:  # a group's common stride (``group_windows``)
            if step < 1:
                raise ValueError(f"step {step}: expected a frame stride >= 1")
            self.step = int(step)
        self.n_ctx, self.stride = n_ctx, stride
        usable = usable_frames(self.info, self.step)
        if n_ctx < 1 or stride < 1 or usable < n_ctx + 1:
            raise FormatError(
                f"{self.info.path}: {usable} frames after taking every {self.step}-th; a window "
                f"of n_ctx={n_ctx} (stride {stride}) needs at least {n_ctx + 1}"
            )
        self.per_traj = (usable - n_ctx - 1) // stride + 1
        self.system = name or self.info.system
        self.field_names = spec.field_names
        index = spec.field_index if field_index is None else tuple(field_index)
        if len(index) != spec.n_fields:
            raise ValueError(f"field_index {index}: expected {spec.n_fields} slots for {spec.name}")
        self.field_index = torch.tensor(index, dtype=torch.int64)
        self.periodic = torch.tensor(spec.periodic if periodic is None else periodic)
        self._h5: tuple[int, h5py.File] | None = None

    def __len__(self) -> int:
        return self.info.n_traj * self.per_traj

    def __getstate__(self) -> dict[str, Any]:  # a worker started by spawn opens its own
        return {**self.__dict__, "_h5": None}

    def _file(self) -> h5py.File:
        if self._h5 is None or self._h5[0] != os.getpid():  # a forked worker opens its own
            try:
                self._h5 = (os.getpid(), h5py.File(self.info.path, "r"))
            except OSError as err:
                raise FormatError(f"{self.info.path}: cannot open as HDF5: {err}") from None
        return self._h5[1]

    def frames(self, traj: int, sel: slice, *, finite: bool = True) -> np.ndarray:
        """Frames ``sel`` of trajectory ``traj`` as (T, C, X, Y), channels in order.

        A NaN or inf in them raises a FormatError naming the file and trajectory (a model
        would turn it into a NaN loss or a NaN score), unless ``finite`` is False.
        """
        out = self._read(traj, sel)
        if out.dtype.kind not in "fiu":
            raise FormatError(f"{self.info.path}: fields of dtype {out.dtype}; expected numbers")
        if finite and not np.isfinite(out).all():
            bad = int((~np.isfinite(out)).sum())
            raise FormatError(
                f"{self.info.path}: trajectory {traj}, frames {sel.start}:{sel.stop}:{sel.step}: "
                f"{bad} non-finite values (NaN or inf); expected finite fields"
            )
        if finite and out.size and (big := float(np.abs(out).max())) > MAX_ABS:
            raise FormatError(
                f"{self.info.path}: trajectory {traj}, frames {sel.start}:{sel.stop}:{sel.step}: "
                f"values up to {big:.3g}; expected fields within {MAX_ABS:g} (the metrics' float32 "
                "squares overflow beyond)"
            )
        return out

    def check_values(self) -> None:
        """Read every frame a window can use and raise as ``frames`` does on a bad value.

        Training reads lazily, so a NaN in a frame that no batch drew would pass unseen; a
        caller that wants the whole file checked first (``mpp.experiment.finetune``, whose
        data are a few trajectories) calls this. Eight frames are in memory at a time.
        """
        last = ((self.per_traj - 1) * self.stride + self.n_ctx) * self.step  # last frame read
        chunk = 8 * self.step  # at most 8 frames of one trajectory in memory at a time
        for traj in range(self.info.n_traj):
            for first in range(0, last + 1, chunk):
                self.frames(traj, slice(first, min(first + chunk, last + 1), self.step))
        if self._h5 is not None:  # opened here: loader workers open their own
            self._h5[1].close()
            self._h5 = None

    def _read(self, traj: int, sel: slice) -> np.ndarray:
        f, info = self._file(), self.info
        if info.layout == "grouped":
            data = read_dataset(f[info.groups[traj]]["data"], sel)  # (T, X, Y, C)
            return data.transpose(0, 3, 1, 2)
        if info.layout == "ins":
            v = read_dataset(f["velocity"], (traj, sel))  # (T, X, Y, 2)
            s = read_dataset(f["particles"], (traj, sel))  # (T, X, Y, 1)
            return np.concatenate([v, s], -1).transpose(0, 3, 1, 2)
        if info.layout == "cns":
            return np.stack([read_dataset(f[k], (traj, sel)) for k in CNS_KEYS], 1)
        scalars, vectors = WELL_FIELDS[info.system]
        channels = {k: read_dataset(f["t0_fields"][k], (traj, sel)) for k in scalars}
        if vectors:
            vel = read_dataset(f["t1_fields"]["velocity"], (traj, sel))  # (T, X, Y, 2)
            channels["vx"], channels["vy"] = vel[..., 0], vel[..., 1]
        return np.stack([channels[c] for c in self.field_names], 1)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(f"window {i}: out of range for {len(self)} windows")
        traj, w = divmod(i, self.per_traj)
        first = w * self.stride * self.step
        sel = slice(first, first + self.n_ctx * self.step + 1, self.step)
        x = torch.from_numpy(np.ascontiguousarray(self.frames(traj, sel), dtype=np.float32))
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool)  # (n_ctx+1, C, X/p, Y/p)
        return {
            "x": x[:-1],  # (T_ctx, C, X, Y)
            "y": x[-1],  # (C, X, Y)
            "field_index": self.field_index,  # (C,)
            "periodic": self.periodic,  # () bool
            "system": self.system,
        }


def _reference(group: Sequence[PDEFile]) -> PDEFile:
    """The file whose frames ``frames`` counts: the one with the fewest frames; on a tie one
    with a time axis, then the widest spacing (a finer file can be strided to it, not the
    other way), then by path, so the verdict does not depend on the order of the list."""
    return min(group, key=lambda i: (i.n_frames, i.dt is None, -(i.dt or 0.0), str(i.path)))


def _same_dt(a: float, b: float) -> bool:
    """Whether two frame spacings are the same (one tolerance for stride and check)."""
    return math.isclose(a, b, rel_tol=1e-4)


def _stride_to(info: PDEFile, spacing: float | None) -> int | None:
    """The whole stride that brings ``info``'s frames ``spacing`` apart (None: none does, or
    either has no time axis)."""
    if info.dt is None or spacing is None or info.dt <= 0:
        return None
    k = round(spacing / info.dt)
    return k if k >= 1 and _same_dt(info.dt * k, spacing) else None


def group_steps(group: Sequence[PDEFile], res: int | None, frames: int | None) -> list[int]:
    """The frame stride of each file of one data set: ``frames`` counts the frames of the
    group's shortest file once strided; a file whose saved spacing divides that file's
    strided spacing takes the stride that reaches it, whatever its length (a longer run at
    the same spacing, or one saved more often); any other file takes its own
    (``resample_rule``) and ``group_windows`` refuses it if the spacings then differ."""
    if not group:
        return []
    ref = _reference(group)
    ref_step = resample_rule(ref, res, frames)[1]
    spacing = _served_dt(ref, ref_step)
    return [_stride_to(i, spacing) or resample_rule(i, res, frames)[1] for i in group]


def _served(info: PDEFile, step: int, res: int | None) -> tuple[int, int, int]:
    """(frames, x, y) of ``info`` once strided by ``step`` and pooled to ``res``."""
    pool = resample_rule(info, res, None)[0]
    return (usable_frames(info, step), info.nx // pool, info.ny // pool)


def _served_dt(info: PDEFile, step: int) -> float | None:
    """Time between the frames of ``info`` once strided by ``step`` (None: no time axis)."""
    return None if info.dt is None else info.dt * step


def group_windows(
    files: Mapping[str, Sequence[PDEFile]], **kwargs: Any
) -> dict[str, ConcatDataset]:
    """One Dataset per named group of files; a group's files must share system, grid and
    frame spacing once resampled.

    Trajectory lengths may differ (PDEBench-span files beside longer runs at the same
    spacing train as one data set, each file giving its own windows); frame spacings may
    not, once strided (a file saved k times as often takes stride k). ``frames`` is the
    frame count of the group's shortest file once strided (``group_steps``). Files without a
    time axis cannot show their spacing, so they must agree in frame count once strided.
    ``kwargs`` go to every ``FileWindows`` (``n_ctx``, ``res``, ``frames``, ...).
    """
    res, frames = kwargs.get("res"), kwargs.get("frames")
    out = {}
    for name, group in files.items():
        if not group:
            raise FormatError(f"data set {name!r}: no files")
        steps = group_steps(group, res, frames)
        ref = _reference(group)  # the span ``frames`` counts
        ref_step = steps[group.index(ref)]
        want, want_dt = _served(ref, ref_step, res), _served_dt(ref, ref_step)
        for info, step in zip(group, steps, strict=True):
            got, dt = _served(info, step, res), _served_dt(info, step)
            if info.system != ref.system or got[1:] != want[1:]:
                why = ""
            elif dt is None or want_dt is None:
                if got == want:  # no spacing to compare: equal frame counts pass
                    continue
                why = " without a time axis to compare frame spacings"
            elif not _same_dt(dt, want_dt):
                why = f" with frames {dt:.6g} apart"
            else:
                continue
            at = "" if res is None and frames is None else (
                f" at res={res}, frames={frames} (in the file {info.shape})"
            )  # fmt: skip
            apart = "" if want_dt is None else f", frames {want_dt:.6g} apart"
            raise FormatError(
                f"{info.path}: {info.system} data of (frames, x, y) {got}{why}{at}; expected "
                f"{ref.system} {want}{apart} like {ref.path.name} (files of data set {name!r} "
                f"must agree in grid and frame spacing once resampled; lengths may differ)"
            )
        windows = [FileWindows(i, name=name, step=k, **kwargs) for i, k in zip(group, steps)]
        out[name] = ConcatDataset(windows)
    return out
