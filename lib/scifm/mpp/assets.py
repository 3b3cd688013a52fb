"""Make the shipped MPP checkpoint: ``python -m scifm.mpp.assets [--out assets/mpp]``.

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


def main(argv: list[str] | None = None) -> int:
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
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    import shutil

    shutil.rmtree(out / "run", ignore_errors=True)  # resumable training state: not shipped
    print(json.dumps({"checkpoint": str(out / CHECKPOINT), "wall_s": manifest["wall_s"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
