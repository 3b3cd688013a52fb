"""SpecFormer: the AstroCLIP spectrum encoder and its masked-modelling pretraining.

Parker et al. (2024), section 3.2: each spectrum is standardized by its own mean and
standard deviation (std clipped below at 0.2), cut into overlapping windows (20
bins, stride 10) that become tokens, with one first token carrying the mean and
std; a pre-LN transformer encodes them. Pretraining zeroes a few contiguous chunks
of tokens and regresses the original windows there (MSE on the masked part only).
"""

from __future__ import annotations

import torch
from torch import nn

from scifm.astroclip.config import SpecFormerConfig, segment_count
from scifm.core.rng import BatchRandom, batch_random
from scifm.survey.transforms import standardize_spectrum


def standardize(spectra: torch.Tensor, std_floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) -> standardized (B, L) and the per-object (mean, std) as (B, 2)."""
    x, mean, std = standardize_spectrum(spectra, min_std=std_floor)
    return x, torch.cat([mean, std], 1)


def binned_input(spectra: torch.Tensor, std_floor: float, n_bins: int) -> torch.Tensor:
    """(B, L) -> (B, n_bins): SpecFormer's standardized input averaged over ``n_bins``
    contiguous wavelength segments (the last ``L % n_bins`` pixels dropped). No learning: the
    floor any spectrum embedding's k-NN should clear."""
    if spectra.ndim != 2 or not 1 <= n_bins <= spectra.shape[1]:
        raise ValueError(
            f"binned_input: spectra of shape {tuple(spectra.shape)} and n_bins={n_bins}; "
            "expected (B, L) and 1 <= n_bins <= L"
        )
    x, _ = standardize(spectra, std_floor)
    width = x.shape[1] // n_bins
    return x[:, : n_bins * width].reshape(len(x), n_bins, width).mean(2)


POOLINGS = ("mean", "std", "mean_std", "first")  # and "seg<K>" (pool_tokens)


def pool_tokens(tokens: torch.Tensor, pooling: str = "mean") -> torch.Tensor:
    """SpecFormer tokens (B, 1 + T, d) -> one vector per spectrum, by ``pooling``:

    ``mean`` (d): every token averaged, the 'SpecFormer alone' embedding; ``std`` (d): their
    spread; ``mean_std`` (2d): both; ``first`` (d): the token that carries the spectrum's mean
    and std; ``seg<K>`` (K d): the window tokens cut into K contiguous wavelength segments, each
    averaged, concatenated (the last ``T % K`` window tokens dropped). A mean over all tokens
    forgets where along the spectrum a feature sits, which is what redshift is; segments keep it
    at 1/K of the range.
    """
    if tokens.ndim != 3:
        raise ValueError(
            f"pool_tokens: tokens of shape {tuple(tokens.shape)}; expected (B, 1+T, d)"
        )
    if pooling == "mean":
        return tokens.mean(1)
    if pooling == "std":
        return tokens.std(1)
    if pooling == "mean_std":
        return torch.cat([tokens.mean(1), tokens.std(1)], 1)
    if pooling == "first":
        return tokens[:, 0]
    n = tokens.shape[1] - 1
    k = segment_count(pooling, n)
    if k is None:
        raise ValueError(
            f"pooling={pooling!r}: expected one of {POOLINGS} or 'seg<K>' with 1 <= K <= {n} "
            "(the number of window tokens)"
        )
    width = n // k
    win = tokens[:, 1 : 1 + k * width]
    return win.reshape(len(tokens), k, width, tokens.shape[2]).mean(2).flatten(1)


class SpecFormer(nn.Module):
    """(B, n_bins) flux -> tokens (B, 1 + n_tokens, d_model); also the pretraining model."""

    def __init__(self, config: SpecFormerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed_windows = nn.Linear(c.window, c.d_model)
        self.embed_stats = nn.Linear(2, c.d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(1, 1 + c.n_tokens, c.d_model))
        layer = nn.TransformerEncoderLayer(
            c.d_model, c.n_heads, c.mlp_ratio * c.d_model, c.dropout,
            activation="gelu", batch_first=True, norm_first=True,
        )  # fmt: skip
        self.blocks = nn.TransformerEncoder(layer, c.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.window)  # reconstructs each window (pretraining)

    def windows(self, spectra: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardized windows (B, T, window) and the stats token input (B, 2)."""
        c = self.config
        if spectra.ndim != 2 or spectra.shape[1] != c.n_bins:
            raise ValueError(
                f"SpecFormer input has shape {tuple(spectra.shape)}; expected (B, {c.n_bins}) "
                "(see scifm.astroclip.data.prepare_spectra)"
            )
        x, stats = standardize(spectra, c.std_floor)
        # The stats span orders of magnitude between galaxies: log-like compression.
        stats = torch.asinh(stats)
        return x.unfold(1, c.window, c.stride), stats  # (B, T, window)

    def encode(self, windows: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        """Tokens (B, 1 + T, d_model) from windows (B, T, window) and stats (B, 2)."""
        tok = torch.cat([self.embed_stats(stats)[:, None], self.embed_windows(windows)], 1)
        return self.norm(self.blocks(tok + self.pos))

    def forward(self, spectra: torch.Tensor) -> torch.Tensor:
        return self.encode(*self.windows(spectra))

    def embed(self, spectra: torch.Tensor, pooling: str = "mean") -> torch.Tensor:
        """Pooled representation (``pool_tokens``); the default mean (B, d_model) is the
        'SpecFormer alone' embedding."""
        return pool_tokens(self.forward(spectra), pooling)

    def masked_loss(self, spectra: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MSE of the reconstructed windows on masked tokens; ``mask`` (B, T) bool."""
        windows, stats = self.windows(spectra)
        masked = windows.masked_fill(mask[..., None], 0.0)
        pred = self.head(self.encode(masked, stats)[:, 1:])  # (B, T, window)
        err = ((pred - windows) ** 2).mean(-1)  # (B, T)
        m = mask.float()
        return (err * m).sum() / m.sum().clamp_min(1.0)


def chunk_mask(
    config: SpecFormerConfig, batch: int, generator: torch.Generator | BatchRandom
) -> torch.Tensor:
    """(B, T) bool: ``n_mask_chunks`` random contiguous chunks of tokens per spectrum.

    ``generator``: one for the batch, or a ``core.rng.SampleRandom`` (one per spectrum).
    """
    c = config
    hi = c.n_tokens - c.mask_chunk + 1
    starts = batch_random(generator).randint(0, hi, (batch, c.n_mask_chunks))
    offs = torch.arange(c.n_tokens)[None, None] - starts[..., None]  # (B, chunks, T)
    return ((offs >= 0) & (offs < c.mask_chunk)).any(1)
