"""Training an xVal (or digit-scheme) model on a task with the shared ``scifm.core.train``.

Loss (Golkar et al. 2023): cross-entropy of the token head on the token targets
plus ``mse_weight`` x MSE of the number head where the target token is ``[NUM]``.
Either term is an exact zero (still in the graph) when the batch has no such
targets -- the reference divides by zero there and gets NaN.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from scifm.core import TrainConfig, TrainResult, train
from scifm.core.train import StepCallback, unwrap
from scifm.xval.config import XvalConfig
from scifm.xval.data import IGNORE, batches, encode_sample, fit_scaler
from scifm.xval.model import Model
from scifm.xval.scaler import ValueScaler
from scifm.xval.tasks import Sample, TaskConfig, generate
from scifm.xval.userdata import DataConfig


def xval_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """Token CE + weighted number MSE; ``batch`` from ``data.collate`` (on the device)."""
    labels, m = batch["labels"], batch["num_mask"]
    select = (labels != IGNORE) | m  # heads run only where there is a target
    logits, numbers = model(batch["ids"], batch["x_num"], select)  # (N, V), (N,)
    labels, m, target = labels[select], m[select], batch["num_target"][select]
    has_label = labels != IGNORE
    zero = logits.sum() * 0.0 + numbers.sum() * 0.0  # keeps the graph when a term is empty
    ce = F.cross_entropy(logits[has_label].float(), labels[has_label]) if has_label.any() else zero
    mse = F.mse_loss(numbers[m].float(), target[m]) if m.any() else zero
    loss = ce + unwrap(model).config.mse_weight * mse
    return loss, {"ce": float(ce.detach()), "mse": float(mse.detach())}


@dataclass
class Trained:
    """A trained model with what is needed to use it."""

    config: XvalConfig
    model: Model
    scaler: ValueScaler
    task: TaskConfig | DataConfig  # a built-in task, or a user's data file (``userdata``)
    result: TrainResult | None = None
    info: dict[str, Any] = field(default_factory=dict)  # tokens/sample, samples/s, ...

    @property
    def extra(self) -> dict[str, Any]:
        """JSON stored in the checkpoint beside the weights."""
        key = "data" if isinstance(self.task, DataConfig) else "task"
        return {"scaler": self.scaler.to_dict(), key: self.task.to_dict(), "info": self.info}


def model_config_for(
    task: TaskConfig | DataConfig, scheme: str, preset: str = "small", **overrides: Any
) -> XvalConfig:
    """The model config for ``task``: exponent range of the task, length of its texts."""
    lo, hi = task.exp_range
    return XvalConfig.preset(preset, scheme=scheme, exp_min=lo, exp_max=hi, **overrides)


def build_model(config: XvalConfig, seed: int) -> Model:
    """``Model(config)`` initialized from ``seed`` without touching the global RNG stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Model(config)


def fit(
    task: TaskConfig,
    config: XvalConfig,
    train_cfg: TrainConfig,
    *,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
    callback: StepCallback | None = None,
) -> Trained:
    """Generate ``task`` data (``seed``), fit the scaler, train ``config``'s model;
    ``callback(record)`` after each logged step (live plots)."""
    samples = generate(task, task.n_train, seed)
    return fit_samples(samples, task, config, train_cfg, batch_size=batch_size, seed=seed,
                       device=device, out_dir=out_dir, callback=callback)  # fmt: skip


def prepare(
    samples: Sequence[Sample], spec: TaskConfig | DataConfig, config: XvalConfig, seed: int
) -> tuple[Trained, list]:
    """Scaler fitted on ``samples``, a fresh model and the encoded items (not trained yet)."""
    scaler = fit_scaler(samples, spec.scaler_kinds)
    tok = config.tokenizer
    items = [encode_sample(s, tok, scaler, config.mode) for s in samples]
    longest = max(len(it.ids) for it in items)
    if longest > config.max_len:
        raise ValueError(
            f"{spec.task!r} data with scheme {config.scheme!r} needs {longest} tokens; "
            f"max_len={config.max_len} (raise it with max_len=...)"
        )
    model = build_model(config, seed)
    info = {
        "tokens_per_sample": float(sum(len(it.ids) for it in items) / len(items)),
        "n_params": sum(p.numel() for p in model.parameters()),
        "seed": seed,
    }
    return Trained(config, model, scaler, spec, None, info), items


