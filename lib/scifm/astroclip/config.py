"""Configs of the three AstroCLIP stages (Parker et al. 2024, arXiv:2310.03024).

``ImageEncoderConfig``: a small ResNet image encoder pretrained self-supervised, with
MoCo-v2 (the workshop AstroCLIP / Stein et al. 2021 recipe) or VICReg (Bardes et al.
2022), on astronomy augmentations (``augment.py``). ``SpecFormerConfig``: the SpecFormer
spectrum transformer pretrained by masked modelling. ``AstroClipConfig``: the two
frozen encoders plus cross-attention alignment heads trained with InfoNCE.

CPU presets crop and downsample the inputs (``tiny`` 32 -> 16 px, ``small`` 64 -> 32 px,
the shipped demo model); ``evidence`` sees the 64 px centre crop at the survey's native
0.262"/pixel (no pooling) and spectra binned by 2 (3890 bins); ``paper`` is the MNRAS
size and wants a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from scifm.core import ConfigMixin
from scifm.survey.readers.grid import DESI_N_WAVE

N_SPECTRUM_BINS = DESI_N_WAVE  # DESI coadd grid: lambda_i = 3600 + 0.8 i Angstrom
IMAGE_SIZE = 152  # survey cutouts are 152 x 152 x 3 (g, r, z)


SSL_METHODS = ("moco", "vicreg")  # self-supervised objectives of the image encoder
PIXEL_SCALE = 0.262  # arcsec per pixel of the Legacy Surveys (and simulated) cutouts
# Fields of older checkpoints that no longer exist: augmentation settings only (a fixed
# noise sigma and a per-band gain, i.e. a colour jitter), so dropping them on load
# leaves the weights' meaning unchanged.
_RETIRED_IMAGE_FIELDS = ("noise_sigma", "gain_jitter")


def segment_count(name: str, n_tokens: int) -> int | None:
    """K of a ``"seg<K>"`` pooling or head name with 1 <= K <= ``n_tokens``, else None."""
    k = name.removeprefix("seg")
    if name.startswith("seg") and k.isdigit() and 1 <= int(k) <= n_tokens:
        return int(k)
    return None


@dataclass(frozen=True)
class ImageEncoderConfig(ConfigMixin):
    crop: int = 64  # centre crop of the 152 x 152 cutout (pixels); the galaxy sits in the middle
    downsample: int = 2  # average-pool factor after cropping (CPU cost falls as its square)
    widths: tuple[int, ...] = (32, 64, 128)  # ResNet stage widths; each stage halves H and W
    blocks_per_stage: int = 1  # residual blocks per stage
    d_model: int = 128  # width of the output tokens the alignment head attends over
    method: str = "moco"  # self-supervised objective: "moco" (MoCo-v2) or "vicreg" (VICReg)
    proj_dim: int = 64  # MoCo projection size (contrastive space, thrown away after)
    queue_size: int = 4096  # MoCo-v2 negatives kept from earlier batches
    momentum: float = 0.99  # EMA factor of the MoCo key encoder
    temperature: float = 0.2  # MoCo softmax temperature
    expander_dim: int = 512  # VICReg expander width (paper: 8192, 4 x its 2048 backbone)
    # VICReg weights of invariance, variance, covariance (Bardes et al. 2022: 25, 25, 1)
    vicreg_weights: tuple[float, float, float] = (25.0, 25.0, 1.0)
    # Augmentations (scifm.astroclip.augment; astronomy only, never a colour change):
    psf_fwhm: tuple[float, float] = (0.0, 1.0)  # extra Gaussian PSF FWHM range (arcsec)
    noise_scale: tuple[float, float] = (0.0, 1.0)  # extra noise range, x the image's noise
    shift_max: int = 2  # random cyclic shift up to this many input pixels on each axis

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"crop": 32, "downsample": 2, "widths": (8, 16), "d_model": 16, "proj_dim": 8,
                 "queue_size": 64, "expander_dim": 32},
        "small": {},
        # the survey's native pixels (0.262"): the 64 px centre crop, no pooling
        "evidence": {"crop": 64, "downsample": 1},
        "paper": {"crop": 144, "downsample": 1, "widths": (64, 128, 256, 512),
                  "blocks_per_stage": 2, "d_model": 512, "proj_dim": 128,
                  "queue_size": 65536, "momentum": 0.999, "expander_dim": 2048},
    }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> ImageEncoderConfig:
        """As ``ConfigMixin.from_dict``; a checkpoint's retired augmentation fields are dropped."""
        return super().from_dict({k: v for k, v in data.items() if k not in _RETIRED_IMAGE_FIELDS})

    def __post_init__(self) -> None:
        if not 8 <= self.crop <= IMAGE_SIZE:
            raise ValueError(f"ImageEncoderConfig.crop={self.crop}: expected 8..{IMAGE_SIZE}")
        if self.downsample < 1 or self.crop % self.downsample:
            raise ValueError(
                f"ImageEncoderConfig.downsample={self.downsample}: must be >= 1 and divide "
                f"crop={self.crop}"
            )
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"ImageEncoderConfig.widths={self.widths}: expected positive ints")
        if self.input_size % (2 ** len(self.widths)):
            raise ValueError(
                f"ImageEncoderConfig: input size {self.input_size} is not divisible by "
                f"2**len(widths)={2 ** len(self.widths)}"
            )
        if self.method not in SSL_METHODS:
            raise ValueError(
                f"ImageEncoderConfig.method={self.method!r}: expected one of {SSL_METHODS}"
            )
        if not 0 <= self.momentum < 1 or self.temperature <= 0:
            raise ValueError("ImageEncoderConfig: momentum must be in [0, 1), temperature > 0")
        if self.expander_dim < 2 or min(self.vicreg_weights) < 0:
            raise ValueError(
                f"ImageEncoderConfig: expander_dim={self.expander_dim} (expected >= 2), "
                f"vicreg_weights={self.vicreg_weights} (expected >= 0)"
            )
        for name in ("psf_fwhm", "noise_scale"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"ImageEncoderConfig.{name}=({lo}, {hi}): expected 0 <= lo <= hi")
        if not 0 <= self.shift_max < self.input_size // 2:
            raise ValueError(
                f"ImageEncoderConfig.shift_max={self.shift_max}: expected 0 .. "
                f"{self.input_size // 2 - 1} pixels"
            )

    @property
    def geometric(self) -> ImageEncoderConfig:
        """This config with the photometric augmentations (PSF, noise) off: rotations,
        flips and shifts only (alignment and the supervised baseline's views)."""
        return self.replace(psf_fwhm=(0.0, 0.0), noise_scale=(0.0, 0.0))

    @property
    def input_size(self) -> int:
        """Side of the image the network sees, after crop and downsampling."""
        return self.crop // self.downsample

    @property
    def pixel_scale(self) -> float:
        """Arcsec per pixel of the image the network sees."""
        return PIXEL_SCALE * self.downsample

    @property
    def n_tokens(self) -> int:
        """Number of spatial tokens (positions of the last feature map)."""
        return (self.input_size // 2 ** len(self.widths)) ** 2


@dataclass(frozen=True)
class SpecFormerConfig(ConfigMixin):
    downsample: int = 8  # average adjacent bins first (7781 -> 972 at 8, 6.4 A): CPU cost
    window: int = 20  # bins per token (paper: 20)
    stride: int = 10  # bins between token starts (paper: 10, so windows overlap by half)
    d_model: int = 128  # token width (paper: 768)
    n_heads: int = 4  # attention heads
    n_layers: int = 4  # pre-LN transformer layers (paper: 6)
    mlp_ratio: int = 4  # hidden width of each MLP / d_model
    dropout: float = 0.0  # dropout inside the transformer
    std_floor: float = 0.2  # per-object std is clipped below at this (paper: 0.2)
    n_mask_chunks: int = 3  # contiguous chunks of tokens zeroed in masked modelling (paper: 6)
    mask_chunk: int = 8  # tokens per masked chunk (paper: 50)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"downsample": 16, "d_model": 16, "n_heads": 2, "n_layers": 1,
                 "n_mask_chunks": 2, "mask_chunk": 4},
        "small": {},
        # binned by 2 (7781 -> 3890 bins, 1.6 A); windows of 40 overlapping by half, as the
        # paper's 20/10, keep 193 tokens (1.1-1.5 CPU s per step of 64 on one shared core;
        # 20/20 costs the same, 20/10 makes 388 tokens and 2.6x the time); 3 masked chunks of
        # 16 tokens = 512 A each, the masked wavelength span of `small`
        "evidence": {"downsample": 2, "window": 40, "stride": 20, "mask_chunk": 16},
        "paper": {"downsample": 1, "d_model": 768, "n_heads": 6, "n_layers": 6,
                  "dropout": 0.1, "n_mask_chunks": 6, "mask_chunk": 50},
    }  # fmt: skip

    def __post_init__(self) -> None:
        if self.downsample < 1 or self.window < 1 or not 1 <= self.stride <= self.window:
            raise ValueError(
                f"SpecFormerConfig: need downsample >= 1 and 1 <= stride <= window, got "
                f"downsample={self.downsample}, window={self.window}, stride={self.stride}"
            )
        if self.d_model % self.n_heads:
            raise ValueError(
                f"SpecFormerConfig.d_model={self.d_model} is not divisible by "
                f"n_heads={self.n_heads}"
            )
        if self.n_mask_chunks * self.mask_chunk >= self.n_tokens:
            raise ValueError(
                f"SpecFormerConfig: masking {self.n_mask_chunks} x {self.mask_chunk} tokens "
                f"leaves nothing of the {self.n_tokens} tokens"
            )

    @property
    def n_bins(self) -> int:
        """Length of the spectrum the model sees after downsampling."""
        return N_SPECTRUM_BINS // self.downsample

    @property
    def n_tokens(self) -> int:
        """Window tokens (the mean/std token comes on top)."""
        return (self.n_bins - self.window) // self.stride + 1


