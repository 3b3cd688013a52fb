"""Image encoder: a small ResNet pretrained self-supervised on galaxy cutouts.

Follows the workshop AstroCLIP (Parker et al. 2023) image tower, which reuses the
self-supervised ResNet of Stein et al. (2021, MoCo-v2: momentum key encoder, queue
of negatives, InfoNCE at temperature tau). The second objective, selected by
``ImageEncoderConfig.method``, is VICReg (Bardes et al. 2022): no negatives, a
variance and a covariance term keep the embedding from collapsing. The views come
from ``augment.py``. The encoder states its input size (``config.input_size``) and
returns spatial tokens so an alignment head can attend over them; ``embed``
mean-pools them.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from scifm.astroclip.config import ImageEncoderConfig
from scifm.astroclip.losses import vicreg_loss

# Legacy Surveys display scales (g, r, z) and softening: the arcsinh stretch keeps
# faint outskirts and bright cores in range without touching the colours.
BAND_SCALES = (6.0, 3.4, 2.2)
ARCSINH_Q = 20.0


def scale_flux(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) nanomaggies -> arcsinh-stretched intensities (same shape)."""
    s = x.new_tensor(BAND_SCALES).view(1, 3, 1, 1)
    return torch.asinh(ARCSINH_Q * s * x) / ARCSINH_Q**0.5


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, *, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.skip(x))


class ImageEncoder(nn.Module):
    """(B, 3, s, s) flux -> tokens (B, T, d_model); s = ``cfg.input_size``, T = ``cfg.n_tokens``.

    s is the crop over the pooling (``evidence``: the native 64 px; ``small``: 64 -> 32 px);
    an image of any other size is an error naming its shape, never silently resized.
    """

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        self.config = config
        w = config.widths
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 3, 1, 1, bias=False), nn.BatchNorm2d(w[0]))
        layers: list[nn.Module] = []
        c = w[0]
        for width in w:
            for b in range(config.blocks_per_stage):
                layers.append(ResBlock(c, width, stride=2 if b == 0 else 1))
                c = width
        self.stages = nn.Sequential(*layers)
        self.to_tokens = nn.Linear(c, config.d_model)
        self.norm = nn.LayerNorm(config.d_model)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        s = self.config.input_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, s, s):
            raise ValueError(
                f"ImageEncoder input has shape {tuple(images.shape)}; expected (B, 3, {s}, {s}): "
                f"the {self.config.crop} px centre crop pooled by {self.config.downsample} "
                "(scifm.astroclip.data.prepare_images makes it from a cutout)"
            )
        h = self.stages(F.relu(self.stem(scale_flux(images))))  # (B, C, s', s')
        return self.norm(self.to_tokens(rearrange(h, "b c h w -> b (h w) c")))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Mean-pooled representation (B, d_model): the 'image SSL alone' embedding."""
        return self.forward(images).mean(1)


def _mlp(dims: tuple[int, ...], *, batch_norm: bool) -> nn.Sequential:
    """Linear layers of widths ``dims``, ReLU between (and BatchNorm before it if asked)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(dims)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers += [nn.BatchNorm1d(b), nn.ReLU()] if batch_norm else [nn.ReLU()]
    return nn.Sequential(*layers)


class ImageSSL(nn.Module):
    """The image encoder with its self-supervised head, chosen by ``config.method``.

    ``moco``: query encoder + projector, EMA key encoder + projector, queue of keys
    (MoCo-v2, Chen et al. 2020). ``vicreg``: one encoder + expander on both views, no
    negatives (VICReg, Bardes et al. 2022). Either way ``encoder`` is what AstroCLIP keeps.
    """

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.encoder = ImageEncoder(config)
        if config.method == "vicreg":  # expander: 3 layers with BatchNorm, as the paper's
            self.projector = _mlp((d, *(config.expander_dim,) * 3), batch_norm=True)
            return
        self.projector = _mlp((d, d, config.proj_dim), batch_norm=False)
        self.key_encoder = ImageEncoder(config)
        self.key_projector = _mlp((d, d, config.proj_dim), batch_norm=False)
        for q, k in self._pairs():
            k.data.copy_(q.data)
            k.requires_grad_(False)
        queue = F.normalize(torch.randn(config.queue_size, config.proj_dim), dim=1)
        self.register_buffer("queue", queue)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def _pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        q = [*self.encoder.parameters(), *self.projector.parameters()]
        k = [*self.key_encoder.parameters(), *self.key_projector.parameters()]
        return list(zip(q, k))

    @torch.no_grad()
    def _momentum_update(self) -> None:
        m = self.config.momentum
        for q, k in self._pairs():
            k.mul_(m).add_(q.detach(), alpha=1 - m)
        # BatchNorm running statistics follow the query encoder too.
        for bq, bk in zip(self.encoder.buffers(), self.key_encoder.buffers()):
            bk.copy_(bq)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        n, size = keys.shape[0], self.queue.shape[0]
        idx = (self.queue_ptr + torch.arange(n, device=keys.device)) % size
        self.queue[idx] = keys
        self.queue_ptr.copy_((self.queue_ptr + n) % size)

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> dict[str, torch.Tensor]:
        """The method's loss (and diagnostics) of two views (B, 3, s, s) of the same galaxies."""
        if self.config.method == "vicreg":
            z1 = self.projector(self.encoder.embed(view1))  # (B, expander_dim)
            z2 = self.projector(self.encoder.embed(view2))
            loss, terms = vicreg_loss(z1, z2, self.config.vicreg_weights)
            return {"loss": loss, **{k: v.detach() for k, v in terms.items()}}
        return self._moco(view1, view2)

    def _moco(self, view1: torch.Tensor, view2: torch.Tensor) -> dict[str, torch.Tensor]:
        q = F.normalize(self.projector(self.encoder.embed(view1)), dim=1)  # (B, p)
        with torch.no_grad():
            if self.training:
                self._momentum_update()
            k = F.normalize(self.key_projector(self.key_encoder.embed(view2)), dim=1)
        pos = (q * k).sum(1, keepdim=True)  # (B, 1)
        neg = q @ self.queue.clone().T  # (B, K)
        logits = torch.cat([pos, neg], 1) / self.config.temperature
        labels = torch.zeros(len(q), dtype=torch.long, device=q.device)
        loss = F.cross_entropy(logits, labels)
        acc = (logits.argmax(1) == 0).float().mean()
        if self.training:
            self._enqueue(k)
        return {"loss": loss, "accuracy": acc.detach()}
