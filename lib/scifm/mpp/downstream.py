"""A broader downstream task: regress a physical parameter from a few frames.

McCabe et al. (arXiv:2310.02994) suggest the pretrained AViT's features carry physics
beyond next-step prediction (inverse problems). Here: mean-pooled processor tokens of a
frozen pretrained model, fed to ridge regression, against the same architecture trained
from scratch with a linear head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset

from scifm.core import DatasetBatches
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


class RegressionWindows(Dataset):
    """(window, target) pairs of one system: items for ``regression_batches``."""

    def __init__(self, x: torch.Tensor, target: torch.Tensor) -> None:
        if x.shape[0] != target.shape[0]:
            raise ValueError(f"x has {x.shape[0]} windows but target has {target.shape[0]}")
        self.x, self.target = x, target  # (N, T, C, H, W), (N,)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.target[i]


@dataclass(frozen=True)
class _CollateRegression:  # a class, not a closure: loader workers may need to pickle it
    field_index: tuple[int, ...]
    periodic: bool

    def __call__(self, items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> dict:
        return {
            "x": torch.stack([x for x, _ in items]),  # (B, T, C, H, W)
            "target": torch.stack([t for _, t in items]),  # (B,)
            "field_index": torch.tensor(self.field_index),
            "periodic": torch.tensor(self.periodic),
        }


def regression_batches(
    x: torch.Tensor,
    target: torch.Tensor,
    field_index: Sequence[int],
    periodic: bool,
    batch_size: int,
    seed: int = 0,
    *,
    accum_steps: int = 1,
) -> DatasetBatches:
    """Shuffled (window, target) batches without replacement, for the core loop."""
    collate = _CollateRegression(tuple(int(i) for i in field_index), bool(periodic))
    return DatasetBatches(
        RegressionWindows(x, target), batch_size, seed, accum_steps=accum_steps, collate=collate
    )
