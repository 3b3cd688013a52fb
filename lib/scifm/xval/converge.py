"""Training to convergence with learning curves: the fair xVal-vs-digits comparison (issue 15).

A run trains in chunks of ``eval_every`` steps at a constant learning rate after
warmup (so a plateau means the model stopped learning, not that a schedule ran
out) and after every chunk records a learning-curve point: training steps and
training tokens so far, the validation loss, and the test metrics of every
split. It stops when the validation loss has plateaued -- no ``plateau_rel``
(1 %) improvement of its best value over the last ``plateau_window`` (20 %) of
the steps, a window of at least ``plateau_points`` curve points -- or at
``max_steps``, whichever comes first. Everything lives in the
run directory (``checkpoint/``, ``curve.jsonl``, ``status.json``); calling
``converge`` again resumes where a killed run stopped, bit for bit.

The validation set (for the stopping rule) and the test sets (for reporting)
share no text with the training set or with each other (``tasks.held_out``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from scifm.core import ConfigMixin, TrainConfig, train
from scifm.core.plateau import checkpoint_step, plateaued, read_curve
from scifm.xval.config import XvalConfig
from scifm.xval.data import batches, collate, encode_sample
from scifm.xval.evaluate import metrics, predict
from scifm.xval.model import PAD_ID
from scifm.xval.tasks import Sample, TaskConfig, generate
from scifm.xval.train import Trained, prepare, xval_loss
from scifm.xval.userdata import DataConfig, Line, data_config, samples_of, split_lines

CURVE, STATUS = "curve.jsonl", "status.json"
CURVE_METRICS = ("r2", "r2_valid", "mse", "exact", "invalid_rate", "outlier_rate")


@dataclass(frozen=True)
class ConvergeConfig(ConfigMixin):
    max_steps: int = 4000  # budget: 10x the 400 steps x 64 samples of the first benchmark
    eval_every: int = 100  # steps per chunk = between learning-curve points
    min_steps: int = 1000  # no plateau verdict before this many steps
    plateau_window: float = 0.2  # the last 20 % of the steps ...
    plateau_rel: float = 0.01  # ... must lower the best validation loss by 1 %, else: plateau
    plateau_points: int = 3  # ... and hold this many curve points (one noisy point is no trend)
    batch_size: int = 64  # samples per step
    lr: float = 1e-3  # constant after warmup
    warmup_steps: int = 50  # linear warmup

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"max_steps": 30, "eval_every": 10, "min_steps": 20, "batch_size": 16,
                 "warmup_steps": 2, "plateau_points": 1},
        "study": {},
    }  # fmt: skip

    def __post_init__(self) -> None:
        for name in ("max_steps", "eval_every", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"ConvergeConfig.{name}={getattr(self, name)}: must be >= 1")
        if not 0 < self.plateau_window < 1 or not 0 <= self.plateau_rel < 1:
            raise ValueError("ConvergeConfig: need 0 < plateau_window < 1, 0 <= plateau_rel < 1")


@dataclass(frozen=True)
class Study:
    """Training, validation and test samples of one task (built-in or from a file)."""

    spec: TaskConfig | DataConfig
    train: list[Sample]
    val: list[Sample]
    tests: dict[str, list[Sample]]  # split name -> samples


def task_study(task: TaskConfig, seed: int, *, n_val: int = 256, test_seed: int = 12345) -> Study:
    """Training samples of ``seed``; test splits then validation, none sharing a text."""
    train_s = generate(task, task.n_train, seed)
    seen = {s.text for s in train_s}
    splits = ("test", "interp", "extrap") if task.task in ("ood", "orbits") else ("test",)
    tests = {}
    for split in splits:
        tests[split] = generate(task, task.n_test, test_seed, split, exclude=frozenset(seen))
        seen |= {s.text for s in tests[split]}
    val = generate(task, n_val, test_seed + 1 + seed, "test", exclude=frozenset(seen))
    return Study(task, train_s, val, tests)


def lines_study(lines: Sequence[Line], *, fmt: str, seed: int, source: str = "") -> Study:
    """Rows split 70/10/20 into train/validation/test *by row*; each number masked in turn."""
    rest, test = split_lines(lines, 0.2, seed)
    train_l, val = split_lines(rest, 0.125, seed + 1)
    spec = data_config(train_l, fmt=fmt, split_seed=seed, source=source)
    return Study(spec, samples_of(train_l, "all"), samples_of(val, "all"),
                 {"test": samples_of(test, "all")})  # fmt: skip


@torch.no_grad()
def validation_loss(trained: Trained, items: Sequence, batch_size: int = 256) -> float:
    """Mean training loss (token CE + number MSE) over encoded validation items."""
    model = trained.model.eval()
    dev = next(model.parameters()).device
    total, n = 0.0, 0
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        batch = {k: v.to(dev) for k, v in collate(chunk).items()}
        loss, _ = xval_loss(model, batch)
        total, n = total + float(loss) * len(chunk), n + len(chunk)
    return total / max(n, 1)


def converge(
    study: Study,
    config: XvalConfig,
    cc: ConvergeConfig,
    out_dir: str | Path,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train ``config`` on ``study`` until plateau or budget; returns ``status.json``'s content."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / STATUS).exists():
        status = json.loads((out / STATUS).read_text())
        if status.get("done"):
            return status
    trained, items = prepare(study.train, study.spec, config, seed)
    trained.info["batch_size"] = cc.batch_size
    source = batches(items, cc.batch_size, seed=seed)
    lengths = np.array([int((it.ids != PAD_ID).sum()) for it in items])
    val_items = [encode_sample(s, config.tokenizer, trained.scaler, config.mode) for s in study.val]
    start = checkpoint_step(out)
    stored = read_curve(out / CURVE)
    curve = [r for r in stored if r["step"] <= start]
    if len(stored) > len(curve) and log is not None:  # never a curve without its weights
        why = "there is no checkpoint: restarting from step 0, curve dropped"
        if start:
            why = f"the checkpoint is at step {start}: resuming there, later points dropped"
        log(f"{out.name}: curve.jsonl reaches step {stored[-1]['step']} but {why}")
    (out / CURVE).write_text("".join(json.dumps(r) + "\n" for r in curve))
    step = curve[-1]["step"] if curve else 0
    tokens = curve[-1]["tokens"] if curve else 0
    wall = curve[-1]["train_seconds"] if curve else 0.0
    reason = ""
    while not reason:
        end = min(step + cc.eval_every, cc.max_steps)
        tcfg = TrainConfig(
            steps=end, lr=cc.lr, warmup_steps=cc.warmup_steps, min_lr_ratio=1.0,
            log_every=cc.eval_every, seed=seed, progress=False,
        )  # fmt: skip
        t0 = time.perf_counter()
        res = train(trained.model, xval_loss, source, tcfg, device=device, out_dir=out,
                    model_config=config, extra=trained.extra)  # fmt: skip
        wall += time.perf_counter() - t0
        for s in range(step, end):
            tokens += int(lengths[source.indices(s, 0)].sum())
        step = end
        point = {
            "step": step, "tokens": tokens, "train_seconds": wall,
            "train_loss": res.history[-1]["loss"] if res.history else float("nan"),
            "val_loss": validation_loss(trained, val_items),
        }  # fmt: skip
        for split, samples in study.tests.items():
            m = metrics(predict(trained, samples))
            point.update({f"{split}.{k}": m[k] for k in CURVE_METRICS})
        curve.append(point)
        with open(out / CURVE, "a") as f:
            f.write(json.dumps(point) + "\n")
        if log is not None:
            log(f"{out.name} step {step}: val_loss {point['val_loss']:.4g} "
                f"test r2 {point.get('test.r2', float('nan')):.3f}")  # fmt: skip
        if step >= cc.min_steps and plateaued(
            curve, cc.plateau_window, cc.plateau_rel, cc.plateau_points
        ):
            reason = "plateau"
        elif step >= cc.max_steps:
            reason = "budget"
    status = {
        "done": True, "reason": reason, "step": step, "tokens": tokens, "train_seconds": wall,
        "tokens_per_sample": trained.info["tokens_per_sample"],
        "n_params": trained.info["n_params"], "vocab_size": config.vocab_size,
        "config": config.to_dict(), "converge": cc.to_dict(), "seed": seed,
    }  # fmt: skip
    (out / STATUS).write_text(json.dumps(status, indent=1) + "\n")
    return status
