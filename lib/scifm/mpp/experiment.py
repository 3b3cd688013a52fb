"""The physics mixture MPP trains on: its config, pretraining and fine-tuning.

McCabe et al. (arXiv:2310.02994) pretrain on PDEBench's SWE, diffusion-reaction, INS and
compressible NS (CNS at Mach 0.1 and 1.0 count as separate data sets). Training data is
one of: PDEBench or The Well files (``files=``, read lazily), files generated from a
``DataConfig`` into ``data_dir`` (``scifm.pde.generate``, then read like any files), or
trajectories simulated in memory (``fields=``; the default without files or data_dir).
Generated and simulated data are reproducible from the ``DataConfig`` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from scifm.core import ConfigMixin, TrainConfig, TrainResult
from scifm.core.resume import CHECKPOINT_DIR
from scifm.core.train import StepCallback, warm_restart
from scifm.mpp.config import AViTConfig
from scifm.mpp.data import (
    SPLITS,
    VARIANTS,
    file_datasets,
    generate_files,
    memory_datasets,
    resolve_variant,
    simulate_variant,
    system_info,
    variant_seed,
)
from scifm.mpp.model import AViT
from scifm.mpp.recipe import TrainRecipe
from scifm.mpp.train import fit

__all__ = [
    "SPLITS", "VARIANTS", "DataConfig", "finetune", "load_surrogate", "make_fields",
    "pretrain", "resolve_variant", "simulate_variant", "system_info", "variant_seed", "windows",
]  # fmt: skip


@dataclass(frozen=True)
class DataConfig(ConfigMixin):
    systems: tuple[str, ...] = ("swe", "diffreact", "ins", "cns_m0.1", "cns_m1.0")  # variants
    res: int = 32  # grid cells per side (PDEBench uses 128; 32 keeps CNS affordable on a CPU)
    n_traj: int = 16  # training trajectories per variant
    n_test: int = 4  # held-out trajectories per variant (different seeds)
    sim_frames: int = 21  # frames per trajectory including t = 0 (PDEBench CNS has 21)
    seed: int = 0  # base seed; each variant and split gets its own stream
    file_format: str = "pdebench"  # format of generated files: "pdebench" or "well"

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {
            "systems": ("swe", "diffreact"),
            "res": 16,
            "n_traj": 2,
            "n_test": 1,
            "sim_frames": 8,
        },
        "small": {},
        "no_cns": {"systems": ("swe", "diffreact", "ins")},
    }

    def __post_init__(self) -> None:
        unknown = [s for s in self.systems if s not in VARIANTS]
        if unknown or not self.systems:
            raise ValueError(
                f"DataConfig.systems={self.systems}: unknown {unknown}; choose from "
                f"{sorted(VARIANTS)}"
            )
        if self.res < 8 or self.n_traj < 1 or self.n_test < 0 or self.sim_frames < 3:
            raise ValueError("DataConfig: need res >= 8, n_traj >= 1, n_test >= 0, sim_frames >= 3")
        if self.file_format not in ("pdebench", "well"):
            raise ValueError(f"DataConfig.file_format={self.file_format!r}: 'pdebench' or 'well'")


def make_fields(
    cfg: DataConfig, split: str = "train", n: int | None = None, cache_dir: str | Path | None = None
) -> dict:
    """{variant: (N, F, C, H, W) float32 tensor} for ``split`` ("train" or "test").

    With ``cache_dir`` each variant's tensor is kept in a safetensors file named by the
    inputs that determine it, so repeated runs (benchmarks, assets) simulate once.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {sorted(SPLITS)}")
    count = n if n is not None else (cfg.n_traj if split == "train" else cfg.n_test)
    out = {}
    for s in cfg.systems:
        seed = variant_seed(cfg.seed, s, split)
        key = f"{s}_r{cfg.res}_f{cfg.sim_frames}_n{count}_s{seed}.safetensors"
        path = Path(cache_dir) / key if cache_dir is not None else None
        if path is not None and path.exists():
            out[s] = load_file(str(path))["fields"]
            continue
        f = simulate_variant(s, count, res=cfg.res, n_frames=cfg.sim_frames, seed=seed)
        out[s] = f.fields.float().cpu().contiguous()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file({"fields": out[s]}, str(path))
    return out


def windows(fields: dict, n_frames: int) -> list:
    """TrajectoryWindows (one per variant) from ``make_fields`` output."""
    return list(memory_datasets(fields, n_frames).values())


