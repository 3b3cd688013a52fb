"""Input and output of the AViT: field embedding, hMLP stem and its mirrored decoder.

McCabe et al. (arXiv:2310.02994), section 3: every physical field ever seen owns one column
of a shared embedding matrix; a system uses only its fields' columns, rescaled by
sqrt(n_states / n_fields) so activations have the same scale whatever the number of fields.
The hMLP stem (Touvron et al., 2022) patchifies each frame with non-overlapping
convolutions (k4/s4, k2/s2, k2/s2 for patch 16) separated by RMS instance norms.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# A map whose spread over the grid is within this fraction of its largest value is flat (a
# fluid at rest, a uniform initial state: its spread is float rounding, ~1e-7 of its size)
FLAT_REL = 1e-5


class RMSInstanceNorm2d(nn.Module):
    """Divide each (sample, channel) map by its std over (H, W); learned per-channel gain.

    A map that is flat over the grid (its std within ``FLAT_REL`` of its largest value) is
    left undivided, where the reference would multiply it by 1/eps. The threshold is hard: a
    map just above it is still scaled by up to 1/FLAT_REL, as in the reference.

    The reference also declares a bias that it never uses; we leave it out, since DDP
    requires every parameter to receive a gradient.
    """

    def __init__(self, dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        std = map_std(x)
        # The reference divides a flat map by eps (x / (std + eps)): a spatially uniform
        # input frame comes out ~1e8 times larger and the processor overflows to NaN. A flat
        # map is passed on undivided; every other map is divided exactly as in the reference.
        flat = std <= FLAT_REL * x.detach().abs().amax(dim=(-2, -1), keepdim=True)
        # one pass over the map: the gain over the std, per (sample, channel)
        return x * (self.weight[None, :, None, None] / torch.where(flat, 1.0, std + self.eps))


def map_std(x: torch.Tensor) -> torch.Tensor:
    """``x.std(dim=(-2, -1), keepdim=True)`` (Bessel-corrected) of (..., H, W) maps, in two
    passes (mean, then the norm of the deviations): 8-20x faster on a CPU than ``Tensor.std``,
    whose Welford reduction was a quarter of an AViT step there (benchmarks/results/
    mpp_speed.md), and as accurate in float32 (relative error ~1e-7). A map of one pixel has
    no spread to estimate: NaN, as ``Tensor.std`` gives."""
    flat = x.flatten(-2)
    dev = flat - flat.mean(dim=-1, keepdim=True)
    norm = torch.linalg.vector_norm(dev, dim=-1, keepdim=True)
    n = flat.shape[-1]
    return (norm / math.sqrt(n - 1) if n > 1 else norm * float("nan")).unsqueeze(-1)


class FieldEmbedding(nn.Module):
    """Shared linear map from the n_states field slots to D/4, used column-sparsely."""

    def __init__(self, n_states: int, d_out: int) -> None:
        super().__init__()
        self.n_states = n_states
        self.linear = nn.Linear(n_states, d_out)

    def forward(self, x: torch.Tensor, field_index: torch.Tensor) -> torch.Tensor:
        # x (..., C) with C = len(field_index) -> (..., d_out)
        weight, bias = self.affine(field_index)
        return F.linear(x, weight, bias)

    def affine(self, field_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The map as (weight (d_out, C), bias (d_out,)) for the slots ``field_index``."""
        scale = (self.n_states / field_index.numel()) ** 0.5
        return scale * self.linear.weight[:, field_index], scale * self.linear.bias


class HMLPStem(nn.Module):
    """(N, D/4, H, W) -> (N, D, H/p, W/p) with three patchifying convolutions."""

    def __init__(self, d_model: int, kernels: tuple[int, int, int]) -> None:
        super().__init__()
        d4 = d_model // 4
        k1, k2, k3 = kernels
        self.net = nn.Sequential(
            nn.Conv2d(d4, d4, kernel_size=k1, stride=k1, bias=False),
            RMSInstanceNorm2d(d4),
            nn.GELU(),
            nn.Conv2d(d4, d4, kernel_size=k2, stride=k2, bias=False),
            RMSInstanceNorm2d(d4),
            nn.GELU(),
            nn.Conv2d(d4, d_model, kernel_size=k3, stride=k3, bias=False),
            RMSInstanceNorm2d(d_model),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def from_fields(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        """``forward`` of the field embedding ``x @ weight.T + bias`` of fields x (N, C, H, W),
        in one convolution from the C fields: the embedding is linear and the first
        convolution has no bias, so their composition is a convolution whose bias is constant
        per output channel. The same numbers without the (N, D/4, H, W) embedded grid at full
        resolution, whose memory traffic made a batch of 16 slower per trajectory than one
        on a CPU (benchmarks/results/mpp_speed.md)."""
        conv = self.net[0]
        w = torch.einsum("oekl,ec->ockl", conv.weight, weight)
        b = torch.einsum("oekl,e->o", conv.weight, bias)
        return self.net[1:](F.conv2d(x, w, b, stride=conv.stride))


class HMLPDecoder(nn.Module):
    """Mirror of the stem: (N, D, h, w) -> (N, C, h*p, w*p) for the system's C fields.

    The last transposed convolution has one output channel per field slot and uses only
    the slots in ``field_index``, like the embedding.
    """

    def __init__(self, d_model: int, n_states: int, kernels: tuple[int, int, int]) -> None:
        super().__init__()
        d4 = d_model // 4
        k1, k2, k3 = kernels
        self.net = nn.Sequential(
            nn.ConvTranspose2d(d_model, d4, kernel_size=k3, stride=k3, bias=False),
            RMSInstanceNorm2d(d4),
            nn.GELU(),
            nn.ConvTranspose2d(d4, d4, kernel_size=k2, stride=k2, bias=False),
            RMSInstanceNorm2d(d4),
            nn.GELU(),
        )
        head = nn.ConvTranspose2d(d4, n_states, kernel_size=k1, stride=k1)
        self.stride = k1
        self.out_weight = nn.Parameter(head.weight.detach().clone())  # (d4, n_states, k, k)
        self.out_bias = nn.Parameter(head.bias.detach().clone())  # (n_states,)

    def forward(self, x: torch.Tensor, field_index: torch.Tensor) -> torch.Tensor:
        x = self.net(x)
        return F.conv_transpose2d(
            x, self.out_weight[:, field_index], self.out_bias[field_index], stride=self.stride
        )
