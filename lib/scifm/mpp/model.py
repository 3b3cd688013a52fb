"""The AViT surrogate of Multiple Physics Pretraining (McCabe et al., arXiv:2310.02994).

Given a window of T past frames of one system, ``x`` of shape (B, T, C, H, W), and the
indices of its C fields in the shared field table, the model predicts frame T+1
(B, C, H, W):

    RevIN normalise  ->  field embedding (C -> D/4, only the system's columns)
    -> hMLP stem per frame (D/4 -> D, stride p)  ->  n_layers x [time attn, axial attn, MLP]
    -> hMLP decoder on the last frame (D -> C)  ->  RevIN de-normalise

The batch leads here (the reference puts time first); every sample of a batch comes from
one system, so ``field_index`` and ``periodic`` are shared by the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from einops import rearrange
from torch import nn

from scifm.mpp.blocks import SpaceTimeBlock
from scifm.mpp.config import AViTConfig
from scifm.mpp.stem import FieldEmbedding, HMLPDecoder, HMLPStem

REVIN_EPS = 1e-7  # added to the std of each (sample, field) window, as in the reference


def as_field_index(
    field_index: Sequence[int] | torch.Tensor, n_states: int, n_channels: int, device: torch.device
) -> torch.Tensor:
    """Check and convert the field indices of a batch to a 1-D long tensor on ``device``."""
    idx = torch.as_tensor(field_index, dtype=torch.long, device=device)
    if idx.ndim == 2:  # a collated batch (B, C): all rows must agree
        if not bool((idx == idx[:1]).all()):
            raise ValueError("field_index: samples of one batch come from different systems")
        idx = idx[0]
    if idx.ndim != 1 or idx.numel() != n_channels:
        raise ValueError(
            f"field_index has shape {tuple(idx.shape)}: expected ({n_channels},), one slot per "
            "channel of x"
        )
    if int(idx.min()) < 0 or int(idx.max()) >= n_states:
        raise ValueError(
            f"field_index {idx.tolist()}: slots must lie in [0, {n_states}); "
            "use AViT.add_fields() to make room for new fields"
        )
    return idx


def as_periodic(periodic: bool | Sequence[bool] | torch.Tensor) -> tuple[bool, bool]:
    """(periodic along y, periodic along x) from a bool, a pair, or a collated tensor."""
    if isinstance(periodic, torch.Tensor):
        p = periodic.reshape(-1, periodic.shape[-1] if periodic.ndim > 1 else 1)[0].tolist()
    elif isinstance(periodic, bool | np.bool_):
        p = [bool(periodic)]
    else:
        p = [bool(v) for v in periodic]
    if len(p) == 1:
        p = p * 2
    return bool(p[0]), bool(p[1])


class AViT(nn.Module):
    """Axial ViT surrogate built from an :class:`AViTConfig` alone."""

    def __init__(self, config: AViTConfig) -> None:
        super().__init__()
        self.config = config
        # validated field slots of a list field_index, per device: a rollout step then makes no
        # host-to-device copy and no sync (and can be captured in a CUDA graph)
        self._slots: dict[tuple, torch.Tensor] = {}
        c = config
        self.embed = FieldEmbedding(c.n_states, c.d_embed)
        self.stem = HMLPStem(c.d_model, c.stem_kernels)
        rates = np.linspace(0, c.drop_path, c.n_layers)
        self.blocks = nn.ModuleList(SpaceTimeBlock(c, float(r)) for r in rates)
        self.decoder = HMLPDecoder(c.d_model, c.n_states, c.stem_kernels)
        if c.predict_delta:  # start exactly at persistence
            nn.init.zeros_(self.decoder.out_weight)
            nn.init.zeros_(self.decoder.out_bias)

    def forward(
        self,
        x: torch.Tensor,
        field_index: Sequence[int] | torch.Tensor,
        periodic: bool | Sequence[bool] | torch.Tensor = False,
    ) -> torch.Tensor:
        # only the last frame is predicted: in inference its last block skips the others
        # (in training it runs them all, so DropPath draws the masks it always drew)
        tokens, idx, std, mean = self.encode(x, field_index, periodic, last_only=not self.training)
        y = self.decoder(tokens[:, -1], idx)  # (B, C, H, W)
        if self.config.predict_delta:
            return x[:, -1] + y * std[:, 0]
        return y * std[:, 0] + mean[:, 0]

    def encode(
        self,
        x: torch.Tensor,
        field_index: Sequence[int] | torch.Tensor,
        periodic: bool | Sequence[bool] | torch.Tensor = False,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Processor tokens (B, T, D, H/p, W/p), field slots, and the RevIN std and mean.
        ``last_only``: the last block returns the last frame only (B, 1, D, H/p, W/p), all
        that a prediction reads (``forward`` in eval mode)."""
        if x.ndim != 5:
            raise ValueError(f"x has shape {tuple(x.shape)}: expected (B, T, C, H, W)")
        B, _, C, H, W = x.shape
        p = self.config.patch_size
        if H % p or W % p:
            raise ValueError(f"x has grid {H}x{W}: both sides must be multiples of patch {p}")
        idx = self.field_slots(field_index, C, x.device)
        per = as_periodic(periodic)
        with torch.no_grad():  # reversible instance norm over (T, H, W) per sample and field
            # (B, 1, C, 1, 1); two passes, as ``stem.map_std`` (``torch.std_mean`` is ~10x slower)
            mean = x.mean(dim=(1, 3, 4), keepdim=True)
            n = x.shape[1] * x.shape[3] * x.shape[4]
            std = torch.linalg.vector_norm(x - mean, dim=(1, 3, 4), keepdim=True)
            std = std / math.sqrt(n - 1) if n > 1 else std * float("nan")
            std = std + REVIN_EPS
        x = (x - mean) / std
        # field embedding and hMLP stem in one: ((B T), C, H, W) -> ((B T), D, h, w)
        x = self.stem.from_fields(rearrange(x, "b t c h w -> (b t) c h w"), *self.embed.affine(idx))
        x = rearrange(x, "(b t) d h w -> b t d h w", b=B)
        for i, block in enumerate(self.blocks):
            x = block(x, per, last_only and i == len(self.blocks) - 1)
        return x, idx, std, mean

    def field_slots(
        self, field_index: Sequence[int] | torch.Tensor, n_channels: int, device: torch.device
    ) -> torch.Tensor:
        """``as_field_index``, remembered per (indices, device) when given as a flat list or
        tuple of ints; anything else (a tensor, a collated (B, C) batch) is checked each time."""
        flat = isinstance(field_index, list | tuple) and all(
            isinstance(i, int | np.integer) for i in field_index
        )
        if not flat:
            return as_field_index(field_index, self.config.n_states, n_channels, device)
        key = (tuple(int(i) for i in field_index), self.config.n_states, n_channels, str(device))
        idx = self._slots.get(key)
        if idx is None:
            with torch.inference_mode(False):  # a normal tensor, usable later in training too
                idx = as_field_index(key[0], self.config.n_states, n_channels, device)
            if len(self._slots) >= 64:  # a few systems in practice; never grows without bound
                self._slots.clear()
            self._slots[key] = idx
        return idx

    @torch.no_grad()
    def add_fields(self, n_new: int) -> list[int]:
        """Append ``n_new`` field slots (new physics for fine-tuning); returns their indices.

        New embedding columns start at the mean of the existing columns and new decoder
        outputs at zero bias, so the model stays a sensible starting point.
        """
        if n_new < 1:
            raise ValueError(f"n_new={n_new}: expected at least one new field")
        old = self.config.n_states
        lin = self.embed.linear
        w_new = lin.weight.mean(dim=1, keepdim=True).expand(-1, n_new)
        lin.weight = nn.Parameter(torch.cat([lin.weight, w_new], dim=1))
        lin.in_features = old + n_new
        self.embed.n_states = old + n_new
        dec = self.decoder
        k_new = dec.out_weight.mean(dim=1, keepdim=True).expand(-1, n_new, -1, -1)
        dec.out_weight = nn.Parameter(torch.cat([dec.out_weight, k_new], dim=1))
        dec.out_bias = nn.Parameter(torch.cat([dec.out_bias, dec.out_bias.new_zeros(n_new)]))
        self.config = self.config.replace(n_states=old + n_new)
        return list(range(old, old + n_new))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


Model = AViT
