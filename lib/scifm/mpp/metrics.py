"""MPP's loss and metric: normalised MSE per (sample, field) and its square root.

McCabe et al. (arXiv:2310.02994): NMSE = mean_xy((yhat - y)^2) / (eps + mean_xy(y^2)),
averaged over samples and fields; the reported NRMSE is the mean of sqrt(NMSE).
"""

from __future__ import annotations

import torch

NMSE_EPS = 1e-7


def nmse_per_field(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) pair -> (B, C) normalised squared error of each sample and field."""
    if pred.shape != target.shape:
        raise ValueError(
            f"pred {tuple(pred.shape)} and target {tuple(target.shape)}: shapes must match"
        )
    err = (pred.float() - target.float()).pow(2).mean(dim=(-2, -1))
    return err / (NMSE_EPS + target.float().pow(2).mean(dim=(-2, -1)))


def nmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The training loss: NMSE averaged over samples and fields (a scalar)."""
    return nmse_per_field(pred, target).mean()


def nrmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The reported metric: mean over (sample, field) of sqrt(NMSE) (a scalar)."""
    return nmse_per_field(pred, target).sqrt().mean()
