"""Training an xVal (or digit-scheme) model on a task with the shared ``scifm.core.train``.

Loss (Golkar et al. 2023): cross-entropy of the token head on the token targets
plus ``mse_weight`` x MSE of the number head where the target token is ``[NUM]``.
Either term is an exact zero (still in the graph) when the batch has no such
targets -- the reference divides by zero there and gets NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from scifm.core import TrainConfig, TrainResult, train
from scifm.core.train import StepCallback, unwrap
from scifm.xval.config import XvalConfig
from scifm.xval.data import IGNORE, EncodedBatches, encode_sample, fit_scaler
from scifm.xval.model import Model
from scifm.xval.scaler import ValueScaler
from scifm.xval.tasks import TaskConfig, generate


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
    task: TaskConfig
    result: TrainResult | None = None
    info: dict[str, Any] = field(default_factory=dict)  # tokens/sample, samples/s, ...

    @property
    def extra(self) -> dict[str, Any]:
        """JSON stored in the checkpoint beside the weights."""
        return {"scaler": self.scaler.to_dict(), "task": self.task.to_dict(), "info": self.info}


def model_config_for(
    task: TaskConfig, scheme: str, preset: str = "small", **overrides: Any
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
    scaler = fit_scaler(samples, task.scaler_kinds)
    tok = config.tokenizer
    items = [encode_sample(s, tok, scaler, config.mode) for s in samples]
    longest = max(len(it.ids) for it in items)
    if longest > config.max_len:
        raise ValueError(
            f"task {task.task!r} with scheme {config.scheme!r} needs {longest} tokens; "
            f"max_len={config.max_len} (raise it with max_len=...)"
        )
    model = build_model(config, seed)
    info = {
        "tokens_per_sample": float(sum(len(it.ids) for it in items) / len(items)),
        "n_params": sum(p.numel() for p in model.parameters()),
        "batch_size": batch_size,
        "seed": seed,
    }
    trained = Trained(config, model, scaler, task, None, info)
    batches = EncodedBatches(items, batch_size, seed=seed, accum_steps=train_cfg.accum_steps)
    result = train(
        model, xval_loss, batches, train_cfg, device=device, out_dir=out_dir,
        model_config=config, extra=trained.extra, callback=callback,
    )  # fmt: skip
    rates = [r["samples_per_s"] for r in result.history[1:]] or [
        r["samples_per_s"] for r in result.history
    ]
    info["samples_per_s"] = float(sum(rates) / max(len(rates), 1))
    info["final_loss"] = result.history[-1]["loss"] if result.history else float("nan")
    trained.result = result
    return trained


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> Trained:
    """Rebuild a ``Trained`` (model, scaler, task) from a checkpoint directory."""
    from scifm.core import load_checkpoint, load_model

    config, model = load_model(path, device, expect_config=XvalConfig)
    extra = load_checkpoint(path)["record"]["extra"]
    return Trained(
        config, model, ValueScaler.from_dict(extra["scaler"]),
        TaskConfig.from_dict(extra["task"]), None, dict(extra.get("info", {})),
    )  # fmt: skip


def training_memory_bytes(model: Model, batch: dict[str, torch.Tensor]) -> int:
    """Peak training memory estimate of one step, device-independent.

    Weights + gradients + two AdamW moments (4 copies of the parameters) plus
    every tensor autograd saves for the backward pass of ``batch`` (activations).
    On CPU there is no allocator high-water mark to read; on CUDA the benchmark
    also reports ``torch.cuda.max_memory_allocated``.
    """
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[id(t)] = t.numel() * t.element_size()
        return t

    params = sum(p.numel() * p.element_size() for p in model.parameters())
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _ = xval_loss(model, batch)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return 4 * params + sum(saved.values())
