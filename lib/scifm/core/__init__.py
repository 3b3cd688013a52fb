"""Pieces the three ideas share: devices, configs, checkpoints, the training loop."""

from scifm.core.batches import BatchSource, DatasetBatches, MixtureBatches
from scifm.core.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from scifm.core.config import ConfigMixin, parse_overrides
from scifm.core.devices import autocast, eval_mode, numpy_rng, pick_device, torch_generator
from scifm.core.plateau import plateaued
from scifm.core.rng import seeded
from scifm.core.train import TrainConfig, TrainResult, train, unwrap, warm_restart

__all__ = [
    "BatchSource",
    "CheckpointError",
    "ConfigMixin",
    "DatasetBatches",
    "MixtureBatches",
    "TrainConfig",
    "TrainResult",
    "autocast",
    "eval_mode",
    "load_checkpoint",
    "load_model",
    "numpy_rng",
    "parse_overrides",
    "pick_device",
    "plateaued",
    "save_checkpoint",
    "seeded",
    "torch_generator",
    "train",
    "unwrap",
    "warm_restart",
]
