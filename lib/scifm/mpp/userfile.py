"""A user's own PDEBench or Well file through a pretrained surrogate, checked against its card.

``scifm mpp rollout --file PATH`` and ``scifm mpp evaluate --file PATH`` read the file's
first trajectories lazily (``scifm.pde.FileWindows``), bring them to the model's grid and
frame count by the rule of ``scifm.pde.filewindows`` (integer average-pooling, a frame
stride), and compare the surrogate with persistence on the file's own frames. Before that,
``check_file`` lists what makes the result less trustworthy, one WARNING line each: a grid
pooled from another resolution, another frame spacing, a system the model never saw, or
physical parameters (the file's attributes or Well scalars) outside the card's ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from scifm.pde.filewindows import FileWindows, PDEFile, resample_rule, scan_file, usable_frames
from scifm.pde.formats import FormatError

REL_TOL = 1e-3  # float32 attributes: 0.01 is stored as 0.0099999998; spacing 0.05 vs 0.0500001


@dataclass
class FileCheck:
    """What was learnt about a user's file, how it is brought to the model, and warnings."""

    info: PDEFile
    variant: str  # the file's variant (cns_m<Mach> for CNS)
    res: int  # grid side the model runs at
    frames: int  # frame count the stride rule aims at
    pool: int  # average-pooling factor
    stride: int  # frame stride
    warnings: list[str] = field(default_factory=list)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b), 1e-12)


def _inside(lo: float, hi: float, rng: tuple[float, float]) -> bool:
    a, b = rng
    return (lo >= a or _close(lo, a)) and (hi <= b or _close(hi, b))