def training_data(
    data_cfg: DataConfig,
    n_frames: int,
    *,
    files: Sequence[str | Path] | None = None,
    data_dir: str | Path | None = None,
    fields: dict | None = None,
    device: str | torch.device | None = None,
) -> dict[str, Dataset]:
    """{variant: windows} from files, from files generated into ``data_dir``, or in memory.

    Files (given or generated) are brought to ``data_cfg.res`` and ``data_cfg.sim_frames``
    (``scifm.pde.filewindows`` states the rule).
    """
    if files:
        return file_datasets(files, n_frames=n_frames, res=data_cfg.res, frames=data_cfg.sim_frames)
    if data_dir is not None:
        made = generate_files(
            data_cfg.systems, data_dir, n=data_cfg.n_traj, res=data_cfg.res,
            frames=data_cfg.sim_frames, seed=data_cfg.seed, fmt=data_cfg.file_format,
            device=device or "cpu",
        )  # fmt: skip
        named = [f"{name}={p}" for name, paths in made.items() for p in paths]
        return file_datasets(named, n_frames=n_frames, res=data_cfg.res, frames=data_cfg.sim_frames)
    return memory_datasets(fields if fields is not None else make_fields(data_cfg), n_frames)


def pretrain(
    model_cfg: AViTConfig,
    data_cfg: DataConfig,
    train_cfg: TrainConfig,
    *,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
    fields: dict | None = None,
    files: Sequence[str | Path] | None = None,
    data_dir: str | Path | None = None,
    callback: StepCallback | None = None,
    recipe: TrainRecipe | None = None,
    warm_start: str | Path | None = None,
) -> tuple[AViT, TrainResult]:
    """Multiple physics pretraining of a fresh AViT (data as in ``training_data``).

    ``warm_start``: a pretrained checkpoint with a model card (a shipped asset) whose trainer
    state is lost; ``out_dir`` then continues that run from its weights at the card's step
    (``warm_restart``: fresh Adam moments, the schedule and data order as if resumed).
    """
    if warm_start is not None and out_dir is None:
        raise ValueError("pretrain(warm_start=...) needs out_dir, the run it continues into")
    resuming = out_dir is not None and (Path(out_dir) / CHECKPOINT_DIR).exists()
    start = None
    if warm_start is not None and not resuming:  # a run that has a checkpoint resumes it
        start = _warm_start(warm_start, model_cfg, train_cfg, batch_size)
    data = training_data(
        data_cfg, model_cfg.n_frames, files=files, data_dir=data_dir, fields=fields, device=device
    )
    with torch.random.fork_rng(devices=[]):  # seeded init, global RNG left untouched
        torch.manual_seed(train_cfg.seed)
        model = AViT(model_cfg)
    extra = {
        "data": data_cfg.to_dict(),
        "systems": {s: system_info(s) for s in data},
        "files": [str(p) for p in files] if files else None,
        "batch_size": batch_size,  # for the model card (scifm.mpp.card)
        "train": train_cfg.to_dict(),
    }
    if start is not None:
        weights, step, history, origin = start
        if origin["systems"] != sorted(data):
            raise ValueError(
                f"warm start {warm_start}: trained on {origin['systems']}, not {sorted(data)}"
            )
        model.load_state_dict(weights)
        extra["warm_start"] = origin
        warm_restart(out_dir, model, train_cfg, step, extra=extra, history=history)
    result = fit(
        model,
        data,
        train_cfg,
        batch_size=batch_size,
        data_seed=data_cfg.seed,
        device=device,
        out_dir=out_dir,
        extra=extra,
        callback=callback,
        recipe=recipe,
    )
    return model, result


def _warm_start(
    path: str | Path, model_cfg: AViTConfig, train_cfg: TrainConfig, batch_size: int
) -> tuple[dict[str, torch.Tensor], int, list[dict[str, float]], dict[str, Any]]:
    """(fp32 weights, step, learning curve so far, origin record) of a carded checkpoint."""
    from scifm.mpp.card import curve_records, load_card

    card = load_card(path)
    if not card or not card.get("steps"):
        raise ValueError(f"warm start {path}: no model card with its step count (a shipped asset)")
    model, systems = load_surrogate(path)
    if model.config.to_dict() != model_cfg.to_dict():
        raise ValueError(f"warm start {path}: its model config differs from --model/--set")
    if int(card.get("batch_size", batch_size)) != batch_size:
        raise ValueError(f"warm start {path}: batch {card['batch_size']}, not {batch_size}")
    step = int(card["steps"])
    seconds = float((card.get("wall_time") or {}).get("seconds") or 0.0)
    history = []
    if seconds > 0:  # the card's curve is downsampled, without rates: one mean rate for all
        rate = step * batch_size / seconds  # restores the card's wall time (card.wall_time)
        history = [{**r, "samples_per_s": rate, "from_card": 1.0}
                   for r in curve_records(card.get("learning_curve") or {})]  # fmt: skip
    origin = {
        "checkpoint": str(path), "step": step, "wall_s_before": seconds,
        "weights_dtype": str((card.get("weights") or {}).get("dtype", "float32")),
        "optimizer": "Adam moments restarted at the warm-start step (trainer state lost)",
        "systems": sorted(systems), "recipe": card.get("recipe"),
    }  # fmt: skip
    weights = {k: v.float() for k, v in model.state_dict().items()}
    return weights, step, history, origin


