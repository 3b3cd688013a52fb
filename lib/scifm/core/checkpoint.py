"""Checkpoints: safetensors weights + JSON config and training state, written atomically.

Layout of a checkpoint directory::

    <path>/model.safetensors   model weights
    <path>/config.json         format tag, model and config class names, config,
                               caller's extra JSON (e.g. a fitted scaler), sha256 of
                               every other file in the directory
    <path>/trainer.safetensors optimizer tensors                    (training only)
    <path>/trainer.json        step, optimizer hyper-parameters    (training only)

Writes go to a temporary sibling directory that is renamed into place, so a crash
never leaves a half-written checkpoint; the sha256 record catches truncated or
swapped files. Nothing is unpickled, and only classes inside ``scifm`` are
imported when rebuilding a model.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from scifm.core.rng import seeded

FORMAT = "scifm-checkpoint/1"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAINER_TENSORS = "trainer.safetensors"
TRAINER_JSON = "trainer.json"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupt or does not match what was asked."""


def _qualname(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(name: str, path: Path) -> type:
    module, _, attr = name.partition(":")
    if not (module == "scifm" or module.startswith("scifm.")) or not attr:
        raise CheckpointError(
            f"{path / CONFIG_FILE}: class {name!r} is not a scifm class; refusing to import it"
        )
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(f"{path / CONFIG_FILE}: cannot find class {name!r}: {exc}") from exc
    return obj


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    config: Any,
    *,
    extra: dict[str, Any] | None = None,
    trainer_tensors: dict[str, torch.Tensor] | None = None,
    trainer_state: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (built from ``config``) to the directory ``path``, atomically.

    ``config`` must have ``to_dict()`` (a ``ConfigMixin``) and ``model`` must be
    constructible as ``type(model)(config)``. ``extra`` is any JSON the caller
    needs to rebuild predictions (a value scaler, field names, statistics).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # unwrap DDP / compile wrappers
    model = getattr(model, "_orig_mod", model)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        save_file(_contiguous(model.state_dict()), str(tmp / MODEL_FILE))
        if trainer_tensors is not None:
            save_file(_contiguous(trainer_tensors), str(tmp / TRAINER_TENSORS))
            (tmp / TRAINER_JSON).write_text(json.dumps(trainer_state or {}, indent=2))
        files = sorted(p.name for p in tmp.iterdir())
        record = {
            "format": FORMAT,
            "model": _qualname(model),
            "config_class": _qualname(config),
            "config": config.to_dict(),
            "extra": extra or {},
            "sha256": {name: _sha256(tmp / name) for name in files},
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        for p in tmp.iterdir():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
        old = path.with_name(f".{path.name}.old")
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _resolve(path: Path) -> Path:
    """Recover from a crash between the two renames of a save (old copy still intact)."""
    old = path.with_name(f".{path.name}.old")
    if not path.exists() and old.exists():
        return old
    return path


def read_record(path: str | Path) -> dict[str, Any]:
    """Read and check ``config.json`` of a checkpoint and the hashes of its files."""
    path = _resolve(Path(path))
    cfg_file = path / CONFIG_FILE
    if not path.is_dir():
        raise CheckpointError(f"{path}: no checkpoint directory here")
    if not cfg_file.is_file():
        raise CheckpointError(f"{path}: missing {CONFIG_FILE}; not a scifm checkpoint")
    try:
        record = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_file}: not valid JSON ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_file}: format is not {FORMAT!r}")
    for key in ("model", "config_class", "config", "sha256"):
        if key not in record:
            raise CheckpointError(f"{cfg_file}: missing key {key!r}")
    for name, digest in record["sha256"].items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{f}: listed in {CONFIG_FILE} but missing")
        if _sha256(f) != digest:
            raise CheckpointError(
                f"{f}: contents do not match the sha256 in {CONFIG_FILE} "
                "(truncated, corrupt, or from another checkpoint)"
            )
    record["_path"] = str(path)
    return record


def _load_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{file}: cannot read safetensors ({exc})") from exc


def load_model(
    path: str | Path,
    device: str | torch.device = "cpu",
    *,
    expect_config: type | None = None,
) -> tuple[Any, torch.nn.Module]:
    """Rebuild ``(config, model)`` from a checkpoint directory, weights loaded, in eval mode."""
    record = read_record(path)
    path = Path(record["_path"])
    cfg_cls = _import_class(record["config_class"], path)
    if expect_config is not None and cfg_cls is not expect_config:
        raise CheckpointError(
            f"{path}: holds a {cfg_cls.__name__} model, expected {expect_config.__name__}"
        )
    model_cls = _import_class(record["model"], path)
    try:
        config = cfg_cls.from_dict(record["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path / CONFIG_FILE}: config does not validate: {exc}") from exc
    with seeded(0):  # the init is overwritten below; the caller's RNG stream is left alone
        model = model_cls(config)
    state = _load_tensors(path / MODEL_FILE)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or bad_shapes:
        raise CheckpointError(
            f"{path / MODEL_FILE}: weights do not match the config "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]}, shapes {bad_shapes[:5]})"
        )
    model.load_state_dict(state)
    return config, model.to(device).eval()


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Everything in a checkpoint: record (config, extra), weights, trainer tensors/state."""
    record = read_record(path)
    p = Path(record["_path"])
    out: dict[str, Any] = {"record": record, "model": _load_tensors(p / MODEL_FILE)}
    if (p / TRAINER_TENSORS).exists():
        out["trainer_tensors"] = _load_tensors(p / TRAINER_TENSORS)
        out["trainer_state"] = json.loads((p / TRAINER_JSON).read_text())
    return out