def card_view(card: Mapping[str, Any] | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Resolution, frames and per-variant data of a card; without one, the run's DataConfig."""
    if card:
        return {"res": card["resolution"], "frames": card["frames"], "data": card["data"]}
    data = extra.get("data", {})
    systems = extra.get("systems", {})
    return {
        "res": data.get("res"),
        "frames": data.get("sim_frames"),
        "data": {v: {"system": _system_of(v)} for v in systems or data.get("systems", [])},
    }


def _system_of(variant: str) -> str | None:
    from scifm.mpp.data import resolve_variant

    try:
        return resolve_variant(variant)[0]
    except ValueError:  # a name a fine-tuning run chose: its system is not recorded
        return None


def check_file(
    path: str | Path,
    view: Mapping[str, Any],
    *,
    n_ctx: int,
    res: int | None = None,
    frames: int | None = None,
    has_card: bool = True,
    ckpt: str | Path = "CKPT",
) -> FileCheck:
    """Scan ``path`` and compare it with the card ``view`` (``card_view``); bad files raise."""
    from scifm.mpp.data import variant_of

    path = Path(path)
    if path.is_dir():
        raise FormatError(f"{path}: a directory; expected one PDEBench or Well file")
    info = scan_file(path)
    variant = variant_of(info, strict=False)
    card_res = view["res"] or info.nx
    res = res or card_res
    frames = frames or view["frames"] or info.n_frames
    pool, stride = resample_rule(info, res, frames)
    out = FileCheck(info, variant, res, frames, pool, stride)
    w = out.warnings
    if info.nx != res:
        w.append(f"{path}: grid {info.nx}x{info.ny} differs from the model's {res}x{res}: "
                 f"average-pooled by {pool} ({info.nx} -> {res})")  # fmt: skip
    if res != card_res:
        w.append(f"running at {res}x{res}; the model was trained at {card_res}x{card_res}")
    same = {v: d for v, d in view["data"].items() if d.get("system") == info.system}
    if not same:
        trained = ", ".join(sorted(view["data"])) or "unknown"
        w.append(f"{path}: {info.system} data: the model was not trained on {info.system} "
                 f"(trained: {trained}); fine-tune first: scifm mpp finetune --ckpt {ckpt} "
                 f"--system {variant if variant != 'cns' else 'cns_m<Mach>'} --files {path} "
                 "--out RUN")  # fmt: skip
    elif has_card:
        w += _spacing_warnings(path, info, stride, variant, same)
        w += _parameter_warnings(path, info, same)
    n_usable = usable_frames(info, stride)
    if n_usable < n_ctx + 1:
        raise FormatError(
            f"{path}: {n_usable} frames after taking every {stride}-th; the model needs at "
            f"least {n_ctx + 1} ({n_ctx} of context and one to predict)"
        )
    return out


def _spacing_warnings(
    path: Path, info: PDEFile, stride: int, variant: str, same: Mapping[str, Mapping]
) -> list[str]:
    want = same.get(variant, next(iter(same.values()))).get("frame_spacing")
    if want is None:
        return []
    if info.dt is None:
        return [f"{path}: no time coordinate; frame spacing not checked (card: {want:.4g})"]
    got = info.dt * stride
    if _close(got, want):
        return []
    return [f"{path}: frame spacing {got:.4g} (frame stride {stride} over the file's "
            f"{info.dt:.4g}) differs from the card's {want:.4g} for {variant}"]  # fmt: skip


def _parameter_warnings(path: Path, info: PDEFile, same: Mapping[str, Mapping]) -> list[str]:
    """One line naming every file parameter outside all same-system variants' card ranges."""
    outside = []
    for k, (lo, hi) in sorted(info.ranges.items()):
        ranges = [(v, tuple(r["parameter_ranges"][k])) for v, d in same.items()
                  for r in (d, *d.get("more", ()))  # every folder the variant trained on
                  if k in r.get("parameter_ranges", {})]  # fmt: skip
        if ranges and not any(_inside(lo, hi, r) for _, r in ranges):
            val = f"{lo:.4g}" if lo == hi else f"[{lo:.4g}, {hi:.4g}]"
            card = "; ".join(dict.fromkeys(f"{v}: [{a:.4g}, {b:.4g}]" for v, (a, b) in ranges))
            outside.append(f"{k}={val} (card {card})")
    out = []
    if outside:
        out.append(f"{path}: parameters outside the model card's ranges: {', '.join(outside)}")
    if info.nonfinite:  # not in info.ranges: say so rather than check nothing silently
        out.append(f"{path}: parameters holding NaN or inf, not checked against the model "
                   f"card: {', '.join(info.nonfinite)}")  # fmt: skip
    return out


def file_windows(check: FileCheck, n_ctx: int, systems: Mapping[str, dict]) -> FileWindows:
    """Windows of the checked file at the model's grid and frame stride, in its variant's slots."""
    slots = systems.get(check.variant, {})  # else the system's own (a CNS file without M too)
    return FileWindows(
        check.info, n_ctx=n_ctx, res=check.res, frames=check.frames, name=check.variant,
        field_index=slots.get("field_index"), periodic=slots.get("periodic"),
    )  # fmt: skip


def trajectories(ds: FileWindows, n: int) -> torch.Tensor:
    """The first ``n`` trajectories, frame-strided and pooled: (n, F', C, res, res) float32."""
    usable = usable_frames(ds.info, ds.step)
    sel = slice(0, (usable - 1) * ds.step + 1, ds.step)
    out = []
    for i in range(min(n, ds.info.n_traj)):
        x = torch.from_numpy(ds.frames(i, sel).astype("float32"))  # (F', C, X, Y)
        out.append(F.avg_pool2d(x, ds.pool) if ds.pool > 1 else x)
    return torch.stack(out)


def header(check: FileCheck, n_traj: int) -> dict[str, Any]:
    """The JSON fields that say what was read and how it was brought to the model."""
    i = check.info
    return {
        "file": str(i.path), "format": i.fmt, "system": i.system, "variant": check.variant,
        "trajectories": min(n_traj, i.n_traj), "grid": [i.nx, i.ny], "res": check.res,
        "pool": check.pool, "frame_stride": check.stride,
    }  # fmt: skip
