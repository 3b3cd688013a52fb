"""The training loop the three ideas share.

AdamW with decoupled weight decay (none on biases and norms), linear warmup then
cosine decay, gradient clipping, gradient accumulation, bf16 autocast on CUDA,
optional ``torch.compile``, a tqdm bar with loss and throughput, a JSON-lines
metrics log, periodic atomic checkpoints and exact resume (model, optimizer,
step; the data position is the step, see ``batches.py``). Launched with
``torchrun`` it trains data-parallel with no code change.

Randomness (``rng.py``): ``train`` runs on a forked global torch state, so the
caller's torch and numpy streams are unchanged afterwards. Keyed draws (DropPath,
``rng.keyed_uniform``) depend on (seed, step, global sample position) only, so
ranks draw different masks and N ranks equal one process with the same global
batch. Draws from the global stream (``nn.Dropout``) come from a state reseeded
for every micro-batch from (seed, step, micro-batch, rank): each rank has its own
stream and resume rebuilds it without saving any RNG state.

The pieces: ``train`` picks the device and joins the process group; ``_setup``
builds the optimizer, resumes from the checkpoint and wraps the model (DDP,
compile); ``_loop`` runs ``_optimizer_step`` (one step over its micro-batches,
each a ``_micro_batch``), ``_log`` (records, JSONL, the callback) and ``_save``.

Usage::

    result = train(model, loss_fn, batches, TrainConfig(steps=500), device=dev,
                   out_dir="runs/x", model_config=cfg)

``loss_fn(model, batch) -> (loss, {"metric": float})`` receives the model as the loop
runs it (maybe wrapped by DDP or compile): call it through ``forward`` only, or use
``unwrap(model)`` for attributes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from scifm.core.batches import BatchSource, DatasetBatches, batch_len, iter_batches, to_device
from scifm.core.checkpoint import load_checkpoint, save_checkpoint
from scifm.core.config import ConfigMixin
from scifm.core.devices import autocast, pick_device
from scifm.core.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    device_for_rank,
    init_distributed,
)
from scifm.core.resume import (
    CHECKPOINT_DIR,
    METRICS_FILE,
    check_same_run,
    check_schedule,
    drop_empty_run,
    new_folders,
    pack_trainer_state,
    restore_trainer,
    truncate_log,
)
from scifm.core.rng import batch_positions, derive_seed, reseed, sample_keys, seeded
from scifm.core.schedule import warmup_cosine

__all__ = [
    "BatchSource", "DatasetBatches", "StepCallback", "TrainConfig", "TrainResult",
    "train", "unwrap", "warm_restart",
]  # fmt: skip

LossFn = Callable[[torch.nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]
# callback(record) after every logged step, on the main process: record holds "step",
# "loss", "lr", "grad_norm", "samples_per_s" and the loss function's metrics (live plots).
StepCallback = Callable[[dict[str, float]], None]


@dataclass(frozen=True)
class TrainConfig(ConfigMixin):
    steps: int = 1000  # optimizer steps in the whole run (resume continues to this)
    stop_at: int = 0  # end this call after this step (0: at `steps`); the schedule still spans
    #                   `steps`, so a long run is cut at a milestone and resumed from there
    lr: float = 3e-4  # peak learning rate after warmup
    warmup_steps: int = 100  # linear warmup from lr/warmup to lr
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio at the last step
    weight_decay: float = 0.01  # AdamW decay on matrices only (not biases, norms, embeddings' 1-D)
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW moments
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    accum_steps: int = 1  # micro-batches per optimizer step (bigger batches on small memory)
    bf16: bool = True  # bf16 autocast, used only where the device supports it (CUDA)
    compile: bool = False  # torch.compile the model (worth it on GPU for long runs)
    log_every: int = 10  # steps between metric records (and progress-bar updates)
    ckpt_every: int = 0  # steps between resumable checkpoints; 0 = only at the end
    seed: int = 0  # keys DropPath/keyed draws and seeds the forked stream (dropout) per step
    progress: bool = True  # show a tqdm progress bar on rank 0
    loader_workers: int = 0  # DataLoader processes building batches ahead (0: in the loop)
    prefetch: int = 2  # batches each loader worker builds ahead

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"steps": 20, "warmup_steps": 2, "log_every": 5},
        "small": {"steps": 500, "warmup_steps": 50, "log_every": 25, "ckpt_every": 100},
        "paper": {"steps": 200_000, "warmup_steps": 1000, "log_every": 100, "ckpt_every": 5000},
    }

    def __post_init__(self) -> None:
        for name in ("steps", "accum_steps", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)}: must be >= 1")
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise ValueError(f"TrainConfig.lr={self.lr}: must be a positive finite number")
        if self.loader_workers < 0 or self.prefetch < 1:
            raise ValueError("TrainConfig: loader_workers must be >= 0 and prefetch >= 1")
        if not 0 <= self.stop_at <= self.steps:
            raise ValueError(f"TrainConfig.stop_at={self.stop_at}: expected 0..steps={self.steps}")
        if self.warmup_steps < 0 or self.ckpt_every < 0 or self.grad_clip < 0:
            raise ValueError("TrainConfig: warmup_steps, ckpt_every and grad_clip must be >= 0")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"TrainConfig.min_lr_ratio={self.min_lr_ratio}: expected [0, 1]")


@dataclass
class TrainResult:
    step: int  # optimizer steps completed
    history: list[dict[str, float]] = field(default_factory=list)  # records of this process
    checkpoint: Path | None = None  # resumable checkpoint directory (loadable by load_model)
    resumed_from: int = 0  # step the run resumed at (0 for a fresh run)
    stopped: str = ""  # why an evaluated run ended (plateau.train_evaluated); "" from train


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DDP and ``torch.compile`` wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The loop's AdamW over ``model``'s trainable parameters (no decay on 1-d ones)."""
    return torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)


