"""Evaluation of surrogates: one-step NRMSE over windows and rollout error against a solver.

The metric is MPP's NRMSE (McCabe et al., arXiv:2310.02994): the mean over (sample, field)
of sqrt(mean_xy(err^2) / mean_xy(y^2)).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from scifm.mpp.metrics import nmse_per_field
from scifm.mpp.rollout import Predictor, rollout
from scifm.pde.windows import collate_windows


@torch.no_grad()
def one_step_nrmse_fields(
    step_fn: Predictor,
    windows: Dataset,
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    max_windows: int | None = None,
) -> list[float]:
    """Next-frame NRMSE of each field (in the windows' field order), mean over windows.

    Their mean is :func:`one_step_nrmse`; a model can beat persistence on the whole while
    leaving one field at persistence, which only this shows.
    """
    n = len(windows) if max_windows is None else min(len(windows), max_windows)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("one_step_nrmse: no windows to evaluate")
    total, count = None, 0
    for start in range(0, n, batch_size):
        b = collate_windows([windows[i] for i in range(start, min(start + batch_size, n))])
        pred = step_fn(b["x"].to(device))
        per = nmse_per_field(pred, b["y"].to(device)).sqrt().sum(dim=0)  # (C,)
        total = per if total is None else total + per
        count += len(b["y"])
    return [float(v) / count for v in total]


def one_step_nrmse(
    step_fn: Predictor,
    windows: Dataset,
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    max_windows: int | None = None,
) -> float:
    """Mean NRMSE of the next frame over (all or the first ``max_windows``) windows and
    their fields.

    ``windows``: one system's windows (``TrajectoryWindows``, ``FileWindows``, ...).
    """
    fields = one_step_nrmse_fields(
        step_fn, windows, batch_size=batch_size, device=device, max_windows=max_windows
    )
    return float(np.mean(fields))


def one_step_summary(
    step_fn: Predictor,
    windows: Dataset,
    fields: list[str],
    *,
    device: str | torch.device = "cpu",
) -> dict:
    """``{"avit", "persistence", "fields": {name: {"avit", "persistence"}}}``: the model's and
    persistence's one-step NRMSE, overall (:func:`one_step_nrmse`) and per field, ``fields``
    naming the windows' fields in order (a length mismatch is refused)."""
    from scifm.mpp.rollout import persistence_step

    avit = one_step_nrmse_fields(step_fn, windows, device=device)
    flat = one_step_nrmse_fields(persistence_step, windows, device=device)
    rows = zip(fields, avit, flat, strict=True)
    return {
        "avit": float(np.mean(avit)),
        "persistence": float(np.mean(flat)),
        "fields": {n: {"avit": a, "persistence": p} for n, a, p in rows},
    }


@torch.no_grad()
def rollout_nrmse(
    step_fn: Predictor,
    fields: torch.Tensor,
    n_frames: int,
    n_steps: int,
    *,
    start: int = 0,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Per-step NRMSE (n_steps,) of rolling out from frames [start, start+T) of ``fields``.

    ``fields`` is (N, F, C, H, W) solver output with F >= start + n_frames + n_steps.
    """
    need = start + n_frames + n_steps
    if fields.shape[1] < need:
        raise ValueError(
            f"fields has {fields.shape[1]} frames; rollout of {n_steps} steps after a "
            f"{n_frames}-frame context from frame {start} needs {need}"
        )
    ctx = fields[:, start : start + n_frames].to(device)
    truth = fields[:, start + n_frames : need].to(device)
    _, err = rollout(step_fn, ctx, n_steps, truth=truth)
    return err.numpy()
