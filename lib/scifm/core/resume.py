"""Resuming a training run: its files, its trainer state and the checks that it is the same run.

``core.train`` writes a run folder: ``checkpoint/`` (the model, the optimizer's tensors and a
JSON trainer state with the step and the LR schedule) and ``metrics.jsonl`` (one record a
logged step). A resume restores the optimizer (``restore_trainer``), drops log records past
the checkpoint (``truncate_log``) and refuses to continue another run: other weights or data
(``check_same_run``) or another LR schedule (``check_schedule``). A run that failed before
it logged a step leaves no empty folder behind (``new_folders``, ``drop_empty_run``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from scifm.core.schedule import warmup_cosine

if TYPE_CHECKING:
    from scifm.core.train import TrainConfig

CHECKPOINT_DIR = "checkpoint"
METRICS_FILE = "metrics.jsonl"


def read_step_records(path: str | Path, *, up_to: float | None = None) -> list[dict[str, Any]]:
    """The records of a JSON-lines log with a ``step`` each (``metrics.jsonl``, an evaluation
    curve), sorted by step, the LAST record kept per step; empty when it holds none.

    A resumed run repeats the steps after its checkpoint; the later records are the ones
    whose weights the checkpoint continued from. ``up_to`` drops steps past a checkpoint.
    """
    path = Path(path)
    by_step: dict[int, dict[str, Any]] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read metrics ({exc.strerror or exc})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            step = int(rec["step"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ValueError(
                f"{path}:{n}: not a metrics record; expected one JSON object with 'step' a line"
            ) from None
        if up_to is None or step <= up_to:
            by_step[step] = rec
    return [by_step[s] for s in sorted(by_step)]


def read_metrics(path: str | Path, *, up_to: int | None = None) -> list[dict[str, float]]:
    """``read_step_records`` of a ``metrics.jsonl`` that must hold at least one record."""
    records = read_step_records(path, up_to=up_to)
    if not records:
        raise ValueError(f"{path}: no metrics records (at or before step {up_to})")
    return records


SCHEDULE_FIELDS = ("steps", "lr", "warmup_steps", "min_lr_ratio")  # what the LR at a step is


def schedule_record(cfg: TrainConfig) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in SCHEDULE_FIELDS}


def check_schedule(
    ckpt: Path, state: dict[str, Any], cfg: TrainConfig, moments: bool = True
) -> None:
    """A resume continues the checkpoint's LR schedule; another one is refused, since it
    would move the LR mid-run (a longer cosine re-warms it: the curve of the first schedule
    then no longer says what the run did; a flat schedule, ``min_lr_ratio`` 1, may grow, as
    xVal's ``converge`` chunks do). A checkpoint older than the schedule record is
    checked by its last LR against ``cfg``'s at that step (one with no Adam ``moments``, a
    warm restart, set no LR yet and is not checked)."""
    saved = state.get("schedule")
    if saved is not None:
        now = schedule_record(cfg)
        if cfg.min_lr_ratio == 1.0 == saved.get("min_lr_ratio"):  # flat after warmup: the
            saved, now = {**saved, "steps": 0}, {**now, "steps": 0}  # length changes no LR
        if saved == now:
            return
        diff = ", ".join(f"{k} {saved.get(k)} -> {v}" for k, v in now.items()
                         if saved.get(k) != v)  # fmt: skip
    else:
        step, groups = int(state.get("step", 0)), state.get("param_groups") or []
        if step < 1 or not groups or not moments:
            return
        last = float(groups[0]["lr"])
        want = cfg.lr * warmup_cosine(step - 1, total=cfg.steps, warmup=cfg.warmup_steps,
                                      min_ratio=cfg.min_lr_ratio)  # fmt: skip
        if math.isclose(last, want, rel_tol=1e-4):
            return
        diff = f"its LR at step {step} was {last:.4g}, this schedule's is {want:.4g}"
    raise ValueError(
        f"{ckpt}: resumed with another LR schedule ({diff}) than the run was trained on; "
        "resume with the run's own schedule (stop_at cuts it at a milestone), start a fresh "
        "run with the longer one, or use warm_restart to continue the weights on a new "
        "schedule on purpose"
    )


def pack_trainer_state(
    opt: torch.optim.Optimizer, step: int, cfg: TrainConfig
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten optimizer state into safetensors-able tensors and JSON (with ``cfg``'s LR
    schedule, which a resume must continue: ``check_schedule``).

    No RNG state: every stream is a function of (seed, step, ...); see ``core.train``'s
    module docstring.
    """
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"opt.{idx}.{k}"] = v
            else:
                scalars.setdefault(str(idx), {})[k] = v
    return tensors, {"step": step, "param_groups": sd["param_groups"], "opt_scalars": scalars,
                     "schedule": schedule_record(cfg)}  # fmt: skip


def restore_trainer(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], state: dict[str, Any]
) -> int:
    """Load the optimizer state; returns the step to resume at (old ``rng.*`` keys ignored)."""
    per_param: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            per_param.setdefault(int(idx), {})[name] = v
    for idx, extra in state.get("opt_scalars", {}).items():
        per_param.setdefault(int(idx), {}).update(extra)
    opt.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
    return int(state["step"])


def truncate_log(path: Path, upto_step: int) -> None:
    """Drop records past the resume point so the log has each step once."""
    if not path.exists():
        return
    keep = [
        ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= upto_step
    ]
    path.write_text("".join(ln + "\n" for ln in keep))


# ``extra`` entries that say what a run trains on: a resume must find the same ones.
RUN_IDENTITY_KEYS = ("data", "task", "files", "systems", "split")


def check_same_run(out: Path, record: dict[str, Any], model_config: Any, extra: Any) -> None:
    """Refuse to resume ``out``'s checkpoint with another model config or other data.

    Resuming silently would train (or report) the old weights on the new request.
    """

    def plain(v: Any) -> Any:
        return json.loads(json.dumps(v, default=str))

    mine = plain(model_config.to_dict() if hasattr(model_config, "to_dict") else model_config)
    theirs = plain(record.get("config"))
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    extra, kept = plain(extra or {}), plain(record.get("extra") or {})
    diff += [k for k in RUN_IDENTITY_KEYS if k in extra and k in kept and extra[k] != kept[k]]
    if diff:
        raise ValueError(
            f"{out}: holds a run with other settings ({', '.join(diff)} differ); resume it "
            "with the same settings, or train into a fresh output folder"
        )


def new_folders(out_dir: str | Path | None) -> tuple[Path, Path] | None:
    """(run folder, its highest missing ancestor), absolute, if ``out_dir`` does not exist yet."""
    if out_dir is None or Path(out_dir).exists():
        return None
    out = Path(out_dir).absolute()
    top = out
    while not top.parent.exists():
        top = top.parent
    return out, top


def drop_empty_run(out: Path, top: Path) -> None:
    """Remove the run folder a failed ``train`` made, and the empty folders above it up to
    ``top``, if it holds nothing worth keeping (``new_folders`` gives both).

    A folder with a checkpoint or a logged step stays (the log shows how the run failed).
    """
    log = out / METRICS_FILE
    if not out.is_dir() or (out / CHECKPOINT_DIR).exists():
        return
    if any(p != log for p in out.iterdir()) or (log.exists() and log.stat().st_size > 0):
        return
    log.unlink(missing_ok=True)
    out.rmdir()
    while out != top and not any((out := out.parent).iterdir()):
        out.rmdir()
