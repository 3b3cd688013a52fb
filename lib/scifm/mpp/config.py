"""Configuration of the AViT, the Axial Vision Transformer of Multiple Physics Pretraining.

Follows McCabe et al., "Multiple Physics Pretraining for Physical Surrogate Models"
(arXiv:2310.02994). Paper sizes Ti/S/B/L use 12 field slots and patch 16; "tiny" is for
tests and "small" trains on a laptop CPU at 32^2 or 64^2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from scifm.core import ConfigMixin

PATCH_SIZES = (4, 8, 16)


@dataclass(frozen=True)
class AViTConfig(ConfigMixin):
    d_model: int = 192  # token width D; the field embedding and hMLP stem use D/4
    n_heads: int = 3  # attention heads in both time and axial space attention
    n_layers: int = 12  # space-time blocks (time attention, axial attention, MLP)
    n_states: int = 12  # field slots in the shared embedding (12 in the reference)
    patch_size: int = 16  # total stem stride: 16 as published; 8 or 4 for 64^2/32^2 grids
    mlp_ratio: float = 4.0  # hidden width of the MLP after axial attention, in units of D
    drop_path: float = 0.2  # DropPath rate of the last block; linspace(0, drop_path) over blocks
    layer_scale_init: float = 1e-6  # LayerScale initial value (residual branches start near 0)
    n_buckets: int = 32  # T5 relative position buckets
    max_distance: int = 128  # T5 bucket range: offsets beyond it share the last bucket
    n_frames: int = 16  # input window length T the model is trained with (any T runs)
    # Not in the paper (which predicts the state): predict the change from the last input
    # frame, starting from persistence. Worth it at CPU scale (few hundred steps).
    predict_delta: bool = False

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"d_model": 32, "n_heads": 2, "n_layers": 2, "patch_size": 8, "n_frames": 4,
                 "drop_path": 0.0, "predict_delta": True},
        "small": {"d_model": 96, "n_heads": 3, "n_layers": 4, "patch_size": 8, "n_frames": 4,
                  "drop_path": 0.05, "predict_delta": True},
        "Ti": {"d_model": 192, "n_heads": 3, "n_layers": 12},
        "S": {"d_model": 384, "n_heads": 6, "n_layers": 12},
        "B": {"d_model": 768, "n_heads": 12, "n_layers": 12},
        "L": {"d_model": 1024, "n_heads": 16, "n_layers": 24},
    }  # fmt: skip

    def __post_init__(self) -> None:
        if self.d_model < 4 or self.d_model % 4:
            raise ValueError(f"AViTConfig.d_model={self.d_model}: must be a positive multiple of 4")
        if self.n_heads < 1 or self.d_model % self.n_heads:
            raise ValueError(
                f"AViTConfig.n_heads={self.n_heads}: must divide d_model={self.d_model}"
            )
        if self.n_layers < 1 or self.n_states < 1 or self.n_frames < 1:
            raise ValueError("AViTConfig: n_layers, n_states and n_frames must be >= 1")
        if self.patch_size not in PATCH_SIZES:
            raise ValueError(
                f"AViTConfig.patch_size={self.patch_size}: expected one of {PATCH_SIZES}"
            )
        if not 0 <= self.drop_path < 1:
            raise ValueError(f"AViTConfig.drop_path={self.drop_path}: expected [0, 1)")
        if self.n_buckets < 4 or self.n_buckets % 2:
            raise ValueError(f"AViTConfig.n_buckets={self.n_buckets}: expected an even int >= 4")

    @property
    def d_embed(self) -> int:
        """Width of the field embedding and of the stem's inner convolutions (D/4)."""
        return self.d_model // 4

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def stem_kernels(self) -> tuple[int, int, int]:
        """Kernel = stride of the three stem convolutions (4, 2, 2 for patch 16)."""
        return (self.patch_size // 4, 2, 2)
