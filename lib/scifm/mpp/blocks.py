"""The AViT processor block: time attention, then axial space attention, then an MLP.

McCabe et al. (arXiv:2310.02994), section 3 and appendix: attention over time runs for
each spatial token separately; attention over space is axial (along x and along y, the two
results averaged), which keeps the cost linear in each side of the token grid. Queries and
keys are layer-normalised per head; residual branches carry LayerScale and DropPath.
Tokens are kept as image-like maps ``(B, T, D, h, w)`` so norms are instance norms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from scifm.core.rng import drop_path
from scifm.mpp.position import RelativePositionBias
from scifm.mpp.stem import RMSInstanceNorm2d


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch for a random subset of samples in training.

    Rows are samples (``b``) or sample-major frames (``(b t)``). The masks are keyed by
    (seed, step, global sample position) inside ``scifm.core.train`` (``core.rng.drop_path``),
    so data-parallel ranks draw different masks and equal one process.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B or B*T, ...)
        return drop_path(x, self.p, self.training)


def pointwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a 1x1, stride-1 ``conv`` on (N, C, H, W), as one batched matmul over
    the maps: the same numbers, and up to 2.6x faster on a CPU at 64 maps, where PyTorch
    takes its slow im2col path for 1x1 kernels (benchmarks/results/mpp_speed.md). The
    weights stay those of ``conv`` (checkpoints are unchanged)."""
    n, c, h, w = x.shape
    weight = conv.weight.view(conv.out_channels, c)
    flat = x.reshape(n, c, h * w)
    if conv.bias is None:
        y = torch.matmul(weight, flat)
    else:
        y = torch.baddbmm(conv.bias.view(1, -1, 1).expand(n, -1, -1),
                          weight.unsqueeze(0).expand(n, -1, -1), flat)  # fmt: skip
    return y.view(n, conv.out_channels, h, w)


class QKVHead(nn.Module):
    """1x1 conv to q, k, v with per-head layer norm on q and k."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.proj = nn.Conv2d(d_model, 3 * d_model, 1)
        self.q_norm = nn.LayerNorm(d_model // n_heads)
        self.k_norm = nn.LayerNorm(d_model // n_heads)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # x (N, D, h, w) -> q, k, v each (N, heads, h, w, head_dim)
        qkv = rearrange(pointwise(self.proj, x), "n (he c) h w -> n he h w c", he=self.n_heads)
        q, k, v = qkv.tensor_split(3, dim=-1)
        return self.q_norm(q), self.k_norm(k), v


class TimeAttention(nn.Module):
    """Full attention over the T frames of each spatial token (no MLP, as in the reference)."""

    def __init__(self, cfg, drop_path: float) -> None:
        super().__init__()
        d = cfg.d_model
        self.norm_in = nn.InstanceNorm2d(d, affine=True)
        self.qkv = QKVHead(d, cfg.n_heads)
        self.norm_out = nn.InstanceNorm2d(d, affine=True)
        self.out = nn.Conv2d(d, d, 1)
        self.rel_bias = RelativePositionBias(
            n_heads=cfg.n_heads, n_buckets=cfg.n_buckets, max_distance=cfg.max_distance
        )
        self.gamma = nn.Parameter(cfg.layer_scale_init * torch.ones(d))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, T, D, h, w) -> the same; ``last_only``: only the last frame's output
        (B, 1, D, h, w), its queries attending to every frame as before (exact: the norms
        and the projections act on each frame alone)."""
        B, T, _, H, W = x.shape
        y = self.norm_in(rearrange(x, "b t d h w -> (b t) d h w"))
        q, k, v = self.qkv(y)  # each ((b t), he, h, w, c)
        q, k, v = (rearrange(z, "(b t) he h w c -> (b h w) he t c", t=T) for z in (q, k, v))
        bias = self.rel_bias(T).to(q.dtype)
        if last_only:
            q, bias, x = q[:, :, -1:], bias[:, :, -1:], x[:, -1:]
        t_out = q.shape[2]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        y = rearrange(y, "(b h w) he t c -> (b t) (he c) h w", b=B, h=H, w=W)
        y = pointwise(self.out, self.norm_out(y))
        y = rearrange(y, "(b t) d h w -> b t d h w", t=t_out)
        return x + self.drop_path(y * self.gamma[:, None, None])


