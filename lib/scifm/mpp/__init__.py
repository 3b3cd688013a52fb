"""MPP: Multiple Physics Pretraining (McCabe et al., arXiv:2310.02994) with the AViT surrogate.

The PDE data engine lives in ``scifm.pde`` and is not imported here.
"""

from scifm.mpp.config import AViTConfig
from scifm.mpp.data import file_datasets, generate_files, memory_datasets
from scifm.mpp.experiment import DataConfig, finetune, load_surrogate, make_fields, pretrain
from scifm.mpp.metrics import nmse, nmse_per_field, nrmse
from scifm.mpp.model import AViT, Model
from scifm.mpp.recipe import SeededBatches, TrainRecipe, recipe_loss
from scifm.mpp.rollout import (
    cuda_graph_step,
    fast_model_step,
    model_step,
    persistence_step,
    rollout,
)
from scifm.mpp.train import fit, loss_fn, prepare_finetune, set_trainable

__all__ = [
    "AViT",
    "AViTConfig",
    "DataConfig",
    "Model",
    "SeededBatches",
    "TrainRecipe",
    "cuda_graph_step",
    "fast_model_step",
    "file_datasets",
    "finetune",
    "fit",
    "generate_files",
    "load_surrogate",
    "loss_fn",
    "make_fields",
    "memory_datasets",
    "model_step",
    "nmse",
    "nmse_per_field",
    "nrmse",
    "persistence_step",
    "prepare_finetune",
    "pretrain",
    "recipe_loss",
    "rollout",
    "set_trainable",
]
