"""The plateau rule of the long runs: has a validation curve stopped improving?

"Plateau" (issue 14, and the xVal convergence study): the best value of the last
``window`` (20 %) of the steps does not improve on the best value before it by
``rel`` (1 %) of that value, and that window holds at least ``points`` curve points
(one noisy point is no trend). Losses improve downwards; recall and R^2 upwards
(``higher_is_better``).

``train_evaluated`` runs ``core.train`` in chunks with a held-out evaluation after each
(appended to ``eval.jsonl``) and stops at the plateau of a ``PlateauRule``; everything
resumes from the run folder.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scifm.core.batches import BatchSource
from scifm.core.checkpoint import TRAINER_JSON, load_checkpoint
from scifm.core.resume import CHECKPOINT_DIR, check_same_run, read_step_records
from scifm.core.train import LossFn, StepCallback, TrainConfig, TrainResult, train


def _split(curve: Sequence[Mapping[str, float]], window: float) -> tuple[list, list]:
    """The records before the last ``window`` fraction of the steps, and those in it."""
    cut = curve[-1]["step"] * (1.0 - window)
    return [r for r in curve if r["step"] <= cut], [r for r in curve if r["step"] > cut]


def plateaued(
    curve: Sequence[Mapping[str, float]],
    window: float,
    rel: float,
    points: int = 1,
    *,
    key: str = "val_loss",
    higher_is_better: bool = False,
) -> bool:
    """True when ``curve`` (records with ``"step"`` and ``key``, in step order) has plateaued.

    No verdict (False) on an empty curve, or while nothing lies before the window or the
    window holds fewer than ``points`` records.
    """
    if not 0 < window < 1 or not 0 <= rel < 1:
        raise ValueError(f"plateaued: need 0 < window < 1 and 0 <= rel < 1, got {window}, {rel}")
    if not curve:
        return False
    before, after = ([float(r[key]) for r in part] for part in _split(curve, window))
    if not before or len(after) < max(points, 1):
        return False
    if higher_is_better:
        best = max(before)
        return max(after) < best + rel * abs(best)
    best = min(before)
    return min(after) > best - rel * abs(best)


@dataclass(frozen=True)
class PlateauRule:
    """Which validation figure the stop watches, and the rule's constants (issue 14)."""

    key: str  # the evaluation metric watched (e.g. "val_loss", "recall@10")
    higher_is_better: bool = False  # recall, R^2: True; losses: False
    window: float = 0.2  # the last 20 % of the steps ...
    rel: float = 0.01  # ... must improve the best value by 1 %, else: plateau
    points: int = 3  # ... and hold this many evaluations (one noisy point is no trend)
    min_steps: int = 0  # no verdict before this step

    def reached(self, curve: Sequence[Mapping[str, float]]) -> bool:
        """The rule's verdict on ``curve`` (evaluation records in step order)."""
        if not curve or curve[-1]["step"] < self.min_steps:
            return False
        return plateaued(curve, self.window, self.rel, self.points, key=self.key,
                         higher_is_better=self.higher_is_better)  # fmt: skip

    def verdict(self, curve: Sequence[Mapping[str, float]]) -> str:
        """``reached`` in words: "plateau", "still improving", or why there is no verdict."""
        if self.reached(curve):
            return "plateau"
        if not curve:
            return "no evaluation yet"
        if curve[-1]["step"] < self.min_steps:
            return f"no verdict before step {self.min_steps}"
        before, after = _split(curve, self.window)
        if len(after) < max(self.points, 1) or not before:
            return (f"no verdict: {len(after)} evaluation(s) in the last {self.window:.0%} of "
                    f"the steps, the rule needs {self.points}")  # fmt: skip
        return "still improving"


@dataclass
class EvaluatedRun:
    """What ``train_evaluated`` returns: the training result, the curve and why it ended."""

    result: TrainResult  # steps done, this call's logged records, the checkpoint
    curve: list[dict[str, Any]]  # every evaluation of the run (resumed ones included)
    reason: str  # "plateau", "steps" (cfg.steps done) or "stop_at" (cut there, resumable)


def read_curve(path: Path, upto: float = math.inf) -> list[dict[str, Any]]:
    """Evaluations up to ``upto`` (the checkpoint's step), one per step (the last written);
    none when the file does not exist yet."""
    return read_step_records(path, up_to=upto) if path.exists() else []