class Mlp(nn.Module):
    def __init__(self, d_model: int, ratio: float) -> None:
        super().__init__()
        hidden = int(d_model * ratio)
        self.fc1 = nn.Linear(d_model, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., D)
        return self.fc2(self.act(self.fc1(x)))


class AxialSpaceAttention(nn.Module):
    """Attention along x and along y (averaged), then an MLP; frames are independent here."""

    def __init__(self, cfg, drop_path: float) -> None:
        super().__init__()
        d = cfg.d_model
        self.norm_in = RMSInstanceNorm2d(d)
        self.qkv = QKVHead(d, cfg.n_heads)
        self.norm_out = RMSInstanceNorm2d(d)
        self.out = nn.Conv2d(d, d, 1)
        self.rel_bias = RelativePositionBias(
            n_heads=cfg.n_heads, n_buckets=cfg.n_buckets, max_distance=cfg.max_distance
        )
        self.gamma_att = nn.Parameter(cfg.layer_scale_init * torch.ones(d))
        self.mlp = Mlp(d, cfg.mlp_ratio)
        self.mlp_norm = RMSInstanceNorm2d(d)
        self.gamma_mlp = nn.Parameter(cfg.layer_scale_init * torch.ones(d))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, periodic: tuple[bool, bool]) -> torch.Tensor:
        _, _, H, W = x.shape  # (B*T frames, D, H, W)
        q, k, v = self.qkv(self.norm_in(x))  # each (N, he, H, W, c)
        # along x (the last axis, W)
        qx, kx, vx = (rearrange(z, "n he h w c -> (n h) he w c") for z in (q, k, v))
        bx = self.rel_bias(W, periodic[1]).to(q.dtype)
        yx = F.scaled_dot_product_attention(qx, kx, vx, attn_mask=bx)
        yx = rearrange(yx, "(n h) he w c -> n (he c) h w", h=H)
        # along y (axis H)
        qy, ky, vy = (rearrange(z, "n he h w c -> (n w) he h c") for z in (q, k, v))
        by = self.rel_bias(H, periodic[0]).to(q.dtype)
        yy = F.scaled_dot_product_attention(qy, ky, vy, attn_mask=by)
        yy = rearrange(yy, "(n w) he h c -> n (he c) h w", w=W)
        y = pointwise(self.out, self.norm_out((yx + yy) / 2))
        x = x + self.drop_path(y * self.gamma_att[:, None, None])
        y = rearrange(self.mlp(rearrange(x, "n d h w -> n h w d")), "n h w d -> n d h w")
        return x + self.drop_path(self.mlp_norm(y) * self.gamma_mlp[:, None, None])


class SpaceTimeBlock(nn.Module):
    def __init__(self, cfg, drop_path: float) -> None:
        super().__init__()
        self.time = TimeAttention(cfg, drop_path)
        self.space = AxialSpaceAttention(cfg, drop_path)

    def forward(
        self, x: torch.Tensor, periodic: tuple[bool, bool], last_only: bool = False
    ) -> torch.Tensor:
        """(B, T, D, h, w) -> the same, or with ``last_only`` the last frame (B, 1, D, h, w):
        space attention and the MLP act on each frame alone, so the frames a prediction
        does not read need not pass them in the last block."""
        B = x.shape[0]
        x = self.time(x, last_only)  # (B, T or 1, D, h, w)
        T = x.shape[1]
        x = self.space(rearrange(x, "b t d h w -> (b t) d h w"), periodic)
        return rearrange(x, "(b t) d h w -> b t d h w", b=B, t=T)
