"""The shipped MPP models the physics page offers, each described from its own record.

``assets/mpp/avit_small_64`` (the evidence model, issue 13: 64^2, patch 8, pretrained without
compressible NS) is the default; ``assets/mpp/avit_small`` (the 32^2 demo trained on all five
systems) stays selectable because it is the only shipped model that has learned compressible
NS. Each choice carries what a run needs (grid, frame spacing), a one-line description written
from the checkpoint's card or data record, the training seeds (``scifm.mpp.heldout``) and its
results file. Reading a choice reads only ``config.json``, never the weights. Models and the
first rollout of each are loaded and computed once per process and shared by every session
(``load_surrogate``, ``first_run``).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from scifm.core.checkpoint import read_record
from scifm.core.paths import assets_dir, results_dir
from scifm.mpp.demo import Comparison, compare
from scifm.mpp.experiment import load_surrogate as _load_surrogate
from scifm.mpp.heldout import card_training_seeds, dataconfig_training_seeds

EVIDENCE = "avit_small_64"
DEMO = "avit_small"
LABELS = {
    EVIDENCE: "AViT-S 64² (evidence model)",
    DEMO: "AViT-S 32² (demo, all five systems incl. compressible NS)",
}
NAMES = {"swe": "shallow water", "diffreact": "diffusion-reaction", "ins": "incompressible NS",
         "cns_m0.1": "compressible NS M=0.1", "cns_m1.0": "compressible NS M=1.0"}  # fmt: skip


@dataclass(frozen=True)
class ModelChoice:
    label: str  # what the page's Model select shows
    path: Path  # checkpoint folder (scifm.mpp.experiment.load_surrogate)
    res: int  # grid side the model was trained on; the page's runs use it
    frames_per_span: float  # frame spacing it saw: frames per PDEBench time span
    about: str  # one line for the page, from the checkpoint's own record
    benchmark: Path  # its stored results (scifm.dashboards.mpp_results)
    seeds: dict[str, dict[int, str]] = field(default_factory=dict)  # variant -> training seeds
    ranges: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # card's ranges


def _systems(names) -> str:
    return ", ".join(NAMES.get(s, s) for s in names)


def card_settings(card: dict) -> dict:
    """What a run needs from a model card (``scifm.mpp.card``): the grid side ``res``, the
    frame spacing ``frames_per_span``, the training ``seeds`` and the parameter ``ranges``."""
    return {
        "res": int(card["resolution"]),
        "frames_per_span": float(card["frames"]) - 1,
        "seeds": card_training_seeds(card),
        "ranges": {v: dict(d.get("parameter_ranges", {})) for v, d in card["data"].items()},
    }


def evidence_choice(path: Path) -> ModelChoice:
    """The 64^2 model, described from its card (``extra["card"]``)."""
    card = read_record(path)["extra"]["card"]
    data = card["data"]
    n_traj = {int(d["trajectories"]) for d in data.values()}
    more = sorted({(int(m["trajectories"]), int(m["frames"]))
                   for d in data.values() for m in d.get("more") or []})  # fmt: skip
    longer = "".join(f", plus {n} of {f} frames at the same spacing" for n, f in more)
    about = (
        f"**{LABELS[EVIDENCE]}**: {card['resolution']}² grids, patch {card['patch_size']} = "
        f"{card['tokens_per_frame']} tokens a frame, {card['model']['parameters']:,} parameters; "
        f"pretrained {card['steps']:,} steps (batch {card['batch_size']}) on {_systems(data)} "
        f"({'/'.join(map(str, sorted(n_traj)))} trajectories each{longer}). Compressible NS "
        "was held out of pretraining for the transfer study, so it is not offered here; the "
        "32² demo model has it."
    )
    return ModelChoice(label=LABELS[EVIDENCE], path=path, about=about,
                       benchmark=results_dir() / "mpp_evidence.json",
                       **card_settings(card))  # fmt: skip


def demo_choice(path: Path) -> ModelChoice:
    """The 32^2 demo model, described from its data record (``extra["data"]``)."""
    record = read_record(path)
    data, cfg = record["extra"]["data"], record["config"]
    steps = record["extra"].get("final", {}).get("step", "?")
    tokens = (int(data["res"]) // int(cfg["patch_size"])) ** 2
    about = (
        f"**{LABELS[DEMO]}**: {data['res']}² grids, patch {cfg['patch_size']} = {tokens} tokens "
        f"a frame; trained {steps} steps on {_systems(data['systems'])} ({data['n_traj']} "
        "trajectories each). A small demo, not the evidence model: its figures are in "
        "benchmarks/results/mpp.md."
    )
    return ModelChoice(
        LABELS[DEMO], path, int(data["res"]), float(data["sim_frames"]) - 1, about,
        results_dir() / "mpp.json", dataconfig_training_seeds(data),
    )  # fmt: skip


def shipped_choices(root: Path) -> dict[str, ModelChoice]:
    """label -> ModelChoice of the shipped models under ``root`` (the default first); read
    once per process (``read_record`` hashes the weights), so a page session stays cheap."""
    return {c.label: c for c in _read_choices(str(root))}


@lru_cache(maxsize=4)
def _read_choices(root: str) -> tuple[ModelChoice, ...]:
    out = []
    for name, make in ((EVIDENCE, evidence_choice), (DEMO, demo_choice)):
        if (Path(root) / name / "config.json").exists():
            out.append(make(Path(root) / name))
    return tuple(out)


def default_assets() -> Path:
    """The shipped MPP model's folder (``SCIFM_MPP_ASSETS`` overrides)."""
    return Path(os.environ.get("SCIFM_MPP_ASSETS", assets_dir() / "mpp"))


@lru_cache(maxsize=4)
def load_surrogate(path: str):
    """(model, systems) of a checkpoint (or a run folder holding ``checkpoint/``), once per
    process: every session shares the model (it is only read)."""
    return _load_surrogate(path, "cpu")


_FIRST_RUNS: dict[tuple, tuple[torch.nn.Module, Comparison]] = {}
_FIRST_LOCK = threading.Lock()


def first_run(model: torch.nn.Module, system: str, *, field_index=None, **kw) -> Comparison:
    """``compare(model, system, **kw)`` once per process and model: every viewer of the same
    model opens on the same rollout (the cache holds the model, so its id stays its own)."""
    key = (id(model), system, tuple(field_index or ()), *sorted(kw.items()))
    with _FIRST_LOCK:
        if key not in _FIRST_RUNS:
            res = compare(model, system, field_index=field_index, **kw)
            if len(_FIRST_RUNS) >= 8:
                _FIRST_RUNS.pop(next(iter(_FIRST_RUNS)))
            _FIRST_RUNS[key] = (model, res)
        return _FIRST_RUNS[key][1]
