"""Package a pretraining checkpoint for shipping: fp16 weights, a model card, MANIFEST entry.

``python -m scifm.mpp.assets package --ckpt RUN/checkpoint --metrics RUN/metrics.jsonl
--out assets/mpp/avit_small_64`` copies the checkpoint to a scratch folder first (a running
job rewrites it every ``ckpt_every`` steps; the sha256 record catches a copy taken mid-
rewrite, and the copy is retried), rounds the weights to float16 (half the bytes; loading
casts them back to a float32 model), checks that the rounded model's one-step prediction
stays within ``FP16_TOLERANCE`` of the float32 one on training windows, and writes the card
(``scifm.mpp.card``) into the checkpoint and into ``MANIFEST.json`` next to it.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from scifm.core import load_model, save_checkpoint
from scifm.core.checkpoint import MODEL_FILE, CheckpointError, read_record
from scifm.core.resume import read_metrics
from scifm.mpp.card import MANIFEST, data_from_config, data_from_files, learning_curve, wall_time
from scifm.mpp.config import AViTConfig
from scifm.mpp.metrics import nmse_per_field
from scifm.pde.windows import collate_windows

# Largest allowed ||pred_fp16 - pred_fp32|| / ||pred_fp32 - last input frame|| per variant:
# the float16-rounded weights may move the predicted one-step UPDATE by at most 1%.
FP16_TOLERANCE = 1e-2
CHECK_WINDOWS = 4  # training windows per variant the fp16 check runs on
COPY_TRIES = 3


def scratch_copy(ckpt: Path, dest: Path) -> dict[str, Any]:
    """Copy checkpoint ``ckpt`` into ``dest`` and return its verified record."""
    for attempt in range(COPY_TRIES):
        shutil.rmtree(dest, ignore_errors=True)
        try:
            shutil.copytree(ckpt, dest)
            return read_record(dest)
        except (CheckpointError, OSError) as exc:  # shutil.Error is an OSError
            if attempt == COPY_TRIES - 1 or not ckpt.is_dir():
                raise CheckpointError(f"{ckpt}: cannot take a consistent copy ({exc})") from None
    raise AssertionError("unreachable")


def _check_windows(extra: Mapping[str, Any], n_frames: int) -> dict[str, list[dict]]:
    """A few training windows per variant (from the run's files, else simulated)."""
    from scifm.mpp.data import file_datasets, memory_datasets, simulate_variant, variant_seed

    data = extra["data"]
    if extra.get("files"):
        sets = file_datasets(
            extra["files"], n_frames=n_frames, res=data["res"], frames=data["sim_frames"]
        )
    else:
        fields = {
            v: simulate_variant(
                v, 1, res=data["res"], n_frames=max(data["sim_frames"], n_frames + 1),
                seed=variant_seed(data["seed"], v, "test"),
            ).fields.float()
            for v in data["systems"]
        }  # fmt: skip
        sets = memory_datasets(fields, n_frames)
    out = {}
    for name, ds in sets.items():
        n = len(ds)
        idx = sorted({round(i * (n - 1) / max(CHECK_WINDOWS - 1, 1)) for i in range(CHECK_WINDOWS)})
        out[name] = [ds[i] for i in idx]
    return out


@torch.no_grad()
def fp16_check(
    model32: torch.nn.Module, model16: torch.nn.Module, windows: Mapping[str, list[dict]]
) -> dict[str, dict[str, float]]:
    """Per variant: relative change of the one-step update, and NRMSE of both models."""
    out = {}
    for name, items in windows.items():
        b = collate_windows(items)
        x, y, idx, per = b["x"], b["y"], b["field_index"], bool(b["periodic"])
        p32, p16 = model32(x, idx, per), model16(x, idx, per)  # (B, C, H, W)
        update = (p32 - x[:, -1]).norm().clamp_min(1e-12)
        out[name] = {
            "update_rel_diff": float((p16 - p32).norm() / update),
            "nrmse_fp32": float(nmse_per_field(p32, y).sqrt().mean()),
            "nrmse_fp16": float(nmse_per_field(p16, y).sqrt().mean()),
            "windows": len(items),
        }
    return out


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def package(
    ckpt: str | Path,
    metrics: str | Path,
    out: str | Path,
    *,
    batch_size: int | None = None,
    train_command: str,
    package_command: str,
) -> dict[str, Any]:
    """Write ``out`` (fp16 checkpoint with its card) and its ``MANIFEST.json`` entry; the card."""
    ckpt, out = Path(ckpt), Path(out)
    with tempfile.TemporaryDirectory(prefix="scifm-package-") as tmp:
        record = scratch_copy(ckpt, Path(tmp) / "checkpoint")
        config, model = load_model(Path(tmp) / "checkpoint", expect_config=AViTConfig)
        state_file = Path(tmp) / "checkpoint" / "trainer.json"
        trainer = json.loads(state_file.read_text()) if state_file.is_file() else {}
    records = read_metrics(metrics, up_to=trainer.get("step"))  # read once: a snapshot
    extra = dict(record.get("extra", {}))
    for key in ("data", "systems"):
        if key not in extra:
            raise CheckpointError(f"{ckpt}: extra has no {key!r}; not an MPP pretraining run")
    step = int(trainer.get("step", records[-1]["step"]))
    batch = _batch_size(ckpt, extra, batch_size)
    accum = int(extra.get("train", {}).get("accum_steps", 1))
    data = extra["data"]
    variants = (
        data_from_files(extra["files"], data["res"], data["sim_frames"])
        if extra.get("files")
        else data_from_config(data)
    )
    model16 = copy.deepcopy(model).half().float()  # what loading the fp16 file gives back
    check = fp16_check(model, model16, _check_windows(extra, config.n_frames))
    worst = max(c["update_rel_diff"] for c in check.values())
    if worst > FP16_TOLERANCE:
        raise CheckpointError(
            f"{ckpt}: float16 weights change the one-step update by {worst:.3g} (relative); "
            f"expected at most {FP16_TOLERANCE}"
        )
    planned = extra.get("train", {}).get("steps")
    card = {
        "name": out.name,
        "model": {**config.to_dict(), "parameters": sum(p.numel() for p in model.parameters())},
        "resolution": data["res"],
        "patch_size": config.patch_size,
        "tokens_per_frame": (data["res"] // config.patch_size) ** 2,
        "context_frames": config.n_frames,
        "frames": data["sim_frames"],
        "data": variants,
        "steps": step,
        "planned_steps": planned,
        "batch_size": batch,
        "samples_seen": step * batch * accum,
        "recipe": extra.get("recipe", "paper (one-step NMSE)"),
        "train": extra.get("train"),
        "warm_start": extra.get("warm_start"),  # continued from a card's weights, if it was
        "wall_time": {
            "seconds": float(f"{wall_time(records, batch * accum):.3g}"),  # 3 digits, not 0.1 s
            "source": "metrics.jsonl samples_per_s: sum over logged intervals of steps x batch "
            "/ samples_per_s (the records carry no timestamps; a resumed run's repeated steps "
            "counted once)",
        },
        "learning_curve": {**learning_curve(records), "records": len(records)},
        "weights": {"dtype": "float16", "fp16_check": check, "tolerance": FP16_TOLERANCE},
        "checkpoint": {"source": str(ckpt), "sha256_fp32": record["sha256"][MODEL_FILE]},
        "made_by": {"training": train_command, "packaging": package_command},
    }
    if planned is not None and step < planned:
        print(f"WARNING: {ckpt}: step {step} of {planned}: a mid-training checkpoint; do not "
              "ship it", file=sys.stderr)  # fmt: skip
    save_checkpoint(out, copy.deepcopy(model).half(), config, extra={**extra, "card": card})
    _verify(out, model16, check)
    _add_to_manifest(out, card)
    return card


def _batch_size(ckpt: Path, extra: Mapping[str, Any], given: int | None) -> int:
    stored = extra.get("batch_size")
    if stored is not None and given is not None and int(stored) != given:
        raise ValueError(f"--batch-size {given}: the checkpoint {ckpt} records {stored}")
    if stored is None and given is None:
        raise ValueError(f"{ckpt}: no batch size recorded; pass --batch-size (the run's)")
    return int(stored if stored is not None else given)


def _verify(out: Path, model16: torch.nn.Module, check: Mapping[str, Any]) -> None:
    """The written checkpoint loads as float32 and predicts exactly what was checked."""
    _, loaded = load_model(out, expect_config=AViTConfig)
    bad = [k for k, v in loaded.state_dict().items() if v.dtype != torch.float32]
    same = all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                   model16.state_dict().values()))  # fmt: skip
    if bad or not same:
        shutil.rmtree(out, ignore_errors=True)
        raise CheckpointError(f"{out}: reloaded weights differ from the checked ones ({bad[:3]})")


def _add_to_manifest(out: Path, card: Mapping[str, Any]) -> None:
    """Add the card (and a files line) to ``MANIFEST.json`` beside ``out``, others kept."""
    path = out.parent / MANIFEST
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    n_var = ", ".join(card["data"])
    manifest.setdefault("files", {})[out.name] = (
        f"AViT at {card['resolution']}^2, patch {card['patch_size']} "
        f"({card['tokens_per_frame']} tokens a frame), pretrained on {n_var} for "
        f"{card['steps']} steps, float16 weights (model card: cards.{out.name}; load with "
        "scifm.mpp.experiment.load_surrogate)"
    )
    manifest.setdefault("cards", {})[out.name] = card
    _write_json(path, manifest)