def load_surrogate(path: str | Path, device: str | torch.device = "cpu") -> tuple[AViT, dict]:
    """(model, systems) from a checkpoint: systems maps variant -> field_index, periodic."""
    from scifm.core import load_checkpoint, load_model

    _, model = load_model(path, device, expect_config=AViTConfig)
    extra = load_checkpoint(path)["record"].get("extra", {})
    return model, dict(extra.get("systems", {}))


def finetune(
    model: AViT,
    name: str,
    data: torch.Tensor | Sequence[str | Path],
    train_cfg: TrainConfig,
    *,
    trainable: str = "all",
    new_fields: bool = False,
    field_index: Sequence[int] | None = None,
    batch_size: int = 8,
    data_seed: int = 0,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
    systems: dict | None = None,
    res: int | None = None,
    frames: int | None = None,
    callback: StepCallback | None = None,
) -> tuple[AViT, TrainResult, dict]:
    """Fine-tune ``model`` on variant ``name``: trajectories (N, F, C, H, W) or its files.

    Files are brought to ``res`` and ``frames`` (``scifm.pde.filewindows``) and every
    value they serve is checked (NaN, inf, beyond ``MAX_ABS``) before the model changes. With
    ``new_fields`` the system gets fresh embedding slots (``AViT.add_fields``) instead
    of its reserved ones, as for physics the table never listed; ``field_index`` puts its
    fields in chosen slots instead (one per field, e.g. a held-out system's velocities in the
    slots where a pretraining system's velocities trained). Returns the model, the training
    result and the updated ``systems`` record (saved in the checkpoint).
    """
    from scifm.mpp.train import prepare_finetune

    info = system_info(name)
    if field_index is not None:
        try:
            slots = [int(i) for i in field_index]
            whole = all(not isinstance(i, bool) and i == j for i, j in zip(field_index, slots))
        except (TypeError, ValueError, OverflowError):
            whole = False
        if not whole:
            raise ValueError(f"field_index {list(field_index)}: slots are whole numbers")
        n, k = len(info["fields"]), model.config.n_states
        if new_fields:
            raise ValueError("field_index and new_fields: choose the slots or fresh ones, not both")
        if len(slots) != n or len(set(slots)) != n or not all(0 <= i < k for i in slots):
            raise ValueError(
                f"field_index {slots}: expected {n} distinct slots in [0, {k}), one per field "
                f"of {name} ({', '.join(info['fields'])})"
            )
        info["field_index"] = slots
    T = model.config.n_frames
    if isinstance(data, torch.Tensor):  # check the data before changing the model
        memory_datasets({name: data}, T)
    else:  # every value too: a few trajectories, and a NaN no batch drew would pass unseen
        for ds in file_datasets([f"{name}={p}" for p in data], n_frames=T, res=res,
                                frames=frames).values():  # fmt: skip
            for windows in ds.datasets:
                windows.check_values()
    slots = prepare_finetune(
        model, new_fields=len(info["fields"]) if new_fields else 0, trainable=trainable
    )
    if slots:
        info["field_index"] = slots
    systems = {**(systems or {}), name: info}
    if isinstance(data, torch.Tensor):
        sets = memory_datasets({name: data}, T, systems)
    else:
        paths = [f"{name}={p}" for p in data]
        sets = file_datasets(paths, n_frames=T, res=res, frames=frames, systems=systems)
    result = fit(
        model,
        sets,
        train_cfg,
        batch_size=batch_size,
        data_seed=data_seed,
        device=device,
        out_dir=out_dir,
        extra={"systems": systems},
        callback=callback,
    )
    return model, result, systems
