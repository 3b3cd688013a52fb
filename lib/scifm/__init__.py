"""scifm: three foundation-model ideas for science in one library.

- ``scifm.xval``: continuous number encoding for language models (Golkar et al. 2023).
- ``scifm.mpp``: Multiple Physics Pretraining with an axial ViT (McCabe et al. 2023),
  and the PDE data engine it trains on (``scifm.pde``).
- ``scifm.astroclip``: cross-modal galaxy embeddings (Parker et al. 2024), and the
  simulated survey it trains on (``scifm.survey``).
- ``scifm.core``: what the three share (devices, configs, checkpoints, training loop).
"""

__version__ = "0.1.0"
