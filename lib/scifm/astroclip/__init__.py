"""AstroCLIP (Parker et al. 2024): cross-modal galaxy embeddings of images and spectra.

Light re-exports only: the survey engine (bagpipes, galsim) is never imported here.
"""

from scifm.astroclip.config import AstroClipConfig, ImageEncoderConfig, SpecFormerConfig
from scifm.astroclip.data import Galaxies, prepare_images, prepare_spectra, toy_survey
from scifm.astroclip.image_encoder import ImageEncoder, ImageSSL
from scifm.astroclip.losses import clip_loss
from scifm.astroclip.model import AstroClip, CrossAttentionHead, SegmentHead
from scifm.astroclip.specformer import SpecFormer

__all__ = [
    "AstroClip",
    "AstroClipConfig",
    "CrossAttentionHead",
    "Galaxies",
    "ImageEncoder",
    "ImageEncoderConfig",
    "ImageSSL",
    "SegmentHead",
    "SpecFormer",
    "SpecFormerConfig",
    "clip_loss",
    "prepare_images",
    "prepare_spectra",
    "toy_survey",
]
