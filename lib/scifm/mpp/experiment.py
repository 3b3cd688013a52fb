"""The physics mixture MPP trains on: named system variants, their data, and pretraining.

McCabe et al. (arXiv:2310.02994) pretrain on PDEBench's SWE, diffusion-reaction, INS and
compressible NS (CNS at Mach 0.1 and 1.0 count as separate data sets). Here every
variant is simulated on the fly by ``scifm.pde.simulate`` from a seed, so a run is
reproducible from its ``DataConfig`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file

from scifm.core import ConfigMixin, TrainConfig, TrainResult
from scifm.core.train import StepCallback
from scifm.mpp.config import AViTConfig
from scifm.mpp.data import WindowSet
from scifm.mpp.model import AViT
from scifm.mpp.train import fit

# variant name -> (PDE system, physical parameters passed to simulate)
VARIANTS: dict[str, tuple[str, dict[str, float]]] = {
    "swe": ("swe", {}),
    "diffreact": ("diffreact", {}),
    "ins": ("ins", {}),
    "cns_m0.1": ("cns", {"M": 0.1}),
    "cns_m1.0": ("cns", {"M": 1.0}),
}
SPLITS = {"train": 0, "test": 1}


@dataclass(frozen=True)
class DataConfig(ConfigMixin):
    systems: tuple[str, ...] = ("swe", "diffreact", "ins", "cns_m0.1", "cns_m1.0")  # variants
    res: int = 32  # grid cells per side (PDEBench uses 128; 32 keeps CNS affordable on a CPU)
    n_traj: int = 16  # training trajectories per variant
    n_test: int = 4  # held-out trajectories per variant (different seeds)
    sim_frames: int = 21  # frames per trajectory including t = 0 (PDEBench CNS has 21)
    seed: int = 0  # base seed; each variant and split gets its own stream

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


def variant_seed(seed: int, name: str, split: str) -> int:
    """A distinct, stable integer seed per (base seed, variant, split)."""
    return 1_000_003 * seed + 1_000 * sorted(VARIANTS).index(name) + SPLITS[split]


def simulate_variant(
    name: str,
    n: int,
    *,
    res: int,
    n_frames: int,
    seed: int,
    device: str | torch.device = "cpu",
    t_end: float | None = None,
    **params: float,
):
    """Trajectories of variant ``name`` (extra ``params`` override its physics).

    ``t_end`` defaults to the system's PDEBench time span.
    """
    from scifm.pde import simulate

    if name not in VARIANTS:
        raise ValueError(f"system {name!r}: unknown; choose from {sorted(VARIANTS)}")
    system, fixed = VARIANTS[name]
    return simulate(
        system,
        n,
        res=res,
        n_frames=n_frames,
        seed=seed,
        device=device,
        t_end=t_end,
        params={**fixed, **params},
    )


def system_info(name: str) -> dict[str, Any]:
    """Field names, embedding slots and boundary of a variant (JSON-able)."""
    from scifm.pde import get_system

    spec = get_system(VARIANTS[name][0])
    return {
        "fields": list(spec.field_names),
        "field_index": list(spec.field_index),
        "periodic": spec.periodic,
    }


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


def windows(fields: dict, n_frames: int) -> list[WindowSet]:
    """WindowSets (one per variant) from ``make_fields`` output."""
    out = []
    for name, f in fields.items():
        info = system_info(name)
        out.append(WindowSet(name, f, tuple(info["field_index"]), info["periodic"], n_frames))
    return out


def pretrain(
    model_cfg: AViTConfig,
    data_cfg: DataConfig,
    train_cfg: TrainConfig,
    *,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
    fields: dict | None = None,
    callback: StepCallback | None = None,
) -> tuple[AViT, TrainResult]:
    """Multiple physics pretraining of a fresh AViT on ``data_cfg``'s variants."""
    fields = fields if fields is not None else make_fields(data_cfg, "train")
    with torch.random.fork_rng(devices=[]):  # seeded init, global RNG left untouched
        torch.manual_seed(train_cfg.seed)
        model = AViT(model_cfg)
    extra = {"data": data_cfg.to_dict(), "systems": {s: system_info(s) for s in fields}}
    result = fit(
        model,
        windows(fields, model_cfg.n_frames),
        train_cfg,
        batch_size=batch_size,
        data_seed=data_cfg.seed,
        device=device,
        out_dir=out_dir,
        extra=extra,
        callback=callback,
    )
    return model, result


def load_surrogate(path: str | Path, device: str | torch.device = "cpu") -> tuple[AViT, dict]:
    """(model, systems) from a checkpoint: systems maps variant -> field_index, periodic."""
    from scifm.core import load_checkpoint, load_model

    _, model = load_model(path, device, expect_config=AViTConfig)
    extra = load_checkpoint(path)["record"].get("extra", {})
    return model, dict(extra.get("systems", {}))


def finetune(
    model: AViT,
    name: str,
    fields: torch.Tensor,
    train_cfg: TrainConfig,
    *,
    trainable: str = "all",
    new_fields: bool = False,
    batch_size: int = 8,
    data_seed: int = 0,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
    systems: dict | None = None,
    callback: StepCallback | None = None,
) -> tuple[AViT, TrainResult, dict]:
    """Fine-tune ``model`` on trajectories ``fields`` (N, F, C, H, W) of variant ``name``.

    With ``new_fields`` the system gets fresh embedding slots (``AViT.add_fields``) instead
    of its reserved ones, as for physics the table never listed. Returns the model, the
    training result and the updated ``systems`` record (saved in the checkpoint).
    """
    from scifm.mpp.train import prepare_finetune

    info = system_info(name)
    slots = prepare_finetune(
        model, new_fields=len(info["fields"]) if new_fields else 0, trainable=trainable
    )
    if slots:
        info["field_index"] = slots
    systems = {**(systems or {}), name: info}
    ws = WindowSet(
        name, fields, tuple(info["field_index"]), info["periodic"], model.config.n_frames
    )
    result = fit(
        model,
        [ws],
        train_cfg,
        batch_size=batch_size,
        data_seed=data_seed,
        device=device,
        out_dir=out_dir,
        extra={"systems": systems},
        callback=callback,
    )
    return model, result, systems
