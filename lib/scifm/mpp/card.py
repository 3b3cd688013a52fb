"""The model card of a shipped MPP checkpoint: what it was trained on, how, and for how long.

A card is plain JSON, kept in the checkpoint's ``extra["card"]`` and in
``assets/mpp/MANIFEST.json`` under ``cards``. It holds, per training variant, the data
(each folder's ``generate.json``: system, trajectories, resolution, frames, time span,
seed, parameters; a variant trained on more folders lists the others under ``more``), the
frame spacing and resolution the model saw (files are brought to
the run's ``res``/``sim_frames`` by ``scifm.pde.filewindows``' rule), and the parameter
ranges the solvers sample (``scifm.pde.parameter_ranges``); then resolution, patch and
token count, steps, batch, recipe, wall time and the learning curve. ``scifm mpp
rollout/evaluate --file`` check a user's file against it (``scifm.mpp.userfile``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scifm.core.report import repo_path
from scifm.pde.filewindows import find_files, group_steps, scan_file
from scifm.pde.formats import FormatError
from scifm.pde.generate import MANIFEST as GENERATE_JSON
from scifm.pde.simulate import parameter_ranges
from scifm.pde.systems import get_system

MAX_CURVE_POINTS = 100  # the stored learning curve is downsampled to at most this many records
CURVE_KEYS = ("loss", "nrmse", "lr")  # metrics kept per learning-curve point
MANIFEST = "MANIFEST.json"


def wall_time(records: Sequence[Mapping[str, float]], samples_per_step: int) -> float:
    """Seconds of training: sum over logged intervals of steps x samples / samples_per_s.

    ``samples_per_s`` is measured between two log records (data loading, the optimizer and
    logging included), so this is the wall time of the steps that made the checkpoint;
    steps a crashed run repeated after resuming are counted once.
    """
    total, prev = 0.0, 0
    for rec in records:
        sps = float(rec.get("samples_per_s", 0.0))
        if sps <= 0:
            raise FormatError(f"metrics record of step {rec['step']}: samples_per_s={sps}")
        total += (int(rec["step"]) - prev) * samples_per_step / sps
        prev = int(rec["step"])
    return total


def learning_curve(
    records: Sequence[Mapping[str, float]], max_points: int = MAX_CURVE_POINTS
) -> dict[str, list]:
    """Columns {step, loss, nrmse, lr} of <= ``max_points`` evenly spaced records (last kept)."""
    n = len(records)
    if n > max_points:
        idx = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
        records = [records[i] for i in idx]
    out: dict[str, list] = {"step": [int(r["step"]) for r in records]}
    for key in CURVE_KEYS:
        if all(key in r for r in records):
            out[key] = [float(f"{float(r[key]):.6g}") for r in records]
    return out


def curve_records(curve: Mapping[str, Sequence]) -> list[dict[str, float]]:
    """A card's ``learning_curve`` columns back as records {step, loss, nrmse, lr}."""
    keys = [k for k in CURVE_KEYS if k in curve]
    return [{"step": int(s), **{k: float(curve[k][i]) for k in keys}}
            for i, s in enumerate(curve.get("step", []))]  # fmt: skip


def _entries(files: Sequence[str]) -> list[tuple[str, Path]]:
    """(variant or '', path) of each ``[NAME=]PATH`` a training run was given."""
    out = []
    for entry in files:
        name, sep, path = entry.partition("=")
        out.append((name, Path(path)) if sep else ("", Path(entry)))
    return out


def _generate_json(path: Path) -> dict[str, Any] | None:
    """The ``generate.json`` of the folder ``scifm pde generate`` wrote ``path`` into, if any."""
    for d in [path, *path.parents][:5]:  # Well trees put files 3 levels below it
        f = d / GENERATE_JSON
        if d.is_dir() and f.is_file():
            return json.loads(f.read_text())
    return None


def _variant_data(
    system: str, gen: Mapping[str, Any], dt: float | None, res: int, observed: Mapping
) -> dict[str, Any]:
    return {
        "system": system,
        "trajectories": gen.get("n"),
        "resolution": gen.get("res"),
        "frames": gen.get("n_frames"),
        "time_span": [0.0, gen["t_end"]] if gen.get("t_end") is not None else None,
        "seed": gen.get("seed"),
        "params": dict(gen.get("params", {})),
        "model_resolution": res,
        "frame_spacing": dt,  # time between the frames the model saw (after the frame stride)
        "parameter_ranges": {k: list(v) for k, v in observed.items()},
    }