@dataclass
class _Run:
    """What ``_setup`` prepares for one ``train`` call."""

    model: torch.nn.Module  # the plain module: weights, clipping, checkpoints
    run_model: torch.nn.Module  # what the loss function calls (maybe DDP / compile wrapped)
    opt: torch.optim.Optimizer
    cfg: TrainConfig
    dist: DistInfo
    device: torch.device
    ckpt_dir: Path | None  # resumable checkpoint directory (None: no files written)
    log_path: Path | None  # JSON-lines metrics
    model_config: Any
    extra: dict[str, Any] | None
    start: int = 0  # step the run starts (or resumes) at


def _setup(
    model: torch.nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    dist: DistInfo,
    out_dir: str | Path | None,
    model_config: Any,
    extra: dict[str, Any] | None,
    resume: bool,
) -> _Run:
    """Move the model, build the optimizer, resume from ``out_dir``'s checkpoint, wrap."""
    model_config = model_config if model_config is not None else getattr(model, "config", None)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and model_config is None:
        raise ValueError("train(out_dir=...) needs model_config (or model.config) to checkpoint")
    model.to(device)
    opt = _optimizer(model, cfg)
    run = _Run(
        model=model, run_model=model, opt=opt, cfg=cfg, dist=dist, device=device,
        ckpt_dir=out / CHECKPOINT_DIR if out is not None else None,
        log_path=out / METRICS_FILE if out is not None else None,
        model_config=model_config, extra=extra,
    )  # fmt: skip
    if resume and run.ckpt_dir is not None and (run.ckpt_dir / "config.json").exists():
        ck = load_checkpoint(run.ckpt_dir)
        check_same_run(out, ck["record"], model_config, extra)
        model.load_state_dict(ck["model"])
        if "trainer_tensors" in ck:
            moments = any(k.startswith("opt.") for k in ck["trainer_tensors"])
            check_schedule(run.ckpt_dir, ck["trainer_state"], cfg, moments)
            run.start = restore_trainer(opt, ck["trainer_tensors"], ck["trainer_state"])
    if out is not None and run.log_path is not None and dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        truncate_log(run.log_path, run.start)
    if dist.enabled:
        ids = [device.index] if device.type == "cuda" else None
        run.run_model = DistributedDataParallel(model, device_ids=ids)
    if cfg.compile:
        run.run_model = torch.compile(run.run_model)
    return run


