"""Dataset generation at scale: batched chunks, atomic writes, exact resume.

Trajectories are simulated in chunks of ``chunk_size``; chunk k draws its initial
conditions from ``SeedSequence([seed, k])``, so a chunk's content does not depend on
which chunks ran before. Each chunk is written to a temporary file and renamed into
place, so an interrupted run leaves only complete chunks; running the same command
again skips them. ``generate.json`` in the output directory records the request and
refuses a resume with different settings.

Layouts: ``well`` writes one Well file per chunk under ``<out>/scifm_<system>/data/
train`` plus ``stats.yaml``. ``pdebench`` writes chunk files under ``<out>/chunks``
and, once all exist, merges them into the public file name (INS keeps one file per
chunk, as PDEBench's ``ns_incom_inhom_2d_{res}-{k}.h5`` files do).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from scifm.core import ConfigMixin
from scifm.core.report import atomic_write
from scifm.pde.formats import atomic_path, open_h5
from scifm.pde.pdebench import GROUPED, pdebench_filename, write_pdebench
from scifm.pde.simulate import SOLVERS, _split_params, simulate
from scifm.pde.systems import get_system
from scifm.pde.well import well_dataset_name, write_well, write_well_stats

FORMATS = ("pdebench", "well")
MANIFEST = "generate.json"
DONE = "generate.done.json"  # a finished PDEBench request: the merged file's name


MAX_RES = 4096  # cells per side a request may ask for (PDEBench's largest is 512)
MAX_FRAMES = 100_000  # frames per trajectory (PDEBench's INS files hold 1000)


@dataclass(frozen=True)
class GenerateRequest(ConfigMixin):
    """Everything that determines the generated data (recorded in ``generate.json``)."""

    system: str  # one of SYSTEMS
    n: int  # number of trajectories
    res: int = 128  # cells per side (PDEBench: 128; the "small" preset: 64 for CPUs)
    n_frames: int | None = None  # frames per trajectory incl. t = 0; None: PDEBench's
    t_end: float | None = None  # final time; None: PDEBench's
    fmt: str = "pdebench"  # "pdebench" or "well"
    seed: int = 0  # base seed; chunk k uses SeedSequence([seed, k])
    chunk_size: int = 16  # trajectories simulated together (one batch, one file)
    dtype: str = "float32"  # solver precision ("float32" or "float64"); files are float32
    params: dict[str, float] = field(default_factory=dict)  # physical parameter overrides

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"res": 16, "n_frames": 4, "chunk_size": 2},  # tests
        "small": {"res": 64, "chunk_size": 16},  # a CPU
        "pdebench": {"res": 128, "chunk_size": 32},  # PDEBench's resolution, a GPU
    }

    def __post_init__(self) -> None:
        get_system(self.system)
        if self.fmt not in FORMATS:
            raise ValueError(f"format {self.fmt!r}: expected one of {FORMATS}")
        if self.n < 1 or self.chunk_size < 1 or self.res < 4:
            raise ValueError(
                f"n={self.n}, chunk_size={self.chunk_size}, res={self.res}: expected n >= 1, "
                "chunk_size >= 1, res >= 4"
            )
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype {self.dtype!r}: expected 'float32' or 'float64'")
        if self.res > MAX_RES or self.frames < 2 or self.frames > MAX_FRAMES:
            raise ValueError(
                f"res={self.res}, n_frames={self.frames}: expected res <= {MAX_RES} and 2 to "
                f"{MAX_FRAMES} frames"
            )
        if not (math.isfinite(self.span) and self.span > 0):
            raise ValueError(f"t_end={self.t_end}: expected a finite time > 0")
        # the solver's own check of parameter names, before anything is written to --out
        _split_params(self.system, SOLVERS[self.system], self.params)
        bad = {k: v for k, v in self.params.items() if not math.isfinite(float(v))}
        if bad:
            raise ValueError(f"params {bad}: expected finite numbers")

    @property
    def frames(self) -> int:
        return self.n_frames if self.n_frames is not None else get_system(self.system).n_frames

    @property
    def span(self) -> float:
        return self.t_end if self.t_end is not None else get_system(self.system).t_end

    @property
    def n_chunks(self) -> int:
        return -(-self.n // self.chunk_size)

    def chunk_seed(self, k: int) -> int:
        return int(np.random.SeedSequence([self.seed, k]).generate_state(1)[0])

    def chunk_range(self, k: int) -> tuple[int, int]:
        return k * self.chunk_size, min(self.n, (k + 1) * self.chunk_size)


def generate(
    req: GenerateRequest,
    out: str | Path,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> list[Path]:
    """Generate (or finish generating) ``req`` into directory ``out``; returns final files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_manifest(req, out)
    finished = _finished_pdebench(req, out)
    if finished is not None:  # a rerun of a finished request simulates nothing
        return [finished]
    bar = tqdm(total=req.n, desc=f"{req.system} {req.res}^2", unit="traj", disable=not progress)
    chunk_files = []
    for k in range(req.n_chunks):
        lo, hi = req.chunk_range(k)
        path = _chunk_path(req, out, k)
        if not path.exists():
            traj = simulate(
                req.system,
                hi - lo,
                res=req.res,
                n_frames=req.n_frames,
                t_end=req.t_end,
                seed=req.chunk_seed(k),
                device=device,
                dtype=getattr(torch, req.dtype),
                params=req.params,
            )
            traj = traj.to("cpu")
            if req.fmt == "well":
                write_well(traj, out, file_name=path.name)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_pdebench(traj, path, first_index=lo)
        chunk_files.append(path)
        bar.update(hi - lo)
    bar.close()
    if req.fmt == "well":
        write_well_stats(out / well_dataset_name(req.system))
        return chunk_files
    return _finish_pdebench(req, out, chunk_files)


