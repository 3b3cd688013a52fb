"""xVal: a continuous number encoding for language models (Golkar et al. 2023, arXiv:2310.02989).

Compared with the digit encodings of Charton (2021): ``p10``, ``p1000``, ``b1999``, ``fp15``.
"""

from scifm.xval.config import XvalConfig
from scifm.xval.data import Encoded, batches, collate, encode_sample, fit_scaler
from scifm.xval.evaluate import Predictions, evaluate, metrics, predict
from scifm.xval.model import Model
from scifm.xval.numbers import Segment, find_numbers, format_number, split_numbers
from scifm.xval.scaler import ValueScaler
from scifm.xval.tasks import TASKS, Sample, TaskConfig, generate, held_out
from scifm.xval.tokenizers import SCHEMES, Encoding, Tokenizer, get_tokenizer
from scifm.xval.train import (
    Trained,
    fit,
    fit_samples,
    load_trained,
    model_config_for,
    xval_loss,
)
from scifm.xval.userdata import DataConfig, read_lines, samples_of, split_lines

__all__ = [
    "SCHEMES",
    "TASKS",
    "DataConfig",
    "Encoded",
    "Encoding",
    "Model",
    "Predictions",
    "Sample",
    "Segment",
    "TaskConfig",
    "Tokenizer",
    "Trained",
    "ValueScaler",
    "XvalConfig",
    "batches",
    "collate",
    "encode_sample",
    "evaluate",
    "find_numbers",
    "fit",
    "fit_samples",
    "fit_scaler",
    "format_number",
    "generate",
    "get_tokenizer",
    "held_out",
    "load_trained",
    "metrics",
    "model_config_for",
    "predict",
    "read_lines",
    "samples_of",
    "split_lines",
    "split_numbers",
    "xval_loss",
]
