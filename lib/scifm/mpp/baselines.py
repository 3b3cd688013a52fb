"""Baselines of the MPP paper's tables: persistence and an FNO (Li et al., 2021).

The FNO comes from the ``neuraloperator`` package; it sees the T input frames stacked as
channels and, like the AViT, works on per-sample normalised inputs (RevIN) so that the
comparison is between architectures, not normalisations. One FNO is trained per system,
as in PDEBench and the MPP paper. A window shorter than the FNO's T frames (the first step
of an unrolled training loss, ``scifm.mpp.recipe``) is left-padded with copies of its
first frame, so the FNO trains with the same stability recipe as the AViT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from einops import rearrange
from torch import nn

from scifm.core import ConfigMixin
from scifm.mpp.model import REVIN_EPS


@dataclass(frozen=True)
class FNOConfig(ConfigMixin):
    n_fields: int = 2  # channels C of the one system this FNO models
    n_frames: int = 4  # input window T (stacked as T*C input channels)
    n_modes: int = 8  # Fourier modes kept per spatial axis
    width: int = 24  # hidden channels
    n_layers: int = 4  # Fourier layers

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"n_modes": 4, "width": 8, "n_layers": 2},
        "small": {"n_modes": 8, "width": 24, "n_layers": 4},
        "paper": {"n_modes": 12, "width": 20, "n_layers": 4},  # PDEBench's FNO (~466K at C=4)
    }

    def __post_init__(self) -> None:
        for name in ("n_fields", "n_frames", "n_modes", "width", "n_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"FNOConfig.{name}={getattr(self, name)}: must be >= 1")


class FNOBaseline(nn.Module):
    """(B, T, C, H, W) -> next frame (B, C, H, W); ignores field_index / periodic.

    T may be below ``config.n_frames`` (padded with the first frame), never above it."""

    def __init__(self, config: FNOConfig) -> None:
        super().__init__()
        from neuralop.models import FNO  # heavy import, only when an FNO is built

        self.config = config
        c = config
        self.fno = FNO(
            n_modes=(c.n_modes, c.n_modes),
            in_channels=c.n_frames * c.n_fields,
            out_channels=c.n_fields,
            hidden_channels=c.width,
            n_layers=c.n_layers,
        )

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Tensors only: neuraloperator adds its constructor arguments as ``fno._metadata``,
        which a safetensors checkpoint cannot hold; ``config`` rebuilds the FNO instead."""
        sd = super().state_dict(*args, **kwargs)
        for key in [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]:
            del sd[key]
        return sd

    def forward(
        self,
        x: torch.Tensor,
        field_index: Sequence[int] | torch.Tensor | None = None,
        periodic: Any = None,
    ) -> torch.Tensor:
        _, T, C = x.shape[:3]
        if 1 <= T < self.config.n_frames:  # a short window: repeat its first frame
            x = torch.cat([x[:, :1].expand(-1, self.config.n_frames - T, -1, -1, -1), x], dim=1)
            T = self.config.n_frames
        if (T, C) != (self.config.n_frames, self.config.n_fields):
            raise ValueError(
                f"x has T={T}, C={C}: this FNO was built for T={self.config.n_frames}, "
                f"C={self.config.n_fields}"
            )
        with torch.no_grad():
            std, mean = torch.std_mean(x, dim=(1, 3, 4), keepdim=True)
            std = std + REVIN_EPS
        y = self.fno(rearrange((x - mean) / std, "b t c h w -> b (t c) h w"))
        return y * std[:, 0] + mean[:, 0]