def _check_manifest(req: GenerateRequest, out: Path) -> None:
    path = out / MANIFEST
    record = req.to_dict()
    if not path.exists():
        others = sorted(p.name for p in out.iterdir())
        if others:  # a user's folder: its files would be taken for (or merged into) ours
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise ValueError(
                f"--out {out}: not empty ({shown}) and holds no {MANIFEST}; generate into "
                "a new or empty folder"
            )
    if path.exists():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(record)):
            diff = {k: (old.get(k), v) for k, v in record.items() if old.get(k) != v}
            raise ValueError(
                f"{out}: holds a different generation request {diff} (old, new); "
                "use another --out or the same settings to resume"
            )
        return
    atomic_write(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def _finished_pdebench(req: GenerateRequest, out: Path) -> Path | None:
    """The merged file of a finished PDEBench request in ``out``, else None.

    Merging deletes the chunks, so without this a rerun would simulate them all again.
    The manifest check has made sure ``out`` holds this request; INS chunks are its final
    files and are skipped one by one like any chunk.
    """
    if req.fmt != "pdebench" or req.system == "ins" or (out / "chunks").exists():
        return None
    done = out / DONE
    if done.exists():  # the name the merge wrote
        final = out / json.loads(done.read_text())["file"]
        return final if final.is_file() else None
    # a folder finished before DONE was written: its one HDF5 file (the manifest check has
    # made sure the folder was empty when the request began)
    merged = [p for p in out.iterdir() if p.is_file() and p.suffix in (".h5", ".hdf5")]
    return merged[0] if len(merged) == 1 else None


def _chunk_path(req: GenerateRequest, out: Path, k: int) -> Path:
    if req.fmt == "well":
        name = well_dataset_name(req.system)
        return out / name / "data" / "train" / f"{name}_chunk{k:05d}.hdf5"
    if req.system == "ins":  # PDEBench's INS set is itself split over numbered files
        return out / f"ns_incom_inhom_2d_{req.res}-{k}.h5"
    return out / "chunks" / f"chunk{k:05d}.h5"


def _finish_pdebench(req: GenerateRequest, out: Path, chunks: list[Path]) -> list[Path]:
    if req.system == "ins":
        return chunks
    with open_h5(chunks[0]) as f:
        name = GROUPED.get(req.system) or _cns_name(f, req)
    final = out / name
    if not final.exists():
        tmp = atomic_path(final)
        with h5py.File(tmp, "w") as dst:
            (_merge_grouped if req.system in GROUPED else _merge_cns)(dst, chunks, req.n)
        os.replace(tmp, final)
    atomic_write(out / DONE, json.dumps({"file": final.name}) + "\n")
    shutil.rmtree(out / "chunks", ignore_errors=True)
    return [final]


def _cns_name(f: h5py.File, req: GenerateRequest) -> str:
    from scifm.pde.pdebench import read_pdebench

    return pdebench_filename(read_pdebench(f.filename, limit=1))


def _merge_grouped(dst: h5py.File, chunks: list[Path], n: int) -> None:
    for path in chunks:
        with open_h5(path) as src:
            for g in sorted(src.keys()):
                src.copy(src[g], dst, name=g)


def _merge_cns(dst: h5py.File, chunks: list[Path], n: int) -> None:
    offset = 0
    per_traj: dict[str, list[np.ndarray]] = {}
    for i, path in enumerate(chunks):
        with open_h5(path) as src:
            m = src["Vx"].shape[0]
            for key in ("Vx", "Vy", "density", "pressure"):
                if i == 0:
                    dst.create_dataset(key, shape=(n, *src[key].shape[1:]), dtype=np.float32)
                dst[key][offset : offset + m] = src[key][:]
            if i == 0:
                for key in ("x-coordinate", "y-coordinate", "t-coordinate"):
                    src.copy(src[key], dst, name=key)
            for k, v in src.attrs.items():
                if np.ndim(v) == 0:
                    dst.attrs[k] = v
                else:
                    per_traj.setdefault(k, []).append(np.asarray(v))
            offset += m
    for k, parts in per_traj.items():
        dst.attrs[k] = np.concatenate(parts)


def request_from_args(
    system: str, n: int, *, preset: str | None = None, **kwargs: Any
) -> GenerateRequest:
    """A request from a preset (or the defaults) and the options that were given."""
    given = {k: v for k, v in kwargs.items() if v is not None}
    if "params" in given:
        given["params"] = {k: float(v) for k, v in given["params"].items()}
    if preset is not None:
        return GenerateRequest.preset(preset, system=system, n=n, **given)
    return GenerateRequest(system=system, n=n, **given)
