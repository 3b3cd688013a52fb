"""MPP's data sets: named system variants, in memory or read lazily from files.

McCabe et al. (arXiv:2310.02994) pretrain on PDEBench's SWE, diffusion-reaction, INS and
compressible NS, with CNS at Mach 0.1 and 1.0 counted as separate data sets ("variants").
A variant's windows come from simulated tensors (``memory_datasets``), from PDEBench or
The Well files (``file_datasets``, read lazily by ``scifm.pde.FileWindows``), or from files
generated first (``generate_files``). Batching (one variant per micro-batch, variants
drawn uniformly, windows without replacement) is ``scifm.pde.system_batches``.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from scifm.pde.filewindows import PDEFile, find_files, group_windows, scan_file
from scifm.pde.formats import FormatError
from scifm.pde.windows import TrajectoryWindows

# variant name -> (PDE system, physical parameters passed to simulate)
VARIANTS: dict[str, tuple[str, dict[str, float]]] = {
    "swe": ("swe", {}),
    "diffreact": ("diffreact", {}),
    "ins": ("ins", {}),
    "cns_m0.1": ("cns", {"M": 0.1}),
    "cns_m1.0": ("cns", {"M": 1.0}),
}
SPLITS = {"train": 0, "test": 1}
DONE = "files.json"  # generate_files: the finished files of a generated variant
_CNS = re.compile(r"^cns_m([0-9]+(?:\.[0-9]+)?)$")


def resolve_variant(name: str) -> tuple[str, dict[str, float]]:
    """(PDE system, parameters) of a variant: one of VARIANTS, or ``cns_m<Mach>``."""
    if name in VARIANTS:
        return VARIANTS[name]
    if m := _CNS.match(name):
        return "cns", {"M": float(m.group(1))}
    raise ValueError(f"system {name!r}: unknown; choose from {sorted(VARIANTS)} or cns_m<Mach>")


def variant_seed(seed: int, name: str, split: str) -> int:
    """A distinct, stable integer seed per (base seed, variant, split)."""
    resolve_variant(name)
    k = sorted(VARIANTS).index(name) if name in VARIANTS else 100 + zlib.crc32(name.encode()) % 900
    return 1_000_003 * seed + 1_000 * k + SPLITS[split]


def system_info(name: str) -> dict[str, Any]:
    """Field names, embedding slots and boundary of a variant (JSON-able)."""
    from scifm.pde import get_system

    spec = get_system(resolve_variant(name)[0])
    return {
        "fields": list(spec.field_names),
        "field_index": list(spec.field_index),
        "periodic": spec.periodic,
    }


def simulate_variant(
    name: str,
    n: int,
    *,
    res: int,
    n_frames: int,
    seed: int,
    device: str | torch.device = "cpu",
    t_end: float | None = None,
    **params: float,
):
    """Trajectories of variant ``name`` (extra ``params`` override its physics).

    ``t_end`` defaults to the system's PDEBench time span.
    """
    from scifm.pde import simulate

    system, fixed = resolve_variant(name)
    return simulate(
        system,
        n,
        res=res,
        n_frames=n_frames,
        seed=seed,
        device=device,
        t_end=t_end,
        params={**fixed, **params},
    )


MACH_KEYS = ("M", "Mach", "mach", "Ma", "mach_number")  # PDEBench attrs, Well scalars


def variant_of(info: PDEFile, *, strict: bool = True) -> str:
    """The variant a file holds: its system, and for CNS its Mach number (``cns_m0.1``).

    The Mach number comes from the file's attributes or Well scalars (``MACH_KEYS``) or a
    PDEBench file name (``_M0.1_``). A CNS file without one is refused when ``strict`` (the
    error says how to name it), else called plain ``cns``.
    """
    if info.system != "cns":
        return info.system
    for key in MACH_KEYS:
        if key in info.params:
            mach = float(f"{info.params[key]:.6g}")  # float32 attributes: 0.1 not 0.10000000149
            return f"cns_m{mach}"
    if not strict:
        return "cns"
    raise FormatError(
        f"{info.path}: compressible NS data without a Mach number (no attribute or scalar "
        f"{'/'.join(MACH_KEYS)} with one value for the file, and no _M<value>_ in its name); "
        f"name its variant: cns_m<Mach>={info.path}"
    )


def memory_datasets(
    fields: Mapping[str, torch.Tensor], n_frames: int, systems: Mapping[str, dict] | None = None
) -> dict[str, TrajectoryWindows]:
    """Windows of in-memory trajectories {variant: (N, F, C, H, W)}.

    ``systems`` may override a variant's ``field_index``/``periodic`` (fine-tuning slots).
    """
    out = {}
    for name, f in fields.items():
        info = {**system_info(name), **(systems or {}).get(name, {})}
        out[name] = TrajectoryWindows(
            f,
            system=name,
            n_ctx=n_frames,
            field_index=info["field_index"],
            periodic=info["periodic"],
        )
    return out


def file_datasets(
    paths: Sequence[str | Path],
    *,
    n_frames: int,
    res: int | None = None,
    frames: int | None = None,
    systems: Mapping[str, dict] | None = None,
) -> dict[str, Dataset]:
    """Lazy windows of PDEBench/Well files or directories, one data set per variant.

    An entry ``NAME=PATH`` puts PATH's files in variant NAME (checked against what they
    hold); otherwise a file's variant is ``variant_of`` it. Files are brought to ``res``
    and ``frames`` by the rule of ``scifm.pde.filewindows``. Every file is scanned before
    anything is read, so bad input fails fast with the file named.
    """
    if not paths:
        raise FormatError("no data files given: expected PDEBench or Well files or directories")
    groups: dict[str, list[PDEFile]] = {}
    seen: dict[Path, str] = {}  # a file given twice would train twice as often, unseen
    for entry in map(str, paths):
        name, sep, path = entry.partition("=")
        if not sep:
            name, path = "", entry
        for p in find_files([path]):
            key = Path(p).resolve()
            if key in seen:
                raise FormatError(f"{p}: given twice (in {seen[key]!r} and {entry!r}); "
                                  "each training file is read once")  # fmt: skip
            seen[key] = entry
            info = scan_file(p)
            variant = name or variant_of(info)
            want = resolve_variant(variant)[0] if name else info.system
            if info.system != want:
                raise FormatError(
                    f"{p}: holds {info.system} data; expected {want} data for {variant!r}"
                )
            groups.setdefault(variant, []).append(info)
    out: dict[str, Dataset] = {}
    for name, group in groups.items():
        index = (systems or {}).get(name, {}).get("field_index")  # fine-tuning slots
        kw = {"n_ctx": n_frames, "res": res, "frames": frames, "field_index": index}
        out.update(group_windows({name: group}, **kw))
    return out


def generate_files(
    systems: Sequence[str],
    data_dir: str | Path,
    *,
    n: int,
    res: int,
    frames: int,
    seed: int,
    fmt: str = "pdebench",
    device: str | torch.device = "cpu",
) -> dict[str, list[Path]]:
    """Simulate ``n`` training trajectories per variant into files (``scifm.pde.generate``).

    Each variant goes to ``data_dir/<variant>_r<res>_f<frames>_n<n>_s<seed>_<fmt>``; a
    second call with the same settings reuses (or finishes) what is there.
    """
    from scifm.pde.generate import GenerateRequest, generate

    out = {}
    for name in systems:
        system, params = resolve_variant(name)
        req = GenerateRequest(
            system=system,
            n=n,
            res=res,
            n_frames=frames,
            fmt=fmt,
            seed=variant_seed(seed, name, "train"),
            params=dict(params),
        )
        where = Path(data_dir) / f"{name}_r{res}_f{frames}_n{n}_s{seed}_{fmt}"
        done = where / DONE
        if done.is_file():  # merged PDEBench files drop their chunks: do not simulate again
            paths = [where / p for p in json.loads(done.read_text())]
            if all(p.is_file() for p in paths):
                out[name] = paths
                continue
        out[name] = generate(req, where, device=device, progress=False)
        tmp = done.with_name(done.name + ".tmp")
        tmp.write_text(json.dumps([str(p.relative_to(where)) for p in out[name]]))
        os.replace(tmp, done)
    return out
