"""Shipped xVal checkpoints: one small model per encoding, made by one command.

    .venv/bin/python -m scifm.xval.assets            # writes assets/xval/ (~10 CPU-minutes)

Trains the "small" preset (2 layers, d_model 64) on the ``ood`` task (a*b with a
held-out band of a) for all five encodings, and xVal plus P1000 on the
``orbits`` task, then writes ``assets/xval/MANIFEST.json`` with presets, seeds,
steps and test metrics. The app and ``scifm xval evaluate`` load these.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from scifm.core import TrainConfig, save_checkpoint
from scifm.xval.tasks import TaskConfig, generate
from scifm.xval.tokenizers import SCHEMES

SHIPPED: dict[str, tuple[str, ...]] = {"ood": SCHEMES, "orbits": ("xval", "p1000")}
STEPS = {"ood": 1500, "orbits": 1200}
SEED = 0
TEST_SEED = 12345


def assets_dir() -> Path:
    """``assets/xval`` of the repository this package lives in."""
    return Path(__file__).resolve().parents[3] / "assets" / "xval"


def checkpoint_path(task: str, scheme: str, root: Path | None = None) -> Path:
    return (root or assets_dir()) / f"{task}_{scheme}"


def task_config(task: str) -> TaskConfig:
    cfg = TaskConfig.preset("small", task=task)
    return cfg.replace(n_planets=(2, 2)) if task == "orbits" else cfg


def build(root: Path | None = None, steps_scale: float = 1.0, progress: bool = False) -> dict:
    """Train and write every shipped checkpoint and the manifest; returns the manifest."""
    from scifm.xval.evaluate import evaluate
    from scifm.xval.train import fit, model_config_for

    root = root or assets_dir()
    root.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "command": "python -m scifm.xval.assets",
        "preset": "small",
        "seed": SEED,
        "test_seed": TEST_SEED,
        "models": {},
    }
    for task_name, schemes in SHIPPED.items():
        task = task_config(task_name)
        steps = max(10, int(STEPS[task_name] * steps_scale))
        for scheme in schemes:
            max_len = 256 if task_name == "orbits" else 64
            cfg = model_config_for(task, scheme, "small", max_len=max_len)
            tcfg = TrainConfig(
                steps=steps, lr=1e-3, warmup_steps=min(100, steps // 10),
                log_every=max(steps // 10, 1), seed=SEED, progress=progress,
            )  # fmt: skip
            trained = fit(task, cfg, tcfg, batch_size=64, seed=SEED, device="cpu")
            splits = ("test", "interp", "extrap")
            metrics = {s: evaluate(trained, generate(task, 300, TEST_SEED, s)) for s in splits}
            trained.info["metrics"] = metrics
            path = checkpoint_path(task_name, scheme, root)
            shutil.rmtree(path, ignore_errors=True)
            save_checkpoint(path, trained.model, cfg, extra=trained.extra)
            manifest["models"][f"{task_name}_{scheme}"] = {
                "path": path.name, "task": task.to_dict(), "scheme": scheme, "steps": steps,
                "batch_size": 64, "lr": 1e-3, "metrics": metrics,
                "bytes": sum(f.stat().st_size for f in path.iterdir()),
            }  # fmt: skip
            print(f"{task_name} {scheme}: test {metrics['test']}", flush=True)
    (root / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, default=None, help="directory (default assets/xval)")
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply the training steps")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    build(args.out, args.steps_scale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
