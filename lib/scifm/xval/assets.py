"""Shipped xVal checkpoints: one small model per encoding, made by one command.

    .venv/bin/python -m scifm.xval.assets            # writes assets/xval/ (~10 CPU-minutes)

Trains the "small" preset (2 layers, d_model 64) on the ``ood`` task (a*b with a
held-out band of a) for all five encodings, and xVal plus P1000 on the
``orbits`` task, rounds the weights to float16 (5 MB budget), then writes
``assets/xval/MANIFEST.json`` with presets, seeds, steps and test metrics
(measured on the float16-rounded weights). The app and ``scifm xval evaluate`` load these.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from scifm.core import TrainConfig, paths, save_checkpoint
from scifm.xval.tasks import TaskConfig, generate
from scifm.xval.tokenizers import SCHEMES
from scifm.xval.train import Trained

SHIPPED: dict[str, tuple[str, ...]] = {"ood": SCHEMES, "orbits": ("xval", "p1000")}
STEPS = {"ood": 1500, "orbits": 1200}
SEED = 0
TEST_SEED = 12345


def assets_dir() -> Path:
    """``assets/xval`` under the project's assets folder (``SCIFM_ASSETS`` overrides)."""
    return paths.assets_dir() / "xval"


def checkpoint_path(task: str, scheme: str, root: Path | None = None) -> Path:
    return (root or assets_dir()) / f"{task}_{scheme}"


def task_config(task: str) -> TaskConfig:
    cfg = TaskConfig.preset("small", task=task)
    return cfg.replace(n_planets=(2, 2)) if task == "orbits" else cfg


def finalize(trained: Trained, path: Path) -> dict[str, Any]:
    """Round the weights to float16 (halves the files), evaluate, save; the manifest entry."""
    from scifm.xval.evaluate import evaluate

    trained.model.half().float()  # evaluate exactly the weights that are shipped
    splits = ("test", "interp", "extrap")
    metrics = {s: evaluate(trained, generate(trained.task, 300, TEST_SEED, s)) for s in splits}
    trained.info["metrics"] = metrics
    shutil.rmtree(path, ignore_errors=True)
    save_checkpoint(path, trained.model.half(), trained.config, extra=trained.extra)
    trained.model.float()
    return {
        "path": path.name, "task": trained.task.to_dict(), "scheme": trained.config.scheme,
        "batch_size": 64, "lr": 1e-3, "weights": "float16", "metrics": metrics,
        "bytes": sum(f.stat().st_size for f in path.iterdir()),
    }  # fmt: skip


def finalize_existing(root: Path | None = None) -> dict:
    """Re-finalize checkpoints already in ``root`` (float32 ones from an older build)."""
    from scifm.xval.train import load_trained

    root = root or assets_dir()
    manifest = (
        json.loads((root / "MANIFEST.json").read_text())
        if (root / "MANIFEST.json").exists()
        else {}
    )
    manifest.setdefault("models", {})
    for path in sorted(p for p in root.iterdir() if (p / "config.json").exists()):
        trained = load_trained(path)
        steps = manifest["models"].get(path.name, {}).get("steps", STEPS[trained.task.task])
        manifest["models"][path.name] = {"steps": steps, **finalize(trained, path)}
    manifest.update({"command": "python -m scifm.xval.assets", "preset": "small", "seed": SEED,
                     "test_seed": TEST_SEED})  # fmt: skip
    (root / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def build(root: Path | None = None, steps_scale: float = 1.0, progress: bool = False) -> dict:
    """Train and write every shipped checkpoint and the manifest; returns the manifest."""
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
            entry = finalize(trained, checkpoint_path(task_name, scheme, root))
            manifest["models"][f"{task_name}_{scheme}"] = {"steps": steps, **entry}
            print(f"{task_name} {scheme}: test {entry['metrics']['test']}", flush=True)
    (root / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, default=None, help="directory (default assets/xval)")
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply the training steps")
    p.add_argument(
        "--finalize-only", action="store_true", help="round existing checkpoints to float16"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.finalize_only:
        finalize_existing(args.out)
    else:
        build(args.out, args.steps_scale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