def data_from_files(files: Sequence[str], res: int, frames: int) -> dict[str, dict[str, Any]]:
    """Per-variant training data of a run given ``files`` (``extra["files"]`` of a checkpoint).

    With a ``generate.json`` (files made by ``scifm pde generate``) the ranges are those the
    solver samples for its parameters; without one, the ranges seen in the files' attributes.
    A variant trained on several folders (e.g. PDEBench-span files and longer runs at the same
    frame spacing) is described by its first, with the others under ``more``; the frame
    stride follows the data set's rule (``scifm.pde.filewindows.group_steps``).
    """
    from scifm.mpp.data import variant_of

    entries: dict[str, list[tuple[Path, list]]] = {}
    for name, path in _entries(files):
        infos = [scan_file(p) for p in find_files([path])]
        entries.setdefault(name or variant_of(infos[0]), []).append((path, infos))
    out: dict[str, dict[str, Any]] = {}
    for variant, group in entries.items():
        steps = group_steps([i for _, infos in group for i in infos], res, frames)
        records, k = [], 0
        for path, infos in group:
            records.append(_folder_data(path, infos, steps[k], res))
            k += len(infos)
        out[variant] = {**records[0], **({"more": records[1:]} if len(records) > 1 else {})}
    return out


def _folder_data(path: Path, infos: list, stride: int, res: int) -> dict[str, Any]:
    """The card's record of one training folder whose frames the model saw ``stride`` apart."""
    system = infos[0].system
    gen = _generate_json(path)
    dt = infos[0].dt * stride if infos[0].dt is not None else None
    if gen is not None:
        spec = get_system(system)  # a request leaves None what it took from the system
        defaults = {"res": spec.res, "n_frames": spec.n_frames, "t_end": spec.t_end}
        gen = {**gen, **{k: v for k, v in defaults.items() if gen.get(k) is None}}
        ranges = parameter_ranges(system, gen.get("params", {}))
        dt = gen["t_end"] / (gen["n_frames"] - 1) * stride
    else:
        gen = {"n": sum(i.n_traj for i in infos), "res": infos[0].nx,
               "n_frames": infos[0].n_frames}  # fmt: skip
        ranges = {}
        for i in infos:
            for k, (lo, hi) in i.ranges.items():
                a, b = ranges.get(k, (lo, hi))
                ranges[k] = (min(a, lo), max(b, hi))
    d = _variant_data(system, gen, dt, res, ranges)
    d["source"] = repo_path(path)  # repo-relative inside the checkout: a card read elsewhere
    d["generate_json"] = gen is not None and "seed" in gen
    return d


def data_from_config(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-variant training data of a run simulated in memory from a ``DataConfig`` dict."""
    from scifm.mpp.data import resolve_variant, variant_seed

    out = {}
    for variant in data["systems"]:
        system, params = resolve_variant(variant)
        t_end = get_system(system).t_end
        gen = {"n": data["n_traj"], "res": data["res"], "n_frames": data["sim_frames"],
               "t_end": t_end, "seed": variant_seed(data["seed"], variant, "train"),
               "params": params}  # fmt: skip
        dt = t_end / (data["sim_frames"] - 1)
        out[variant] = _variant_data(system, gen, dt, data["res"], parameter_ranges(system, params))
        out[variant]["source"] = "simulated in memory (scifm.mpp.experiment.make_fields)"
        out[variant]["generate_json"] = False
    return out


def load_card(ckpt: str | Path) -> dict[str, Any] | None:
    """A checkpoint's card: its ``extra["card"]``, else its entry in ``../MANIFEST.json``."""
    from scifm.core.checkpoint import read_record

    path = Path(ckpt)
    card = read_record(path).get("extra", {}).get("card")
    if card:
        return card
    manifest = path.parent / MANIFEST
    if manifest.is_file():
        try:
            cards = json.loads(manifest.read_text()).get("cards", {})
        except json.JSONDecodeError:
            return None
        return cards.get(path.name)
    return None
