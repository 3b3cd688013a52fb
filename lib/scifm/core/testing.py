"""A tiny model, data set and training script used to test the shared core.

Lives in the package (not in tests/) because checkpoints only rebuild scifm
classes, and because the resume and DDP tests launch it as a separate process::

    python -m scifm.core.testing --out DIR --steps 40 --ckpt-every 5
    torchrun --nproc_per_node 2 -m scifm.core.testing --out DIR --steps 20
    torchrun --nproc_per_node 2 -m scifm.core.testing --out DIR --ckpt-every 5 --crash-after 12
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import TensorDataset

from scifm.core.batches import DatasetBatches
from scifm.core.config import ConfigMixin
from scifm.core.rng import drop_path, seeded, torch_generator
from scifm.core.train import TrainConfig, train


@dataclass(frozen=True)
class TinyConfig(ConfigMixin):
    d_in: int = 8  # input features
    d_hidden: int = 32  # hidden width
    dropout: float = 0.1  # nn.Dropout: the per-rank global stream resume must rebuild
    drop_path: float = 0.3  # keyed stochastic depth on the residual block (rank-independent)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {},
        "no_dropout": {"dropout": 0.0},  # only keyed draws: N ranks equal one process
        "deterministic": {"dropout": 0.0, "drop_path": 0.0},
    }

    def __post_init__(self) -> None:
        if self.d_in < 1 or self.d_hidden < 1:
            raise ValueError(f"TinyConfig: d_in={self.d_in}, d_hidden={self.d_hidden} must be >= 1")
        if not 0 <= self.drop_path < 1 or not 0 <= self.dropout < 1:
            raise ValueError(f"TinyConfig: dropout, drop_path={self.drop_path}: expected [0, 1)")


class TinyMLP(nn.Module):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.inp = nn.Sequential(nn.Linear(config.d_in, config.d_hidden), nn.GELU())
        self.block = nn.Sequential(nn.Linear(config.d_hidden, config.d_hidden), nn.GELU())
        self.out = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.d_hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, d_in) -> (B,)
        h = self.inp(x)  # (B, d_hidden)
        h = h + drop_path(self.block(h), self.config.drop_path, self.training)
        return self.out(h).squeeze(-1)


def regression_data(config: TinyConfig, n: int, seed: int) -> TensorDataset:
    """y = sin(x . w) with a fixed random w: smooth, learnable, deterministic in seed."""
    g = torch_generator(seed)
    x = torch.randn(n, config.d_in, generator=g)
    w = torch.randn(config.d_in, generator=g)
    return TensorDataset(x, torch.sin(x @ w))


def mse_loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
    x, y = batch
    loss = torch.mean((model(x) - y) ** 2)
    return loss, {"mse": float(loss.detach())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--ckpt-every", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--accum", type=int, default=1)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--sleep", type=float, default=0.0, help="seconds per step (kill tests)")
    p.add_argument(
        "--crash-after", type=int, default=0, help="exit hard at this many micro-batches (>0)"
    )
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (loader_workers)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    # Run as ``python -m`` this file is ``__main__``; checkpoints must name the
    # importable classes, so take them from the package module.
    from scifm.core import testing

    cfg = testing.TinyConfig.preset(args.preset)
    with seeded(1234):  # same init in every rank and every run
        model = testing.TinyMLP(cfg)
    data = DatasetBatches(
        regression_data(cfg, 256, seed=0), args.batch_size, seed=3, accum_steps=args.accum
    )
    tc = TrainConfig(
        steps=args.steps, lr=3e-3, warmup_steps=2, ckpt_every=args.ckpt_every,
        accum_steps=args.accum, log_every=1, progress=False, loader_workers=args.workers,
    )  # fmt: skip

    calls = 0

    def loss_fn(m: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        nonlocal calls
        calls += 1
        if calls == args.crash_after + 1 and args.crash_after > 0:
            os._exit(3)  # as abrupt as SIGKILL: no clean-up, no checkpoint
        time.sleep(args.sleep)
        return mse_loss(m, batch)

    res = train(model, loss_fn, data, tc, device="cpu", out_dir=args.out, model_config=cfg)
    done = {"step": res.step, "resumed_from": res.resumed_from}
    Path(args.out, "done.json").write_text(json.dumps(done))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