def fit_samples(
    samples: Sequence[Sample],
    spec: TaskConfig | DataConfig,
    config: XvalConfig,
    train_cfg: TrainConfig,
    *,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
    callback: StepCallback | None = None,
) -> Trained:
    """Fit the scaler on ``samples`` and train ``config``'s model on them."""
    trained, items = prepare(samples, spec, config, seed)
    trained.info["batch_size"] = batch_size
    trained.info["n_train"] = len(samples)
    source = batches(items, batch_size, seed=seed, accum_steps=train_cfg.accum_steps)
    result = train(
        trained.model, xval_loss, source, train_cfg, device=device, out_dir=out_dir,
        model_config=config, extra=trained.extra, callback=callback,
    )  # fmt: skip
    rates = [r["samples_per_s"] for r in result.history[1:]] or [
        r["samples_per_s"] for r in result.history
    ]
    trained.info["samples_per_s"] = float(sum(rates) / max(len(rates), 1))
    trained.info["final_loss"] = result.history[-1]["loss"] if result.history else float("nan")
    trained.result = result
    return trained


def fit_file(
    path: str | Path,
    scheme: str,
    train_cfg: TrainConfig,
    *,
    fmt: str | None = None,
    target: str = "all",
    val_fraction: float = 0.2,
    preset: str = "small",
    mode: str = "mlm",
    overrides: Sequence[str] = (),
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
) -> tuple[Trained, list[Sample]]:
    """Train on a user's file (``userdata``); returns the model and the validation samples.

    Lines are split by line (``seed``); the scaler, exponent range and ``max_len``
    (room for the longest text and 50 % longer new ones) come from the training lines.
    """
    from scifm.xval.userdata import (
        data_config,
        detect_format,
        non_numeric_target,
        read_lines,
        samples_of,
        split_lines,
    )

    fmt = fmt or detect_format(path)
    try:  # the file is named in what the split and the target choice refuse
        train_l, val_l = split_lines(read_lines(path, fmt), val_fraction, seed)
        train_s, val_s = samples_of(train_l, target), samples_of(val_l, target)
    except ValueError as e:
        msg = str(e)
        found = (non_numeric_target(path, target)  # a second read, on this error only
                 if "no line has this field" in msg and fmt == "jsonl" and target != "all"
                 else None)  # fmt: skip
        if found is not None:
            msg = (f"target {target!r} is in the file but never a number (line {found[0]}: "
                   f"{json.dumps(found[1])[:40]}); expected numbers")  # fmt: skip
        raise ValueError(msg if str(path) in msg else f"data file {str(path)!r}: {msg}") from None
    spec = data_config(train_l, fmt=fmt, target=target, val_fraction=val_fraction,
                       split_seed=seed, source=str(path))  # fmt: skip
    tok = XvalConfig(scheme=scheme, exp_min=spec.exp_min, exp_max=spec.exp_max).tokenizer
    longest = max(len(tok.encode(s.text)) for s in train_s + val_s) + 1  # + [EOS]
    config = model_config_for(spec, scheme, preset, mode=mode,
                              max_len=max(64, -(-int(longest * 1.5) // 32) * 32))  # fmt: skip
    config = config.with_overrides(overrides)
    batch_size = min(batch_size, len(train_s))
    trained = fit_samples(train_s, spec, config, train_cfg, batch_size=batch_size, seed=seed,
                          device=device, out_dir=out_dir)  # fmt: skip
    return trained, val_s


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> Trained:
    """Rebuild a ``Trained`` (model, scaler, task) from a checkpoint directory."""
    from scifm.core import load_checkpoint, load_model

    config, model = load_model(path, device, expect_config=XvalConfig)
    extra = load_checkpoint(path)["record"]["extra"]
    spec = (
        DataConfig.from_dict(extra["data"]) if "data" in extra
        else TaskConfig.from_dict(extra["task"])
    )  # fmt: skip
    return Trained(
        config, model, ValueScaler.from_dict(extra["scaler"]), spec, None,
        dict(extra.get("info", {})),
    )  # fmt: skip