def trainer_state(out: Path) -> dict[str, Any]:
    """The trainer state (step, LR schedule, ...) of run folder ``out``'s checkpoint; empty
    when it has none."""
    state = out / CHECKPOINT_DIR / TRAINER_JSON
    return json.loads(state.read_text()) if state.exists() else {}


def checkpoint_step(out: Path) -> int:
    """The step of the run folder ``out``'s checkpoint, 0 when it has none."""
    return int(trainer_state(out).get("step", 0))


def run_curve(out_dir: str | Path, eval_file: str = "eval.jsonl") -> list[dict[str, Any]]:
    """The evaluations of a run folder that belong to its checkpoint, one per step: what a
    resumed run keeps (records written after the last checkpoint are dropped)."""
    out = Path(out_dir)
    return read_curve(out / eval_file, checkpoint_step(out))


def train_evaluated(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batches: BatchSource,
    cfg: TrainConfig,
    evaluate: Callable[[torch.nn.Module], dict[str, float]],
    *,
    out_dir: str | Path | None,
    eval_every: int = 0,
    rule: PlateauRule | None = None,
    eval_file: str = "eval.jsonl",
    callback: StepCallback | None = None,
    **train_kwargs: Any,
) -> EvaluatedRun:
    """``core.train`` in chunks of ``eval_every`` steps, ``evaluate(model)`` after each.

    Each chunk is one ``train`` call cut at ``TrainConfig.stop_at`` (the schedule spans
    ``cfg.steps``), so every evaluation belongs to a saved checkpoint: each record
    ``{"step", **metrics}`` goes to ``out_dir/eval_file`` and ``callback`` (with
    ``"stage": "eval"``). With a ``rule`` the run stops early once the curve has plateaued.
    A rerun resumes at the checkpoint, keeps the evaluations up to it and stops at once
    if they had plateaued. ``eval_every=0`` evaluates at the end only. ``out_dir=None``
    keeps the chunks' checkpoints in a temporary folder. ``train_kwargs`` go to ``train``.
    """
    if eval_every < 0:
        raise ValueError(f"eval_every={eval_every}: expected >= 0 (0: only at the end)")
    if out_dir is None:
        with tempfile.TemporaryDirectory(prefix="scifm-eval-") as tmp:
            run = train_evaluated(model, loss_fn, batches, cfg, evaluate, out_dir=tmp,
                                  eval_every=eval_every, rule=rule, eval_file=eval_file,
                                  callback=callback, **train_kwargs)  # fmt: skip
            run.result.checkpoint = None
            return run
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = step = checkpoint_step(out)
    curve = read_curve(out / eval_file, step)
    (out / eval_file).write_text("".join(json.dumps(r) + "\n" for r in curve))
    end = cfg.stop_at or cfg.steps
    result = TrainResult(step=step, checkpoint=out / CHECKPOINT_DIR, resumed_from=start)
    if step:  # the checkpoint's weights, also when no step is left to train (a finished run)
        ck = load_checkpoint(out / CHECKPOINT_DIR)
        config = train_kwargs.get("model_config") or getattr(model, "config", None)
        check_same_run(out, ck["record"], config, train_kwargs.get("extra"))
        model.load_state_dict(ck["model"])
    if step and (not curve or curve[-1]["step"] != step):  # killed between save and evaluation
        curve.append(_evaluate(model, evaluate, step, out / eval_file, callback))
    while True:
        if rule is not None and rule.reached(curve):
            reason = "plateau"
            break
        if step >= end:
            reason = "steps" if end == cfg.steps else "stop_at"
            break
        nxt = min((step // eval_every + 1) * eval_every, end) if eval_every else end
        res = train(model, loss_fn, batches, cfg.replace(stop_at=nxt), out_dir=out,
                    callback=callback, **train_kwargs)  # fmt: skip
        result.history += res.history
        step = result.step = res.step
        curve.append(_evaluate(model, evaluate, step, out / eval_file, callback))
    result.stopped = reason
    return EvaluatedRun(result, curve, reason)


def _evaluate(
    model: torch.nn.Module,
    evaluate: Callable[[torch.nn.Module], dict[str, float]],
    step: int,
    path: Path,
    callback: StepCallback | None,
) -> dict[str, Any]:
    record = {"stage": "eval", "step": step, **evaluate(model)}
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
    if callback is not None:
        callback(record)
    return record