def warm_restart(
    out_dir: str | Path,
    model: torch.nn.Module,
    cfg: TrainConfig,
    step: int,
    *,
    model_config: Any = None,
    extra: dict[str, Any] | None = None,
    history: Sequence[Mapping[str, float]] = (),
) -> Path:
    """Make ``out_dir`` a run that ``train`` resumes at ``step`` from ``model``'s weights alone.

    For a run whose trainer checkpoint is lost while its weights survive (a shipped asset):
    the optimizer starts with empty Adam moments at ``step`` (its bias correction treats the
    next step as its first), while the LR schedule, the data order and every random draw
    continue as a resumed run's, all being functions of (seed, step). ``history`` (records
    with a ``step`` at or before it, e.g. the learning curve of the model card) seeds the
    metrics log so the curve stays whole. Refuses an ``out_dir`` that holds a checkpoint.
    """
    out = Path(out_dir)
    model_config = model_config if model_config is not None else getattr(model, "config", None)
    if model_config is None:
        raise ValueError("warm_restart needs model_config (or model.config) to checkpoint")
    if not 0 < step < cfg.steps:
        raise ValueError(f"warm_restart step={step}: expected 0 < step < steps={cfg.steps}")
    ckpt = out / CHECKPOINT_DIR
    if ckpt.exists():
        raise ValueError(f"{ckpt} exists: resume that run instead of warm-restarting over it")
    late = [int(r["step"]) for r in history if int(r["step"]) > step]
    if late:
        raise ValueError(f"warm_restart history has steps past {step} (first {late[0]})")
    plain = unwrap(model)
    # a fresh AdamW: no moments
    tensors, state = pack_trainer_state(_optimizer(plain, cfg), step, cfg)
    save_checkpoint(
        ckpt, plain, model_config, extra=extra, trainer_tensors=tensors, trainer_state=state
    )  # fmt: skip
    (out / METRICS_FILE).write_text("".join(json.dumps(dict(r)) + "\n" for r in history))
    return ckpt


@dataclass
class _StepOut:
    loss: float  # mean over micro-batches, this rank
    metrics: dict[str, float]  # the loss function's metrics of the last micro-batch
    lr: float
    grad_norm: float  # before clipping; nan when clipping is off
    samples: int  # samples of the global batch (all ranks)


def _micro_batch(
    run: _Run, loss_fn: LossFn, batch: Any, step: int, micro: int
) -> tuple[float, dict[str, float]]:
    """Forward + backward of one micro-batch, its random draws keyed (module docstring)."""
    cfg, dist = run.cfg, run.dist
    reseed(derive_seed(cfg.seed, step, micro, dist.rank), run.device)
    positions = batch_positions(batch_len(batch), micro, dist.rank, dist.world_size)
    sync = micro == cfg.accum_steps - 1 or not dist.enabled
    with (
        nullcontext() if sync else run.run_model.no_sync(),
        autocast(run.device, cfg.bf16),
        sample_keys(cfg.seed, step, positions),
    ):
        loss, metrics = loss_fn(run.run_model, batch)
        (loss / cfg.accum_steps).backward()
    return float(loss.detach()) / cfg.accum_steps, metrics


def _optimizer_step(
    run: _Run, loss_fn: LossFn, next_batch: Callable[[int, int], Any], step: int
) -> _StepOut:
    """One optimizer step over ``cfg.accum_steps`` micro-batches.

    ``next_batch(step, micro)``: this rank's CPU batch of that position.
    """
    cfg, dist = run.cfg, run.dist
    lr = cfg.lr * warmup_cosine(
        step, total=cfg.steps, warmup=cfg.warmup_steps, min_ratio=cfg.min_lr_ratio
    )
    for group in run.opt.param_groups:
        group["lr"] = lr
    loss_sum, metrics, samples = 0.0, {}, 0
    for micro in range(cfg.accum_steps):
        batch = to_device(next_batch(step, micro), run.device)
        samples += batch_len(batch) * dist.world_size
        loss, metrics = _micro_batch(run, loss_fn, batch, step, micro)
        loss_sum += loss
    if not math.isfinite(loss_sum):
        raise FloatingPointError(
            f"training loss is {loss_sum} at step {step}; stopping (a NaN or inf in the data, "
            "or a learning rate too high for it; the last checkpoint is kept)"
        )
    grad_norm = (
        float(torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip))
        if cfg.grad_clip > 0
        else float("nan")
    )
    run.opt.step()
    run.opt.zero_grad(set_to_none=True)
    return _StepOut(loss_sum, metrics, lr, grad_norm, samples)


