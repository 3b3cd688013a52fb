"""Losses: the symmetric InfoNCE (CLIP) loss of AstroCLIP, and VICReg for the image encoder.

Parker et al. (2024), eq. 2: with L2-normalized embeddings I and S and a fixed
scale s, logits = s I S^T and L = (CE(logits, arange) + CE(logits^T, arange)) / 2.
Collapsed embeddings give L = ln B; the loss lower-bounds the mutual information
between the modalities (ln B - L <= I(image; spectrum)).

``vicreg_loss``: Bardes, Ponce & LeCun (2022), "VICReg: Variance-Invariance-Covariance
Regularization for Self-Supervised Learning" (ICLR). Written here rather than taken from
lightly: ``pip install --dry-run lightly`` (1.6.0) would replace torch 2.13 by 2.14 with
CUDA 13 wheels and pull in torchvision, pytorch-lightning, hydra and aiohttp, all for a
20-line loss.
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


def vicreg_loss(
    z1: torch.Tensor, z2: torch.Tensor, weights: tuple[float, float, float] = (25.0, 25.0, 1.0)
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """VICReg loss of two expanded views z1, z2 (B, D) of the same images (Bardes et al. 2022).

    invariance: MSE(z1, z2); variance: mean_j relu(1 - sqrt(Var z_j + 1e-4)), averaged over
    the two views; covariance: sum of the squared off-diagonal covariances / D, summed over
    the two views. The weights multiply the three terms (paper: 25, 25, 1). As the authors'
    code (facebookresearch/vicreg, main_vicreg.py); returns (loss, the three terms).
    """
    if z1.shape != z2.shape or z1.ndim != 2 or z1.shape[0] < 2:
        raise ValueError(
            f"vicreg_loss: views have shapes {tuple(z1.shape)} and {tuple(z2.shape)}; expected "
            "two equal (B, D) with B >= 2"
        )
    z1, z2 = z1.float(), z2.float()
    b, d = z1.shape
    invariance = F.mse_loss(z1, z2)
    z1, z2 = z1 - z1.mean(0), z2 - z2.mean(0)
    std1, std2 = torch.sqrt(z1.var(0) + 1e-4), torch.sqrt(z2.var(0) + 1e-4)
    variance = (F.relu(1 - std1).mean() + F.relu(1 - std2).mean()) / 2
    off = ~torch.eye(d, dtype=torch.bool, device=z1.device)
    cov1, cov2 = (z1.T @ z1) / (b - 1), (z2.T @ z2) / (b - 1)  # (D, D)
    covariance = (cov1[off].pow(2).sum() + cov2[off].pow(2).sum()) / d
    w_inv, w_var, w_cov = weights
    loss = w_inv * invariance + w_var * variance + w_cov * covariance
    return loss, {"invariance": invariance, "variance": variance, "covariance": covariance}
