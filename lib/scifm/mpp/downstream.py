"""A broader downstream task: regress a physical parameter from a few frames.

McCabe et al. (arXiv:2310.02994) suggest the pretrained AViT's features carry physics
beyond next-step prediction (inverse problems). Here: mean-pooled processor tokens of a
frozen pretrained model, fed to ridge regression, against the same architecture trained
from scratch with a linear head.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from scifm.mpp.config import AViTConfig
from scifm.mpp.model import AViT


@torch.no_grad()
def pooled_features(
    model: AViT,
    x: torch.Tensor,
    field_index: Sequence[int],
    periodic: bool = False,
    batch_size: int = 16,
) -> torch.Tensor:
    """(N, T, C, H, W) windows -> (N, D) tokens averaged over time and space."""
    out = []
    for i in range(0, x.shape[0], batch_size):
        tokens = model.encode(x[i : i + batch_size], field_index, periodic)[0]
        out.append(tokens.mean(dim=(1, 3, 4)).float().cpu())
    return torch.cat(out)


class ParamRegressor(nn.Module):
    """An AViT encoder with a linear head on its pooled tokens: (B, T, C, H, W) -> (B,)."""

    def __init__(self, config: AViTConfig) -> None:
        super().__init__()
        self.config = config
        self.avit = AViT(config)
        self.head = nn.Linear(config.d_model, 1)

    def forward(
        self,
        x: torch.Tensor,
        field_index: Sequence[int] | torch.Tensor,
        periodic: bool | torch.Tensor = False,
    ) -> torch.Tensor:
        tokens = self.avit.encode(x, field_index, periodic)[0]
        return self.head(tokens.mean(dim=(1, 3, 4))).squeeze(-1)


def regression_loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE on a standardised target ``batch["target"]`` (B,)."""
    pred = model(batch["x"], batch["field_index"], batch["periodic"])
    loss = (pred - batch["target"]).pow(2).mean()
    return loss, {"mse": float(loss.detach())}


class RegressionBatches:
    """Deterministic shuffled batches of (window, target) for the core loop."""

    def __init__(
        self,
        x: torch.Tensor,
        target: torch.Tensor,
        field_index: Sequence[int],
        periodic: bool,
        batch_size: int,
        seed: int = 0,
    ) -> None:
        if x.shape[0] != target.shape[0]:
            raise ValueError(f"x has {x.shape[0]} windows but target has {target.shape[0]}")
        self.x, self.target = x, target
        self.field_index, self.periodic = list(field_index), periodic
        self.batch_size, self.seed = batch_size, seed

    def get(self, step: int, micro: int, rank: int = 0, world_size: int = 1) -> dict:
        rng = np.random.default_rng([self.seed, step, micro])
        idx = torch.as_tensor(rng.integers(self.x.shape[0], size=self.batch_size))
        idx = idx[rank::world_size]
        return {
            "x": self.x[idx],
            "target": self.target[idx],
            "field_index": torch.tensor(self.field_index),
            "periodic": torch.tensor(self.periodic),
        }
