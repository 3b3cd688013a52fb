"""The AstroCLIP model: frozen image and spectrum encoders plus alignment heads.

Parker et al. (2024), section 3.3: each frozen encoder's tokens go through a
cross-attention head (one learned query, multi-head attention over the tokens) and an
MLP to a shared embedding space, trained with the symmetric InfoNCE loss. The spectrum
side may instead read the tokens in wavelength segments (``SegmentHead``,
``AstroClipConfig.spectrum_head="seg<K>"``). ``AstroClipConfig.image_finetune_blocks``
lets the image encoder's top blocks train with the heads (a departure from the paper,
whose encoders stay frozen). The encoders' pretrained weights are copied in by
``scifm.astroclip.train.align``, never read here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scifm.astroclip.config import AstroClipConfig, segment_count
from scifm.astroclip.image_encoder import ImageEncoder
from scifm.astroclip.losses import clip_loss, pair_accuracy
from scifm.astroclip.specformer import SpecFormer, pool_tokens


class CrossAttentionHead(nn.Module):
    """Tokens (B, T, d_in) -> embedding (B, embed_dim) via one learned query, then an MLP."""

    def __init__(self, *, d_in: int, embed_dim: int, n_heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.query = nn.Parameter(0.02 * torch.randn(1, 1, embed_dim))
        self.norm_kv = nn.LayerNorm(d_in)
        self.attn = nn.MultiheadAttention(
            embed_dim, n_heads, kdim=d_in, vdim=d_in, batch_first=True
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, mlp_ratio * embed_dim),
            nn.GELU(),
            nn.Linear(mlp_ratio * embed_dim, embed_dim),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(tokens)
        q = self.query.expand(len(tokens), -1, -1)  # (B, 1, E)
        x = self.attn(q, kv, kv, need_weights=False)[0]  # (B, 1, E)
        x = x + self.mlp(self.norm(x))
        return x[:, 0]


class SegmentHead(nn.Module):
    """SpecFormer tokens (B, 1 + T, d_in) -> embedding (B, embed_dim) through segments.

    The window tokens are averaged in ``n_segments`` contiguous wavelength segments and
    concatenated (``specformer.pool_tokens``, ``seg<K>``), then a linear map and a residual
    MLP. One learned query attending over all tokens (``CrossAttentionHead``) must learn
    where along the spectrum a feature sits from the position embedding alone; measured on
    the frozen SpecFormer, the 32-segment pooling keeps redshift at k-NN R^2 0.979 where the
    mean over tokens keeps 0.933 (``benchmarks/results/specformer_score.md``).
    """

    def __init__(self, *, d_in: int, n_segments: int, embed_dim: int, mlp_ratio: int) -> None:
        super().__init__()
        self.pooling = f"seg{n_segments}"
        self.norm_in = nn.LayerNorm(n_segments * d_in)
        self.proj = nn.Linear(n_segments * d_in, embed_dim)
        self.norm = nn.LayerNorm(embed_dim)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, mlp_ratio * embed_dim),
            nn.GELU(),
            nn.Linear(mlp_ratio * embed_dim, embed_dim),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.proj(self.norm_in(pool_tokens(tokens, self.pooling)))
        return x + self.mlp(self.norm(x))


def spectrum_head(config: AstroClipConfig) -> nn.Module:
    """The spectrum side's alignment head that ``config.spectrum_head`` names."""
    c = config
    if c.spectrum_head == "attention":
        return CrossAttentionHead(
            d_in=c.spectrum.d_model, embed_dim=c.embed_dim, n_heads=c.head_heads,
            mlp_ratio=c.head_mlp_ratio,
        )  # fmt: skip
    k = segment_count(c.spectrum_head, c.spectrum.n_tokens)
    return SegmentHead(
        d_in=c.spectrum.d_model, n_segments=k, embed_dim=c.embed_dim, mlp_ratio=c.head_mlp_ratio
    )


class AstroClip(nn.Module):
    """Image (B, 3, s, s) and spectrum (B, n_bins) -> embeddings (B, embed_dim) each."""

    def __init__(self, config: AstroClipConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.image_encoder = ImageEncoder(c.image)
        self.spectrum_encoder = SpecFormer(c.spectrum)
        kw = {"embed_dim": c.embed_dim, "n_heads": c.head_heads, "mlp_ratio": c.head_mlp_ratio}
        self.image_head = CrossAttentionHead(d_in=c.image.d_model, **kw)
        self.spectrum_head = spectrum_head(c)
        self.freeze_encoders()

    def freeze_encoders(self) -> None:
        """Encoders stay fixed during alignment (and in eval mode: BatchNorm statistics),
        except the image encoder's top ``config.image_finetune_blocks`` residual blocks and
        its token projection when that is > 0."""
        for enc in (self.image_encoder, self.spectrum_encoder):
            enc.requires_grad_(False)
            enc.eval()
        for module in self.image_finetuned_modules():
            module.requires_grad_(True)

    def image_finetuned_modules(self) -> list[nn.Module]:
        """The image encoder's parts that train with the heads (none by default)."""
        n = self.config.image_finetune_blocks
        if not n:
            return []
        enc = self.image_encoder
        return [*list(enc.stages)[-n:], enc.to_tokens, enc.norm]

    def train(self, mode: bool = True) -> AstroClip:
        super().train(mode)
        self.image_encoder.eval()
        self.spectrum_encoder.eval()
        return self

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        if self.config.image_finetune_blocks:  # the frozen lower blocks record no graph
            return self.image_head(self.image_encoder(images))
        with torch.no_grad():
            tokens = self.image_encoder(images)
        return self.image_head(tokens)

    def embed_spectra(self, spectra: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            tokens = self.spectrum_encoder(spectra)
        return self.spectrum_head(tokens)

    def forward(
        self,
        images: torch.Tensor,
        spectra: torch.Tensor | None = None,
        spectrum_tokens: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """InfoNCE loss of a batch of pairs plus the in-batch pair-retrieval accuracy.

        ``spectrum_tokens`` (B, 1 + T, d) may replace ``spectra``: the frozen SpecFormer's
        output never changes during alignment, so it can be computed once per galaxy.
        """
        a = self.embed_images(images)
        if spectrum_tokens is not None:
            b = self.spectrum_head(spectrum_tokens.float())
        elif spectra is not None:
            b = self.embed_spectra(spectra)
        else:
            raise ValueError("AstroClip.forward needs spectra or spectrum_tokens")
        loss = clip_loss(a, b, self.config.logit_scale)
        return {"loss": loss, "accuracy": torch.tensor(pair_accuracy(a.detach(), b.detach()))}


def normalized(x: torch.Tensor) -> torch.Tensor:
    """L2-normalize rows (cosine similarity becomes an inner product)."""
    return F.normalize(x.float(), dim=-1)
