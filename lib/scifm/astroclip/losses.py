"""Contrastive losses: the symmetric InfoNCE (CLIP) loss of AstroCLIP.

Parker et al. (2024), eq. 2: with L2-normalized embeddings I and S and a fixed
scale s, logits = s I S^T and L = (CE(logits, arange) + CE(logits^T, arange)) / 2.
Collapsed embeddings give L = ln B; the loss lower-bounds the mutual information
between the modalities (ln B - L <= I(image; spectrum)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def clip_loss(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """Symmetric InfoNCE of paired embeddings a (B, E) and b (B, E); row i of each is a pair."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"clip_loss: embeddings have shapes {a.shape} and {b.shape}; expected two equal (B, E)"
        )
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    logits = scale * a @ b.T  # (B, B)
    labels = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def pair_accuracy(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of rows whose most similar partner in the batch is its own pair."""
    sim = F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T
    return float((sim.argmax(1) == torch.arange(len(a), device=a.device)).float().mean())