def _log(
    run: _Run, done: int, out: _StepOut, samples_per_s: float, callback: StepCallback | None
) -> dict[str, float]:
    """The record of step ``done`` (loss averaged over ranks), written and passed on."""
    record = {
        "step": done,
        "loss": all_reduce_mean(out.loss, run.dist, run.device),
        "lr": out.lr,
        "grad_norm": out.grad_norm,
        "samples_per_s": samples_per_s,
        **{k: float(v) for k, v in out.metrics.items()},
    }
    if run.log_path is not None and run.dist.is_main:
        with open(run.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")
    if callback is not None and run.dist.is_main:
        callback(record)
    return record


def _save(run: _Run, step: int) -> None:
    """Write the resumable checkpoint of ``step`` (main process), then wait for all ranks."""
    if run.ckpt_dir is not None and run.dist.is_main:
        tensors, state = pack_trainer_state(run.opt, step, run.cfg)
        save_checkpoint(
            run.ckpt_dir, run.model, run.model_config, extra=run.extra,
            trainer_tensors=tensors, trainer_state=state,
        )  # fmt: skip
    barrier(run.dist)


def _loop(
    run: _Run, loss_fn: LossFn, batches: BatchSource, callback: StepCallback | None
) -> TrainResult:
    cfg = run.cfg
    end = cfg.stop_at or cfg.steps  # this call's last step; the schedule spans cfg.steps
    result = TrainResult(step=run.start, checkpoint=run.ckpt_dir, resumed_from=run.start)
    bar = tqdm(
        total=end, initial=run.start, disable=not (cfg.progress and run.dist.is_main),
        desc="train", dynamic_ncols=True,
    )  # fmt: skip
    run.model.train()
    stream = iter_batches(  # a DataLoader: workers build the batches ahead, in order
        batches, start=run.start, stop=max(end, run.start), accum_steps=cfg.accum_steps,
        rank=run.dist.rank, world_size=run.dist.world_size, num_workers=cfg.loader_workers,
        prefetch=cfg.prefetch, pin_memory=run.device.type == "cuda",
    )  # fmt: skip

    def next_batch(step: int, micro: int) -> Any:  # the stream yields positions in order
        return next(stream)

    t_last, samples = time.perf_counter(), 0
    for step in range(run.start, end):
        out = _optimizer_step(run, loss_fn, next_batch, step)
        done = result.step = step + 1
        samples += out.samples
        bar.update(1)
        if done % cfg.log_every == 0 or done == end:
            now = time.perf_counter()
            record = _log(run, done, out, samples / max(now - t_last, 1e-9), callback)
            t_last, samples = now, 0
            result.history.append(record)
            bar.set_postfix(loss=f"{record['loss']:.4g}", sps=f"{record['samples_per_s']:.0f}")
        if cfg.ckpt_every and done % cfg.ckpt_every == 0 and done < end:
            _save(run, done)
    bar.close()
    return result


def train(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batches: BatchSource,
    cfg: TrainConfig,
    *,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
    model_config: Any = None,
    extra: dict[str, Any] | None = None,
    resume: bool = True,
    callback: StepCallback | None = None,
) -> TrainResult:
    """Train ``model`` for ``cfg.steps`` optimizer steps; see the module docstring.

    ``callback(record)`` is called with each logged record on the main process.
    """
    device = pick_device(device)
    dist = init_distributed(device)
    device = device_for_rank(device, dist)
    made = new_folders(out_dir)  # what a failure before the first log may remove again
    try:
        with seeded(cfg.seed, device):  # the caller's global RNG state is restored on exit
            run = _setup(model, cfg, device, dist, out_dir, model_config, extra, resume)
            result = _loop(run, loss_fn, batches, callback)
            if result.step > run.start or not (run.ckpt_dir and run.ckpt_dir.exists()):
                _save(run, result.step)
    except BaseException:
        if made is not None and dist.is_main:
            with suppress(OSError):  # the run's own error is the one to report
                drop_empty_run(*made)
        raise
    model.eval()
    return result
