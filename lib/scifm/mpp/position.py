"""T5 relative position bias with optional periodic wrapping (the AViT's only position signal).

Raffel et al. (T5) bucket a signed offset into ``n_buckets`` bins, exact for small offsets
and logarithmic beyond; MPP uses it for time and for each spatial axis. For a periodic axis
of length L the offset j - i is wrapped into [-L/2, L/2) so that the two edges are close.
(The reference code wraps with ``% (L // 2)``, which maps some offsets to the wrong
distance; we wrap modulo L.)
"""

from __future__ import annotations

import math

import torch
from torch import nn


def wrap_offsets(rel: torch.Tensor, length: int) -> torch.Tensor:
    """Wrap signed offsets on a ring of ``length`` sites into [-length/2, length/2)."""
    half = length // 2
    return torch.remainder(rel + half, length) - half


def t5_bucket(rel: torch.Tensor, n_buckets: int, max_distance: int) -> torch.Tensor:
    """Bidirectional T5 bucket of each signed offset (key - query); long tensor, same shape."""
    half = n_buckets // 2
    ret = (rel > 0).long() * half
    n = rel.abs()
    max_exact = half // 2
    large = (
        max_exact
        + (
            torch.log(n.float().clamp(min=1) / max_exact)
            / math.log(max_distance / max_exact)
            * (half - max_exact)
        ).long()
    )
    large = large.clamp(max=half - 1)
    return ret + torch.where(n < max_exact, n, large)


class RelativePositionBias(nn.Module):
    """Learned per-head bias ``(1, n_heads, L, L)`` added to attention logits."""

    def __init__(self, *, n_heads: int, n_buckets: int = 32, max_distance: int = 128) -> None:
        super().__init__()
        self.n_buckets = n_buckets
        self.max_distance = max_distance
        self.bias = nn.Embedding(n_buckets, n_heads)

    def forward(self, length: int, periodic: bool = False) -> torch.Tensor:
        pos = torch.arange(length, device=self.bias.weight.device)
        rel = pos[None, :] - pos[:, None]  # (L, L): key - query
        if periodic:
            rel = wrap_offsets(rel, length)
        buckets = t5_bucket(rel, self.n_buckets, self.max_distance)
        return self.bias(buckets).permute(2, 0, 1).unsqueeze(0)  # (1, heads, L, L)
