"""Make the shipped MPP checkpoints: ``python -m scifm.mpp.assets [--out assets/mpp]``.

``python -m scifm.mpp.assets package --ckpt RUN/checkpoint --metrics RUN/metrics.jsonl
--train-command CMD --out assets/mpp/NAME`` packages a finished pretraining run instead
(float16 weights and a model card, ``scifm.mpp.package``).

Pretrains the "small" AViT on all five system variants at 32^2 (the CPU scale of this
project; the paper trains at 128^2 for 200k steps on 8 GPUs) and writes
``<out>/avit_small/`` (safetensors + JSON) and ``<out>/MANIFEST.json`` with the presets,
overrides and seeds that produced it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from scifm.core import TrainConfig, pick_device
from scifm.mpp.config import AViTConfig
from scifm.mpp.experiment import DataConfig, make_fields, pretrain

MODEL = AViTConfig.preset("small")
DATA = DataConfig.preset("small", n_traj=8, n_test=2, sim_frames=25)
TRAIN = TrainConfig.preset("small", steps=1200, lr=2e-3, weight_decay=1e-3, ckpt_every=0)
BATCH_SIZE = 8
CHECKPOINT = "avit_small"


def package_main(argv: list[str]) -> int:
    """``package``: a pretraining run's checkpoint -> fp16 checkpoint + card + MANIFEST entry."""
    from scifm.mpp.package import package

    parser = argparse.ArgumentParser(prog="python -m scifm.mpp.assets package")
    parser.add_argument("--ckpt", required=True, help="checkpoint directory of the run")
    parser.add_argument("--metrics", required=True, help="the run's metrics.jsonl")
    parser.add_argument("--out", required=True, help="e.g. assets/mpp/avit_small_64")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="the run's batch (if the checkpoint lacks it)"
    )
    parser.add_argument("--train-command", required=True, help="the command that trained it")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    command = "python -m scifm.mpp.assets package " + " ".join(shlex.quote(a) for a in argv)
    card = package(
        args.ckpt,
        args.metrics,
        args.out,
        batch_size=args.batch_size,
        train_command=args.train_command,
        package_command=command,
    )
    weights = Path(args.out) / "model.safetensors"
    print(json.dumps({"checkpoint": args.out, "steps": card["steps"],
                      "weights_bytes": weights.stat().st_size,
                      "fp16_check": card["weights"]["fp16_check"]}, indent=2))  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["package"]:
        return package_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="assets/mpp", help="asset directory")
    parser.add_argument("--device", default=None)
    parser.add_argument("--steps", type=int, default=TRAIN.steps, help="optimizer steps")
    parser.add_argument("--cache", default="runs/mpp_cache", help="simulated-data cache")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    train_cfg = TRAIN.replace(steps=args.steps)
    t0 = time.perf_counter()
    fields = make_fields(DATA, "train", cache_dir=args.cache)
    model, result = pretrain(
        MODEL,
        DATA,
        train_cfg,
        batch_size=BATCH_SIZE,
        device=pick_device(args.device),
        out_dir=out / "run",
        fields=fields,
    )
    from scifm.core import save_checkpoint
    from scifm.mpp.experiment import system_info

    extra = {
        "data": DATA.to_dict(),
        "systems": {s: system_info(s) for s in DATA.systems},
        "final": result.history[-1] if result.history else None,
    }
    save_checkpoint(out / CHECKPOINT, model, model.config, extra=extra)
    manifest = {
        "command": "python -m scifm.mpp.assets"
        + (f" --steps {args.steps}" if args.steps != TRAIN.steps else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.system()}, torch {torch.__version__}, "
        f"device {pick_device(args.device)}",
        "wall_s": round(time.perf_counter() - t0, 1),
        "files": {
            CHECKPOINT: "AViT 'small' preset pretrained on all variants (load with "
            "scifm.mpp.experiment.load_surrogate)"
        },
        "model_preset": "small",
        "model": MODEL.to_dict(),
        "data_preset": "small",
        "data": DATA.to_dict(),
        "train_preset": "small",
        "train": train_cfg.to_dict(),
        "batch_size": BATCH_SIZE,
        "final_train_record": extra["final"],
    }
    old = out / "MANIFEST.json"
    if old.is_file():  # packaged models (scifm.mpp.package) keep their entries and cards
        kept = json.loads(old.read_text())
        manifest["files"] = {**kept.get("files", {}), **manifest["files"]}
        if "cards" in kept:
            manifest["cards"] = kept["cards"]
    old.write_text(json.dumps(manifest, indent=2) + "\n")
    import shutil

    shutil.rmtree(out / "run", ignore_errors=True)  # resumable training state: not shipped
    print(json.dumps({"checkpoint": str(out / CHECKPOINT), "wall_s": manifest["wall_s"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