@dataclass(frozen=True)
class AstroClipConfig(ConfigMixin):
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)  # frozen image encoder
    spectrum: SpecFormerConfig = field(default_factory=SpecFormerConfig)  # frozen SpecFormer
    embed_dim: int = 128  # shared embedding size (workshop: 128, MNRAS: 1024)
    head_heads: int = 4  # attention heads of each cross-attention head (paper: 4)
    head_mlp_ratio: int = 4  # MLP hidden width / embed_dim in each head
    logit_scale: float = 15.5  # fixed InfoNCE scale s (paper: 15.5)
    # How the spectrum head reads the SpecFormer's tokens: "attention" (the paper's one
    # learned query over all tokens) or "seg<K>" (the window tokens averaged in K contiguous
    # wavelength segments, concatenated, then an MLP; keeps where a feature sits)
    spectrum_head: str = "attention"
    # Residual blocks of the image encoder, counted from its top, that train with the heads
    # (with its token projection); 0 keeps the encoder frozen, as the paper does. Its
    # BatchNorm statistics stay the self-supervised run's either way.
    image_finetune_blocks: int = 0

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"image": ImageEncoderConfig.PRESETS["tiny"],
                 "spectrum": SpecFormerConfig.PRESETS["tiny"], "embed_dim": 16, "head_heads": 2},
        "small": {},
        "evidence": {"image": ImageEncoderConfig.PRESETS["evidence"],
                     "spectrum": SpecFormerConfig.PRESETS["evidence"]},
        "paper": {"image": ImageEncoderConfig.PRESETS["paper"],
                  "spectrum": SpecFormerConfig.PRESETS["paper"], "embed_dim": 1024},
    }  # fmt: skip

    def __post_init__(self) -> None:
        if self.embed_dim % self.head_heads:
            raise ValueError(
                f"AstroClipConfig.embed_dim={self.embed_dim} is not divisible by "
                f"head_heads={self.head_heads}"
            )
        if self.logit_scale <= 0:
            raise ValueError(f"AstroClipConfig.logit_scale={self.logit_scale}: must be > 0")
        blocks = len(self.image.widths) * self.image.blocks_per_stage
        ft = self.image_finetune_blocks
        if isinstance(ft, bool) or not isinstance(ft, int) or not 0 <= ft <= blocks:
            raise ValueError(
                f"AstroClipConfig.image_finetune_blocks={ft!r}: expected an int in 0..{blocks} "
                "(the image encoder's residual blocks)"
            )
        head, n = self.spectrum_head, self.spectrum.n_tokens
        if head != "attention" and segment_count(head, n) is None:
            raise ValueError(
                f"AstroClipConfig.spectrum_head={head!r}: expected 'attention' or 'seg<K>' "
                f"with 1 <= K <= {n} (the SpecFormer's window tokens)"
            )
