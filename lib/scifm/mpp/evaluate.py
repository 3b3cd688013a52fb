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
def one_step_nrmse(
    step_fn: Predictor,
    windows: Dataset,
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    max_windows: int | None = None,
) -> float:
    """Mean NRMSE of the next frame over (all or the first ``max_windows``) windows.

    ``windows``: one system's windows (``TrajectoryWindows``, ``FileWindows``, ...).
    """
    n = len(windows) if max_windows is None else min(len(windows), max_windows)  # type: ignore[arg-type]
    total, count = 0.0, 0
    for start in range(0, n, batch_size):
        b = collate_windows([windows[i] for i in range(start, min(start + batch_size, n))])
        pred = step_fn(b["x"].to(device))
        per = nmse_per_field(pred, b["y"].to(device)).sqrt()  # (B, C)
        total += float(per.sum())
        count += per.numel()
    return total / max(count, 1)


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
