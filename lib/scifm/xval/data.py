"""From task samples to model tensors: encoding, masking, padding, batch sources.

Masked-LM mode (the paper's): every token of each target number is replaced by
``[MASK]`` (value 1) and must be recovered -- for xVal the single ``[NUM]`` token
plus its scaled value, for the digit schemes all of its digit tokens.
Autoregressive mode: next-token labels everywhere, and the number target at
each position whose next token is ``[NUM]``; the model sees the whole text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from scifm.core import DatasetBatches
from scifm.xval.scaler import ValueScaler
from scifm.xval.tasks import Sample
from scifm.xval.tokenizers import EOS, MASK, NUM, Tokenizer

IGNORE = -100  # label of positions without a token target


@dataclass(frozen=True)
class Encoded:
    """One sample ready for the model (1-D arrays of equal length T)."""

    ids: np.ndarray  # (T,) int64 input ids
    x_num: np.ndarray  # (T,) float32: scaled value at [NUM], 1 elsewhere
    labels: np.ndarray  # (T,) int64 token targets, IGNORE where none
    num_target: np.ndarray  # (T,) float32 scaled number target (0 where none)
    num_mask: np.ndarray  # (T,) bool: positions with a number target
    target_spans: tuple[tuple[int, int], ...]  # token spans of the target numbers
    target_values: tuple[float, ...]  # raw true values of the target numbers
    target_fields: tuple[str, ...]  # fields of the target numbers


def encode_sample(
    sample: Sample, tokenizer: Tokenizer, scaler: ValueScaler | None, mode: str = "mlm"
) -> Encoded:
    """Tokenize ``sample`` and build inputs/targets for ``mode`` ("mlm" or "ar")."""
    enc = tokenizer.encode(sample.text)
    if len(enc.numbers) != len(sample.fields):
        raise ValueError(
            f"sample {sample.text[:60]!r}: {len(enc.numbers)} numbers but "
            f"{len(sample.fields)} fields"
        )
    ids = np.asarray(enc.ids, dtype=np.int64)
    x_num = np.ones(len(ids), dtype=np.float64)
    num_id = tokenizer.token_to_id.get(NUM, -1)
    scaled = scaler.transform(enc.numbers, sample.fields) if scaler is not None else None
    for k, (s, _) in enumerate(enc.number_spans):
        if ids[s] == num_id:
            x_num[s] = scaled[k] if scaled is not None else enc.numbers[k]
    spans = tuple(enc.number_spans[k] for k in sample.targets)
    labels = np.full(len(ids), IGNORE, dtype=np.int64)
    num_target = np.zeros(len(ids), dtype=np.float64)
    num_mask = np.zeros(len(ids), dtype=bool)
    if mode == "mlm":
        for s, e in spans:
            labels[s:e] = ids[s:e]
            if ids[s] == num_id:
                num_target[s], num_mask[s] = x_num[s], True
            ids[s:e] = tokenizer.token_to_id[MASK]
            x_num[s:e] = 1.0
    elif mode == "ar":
        ids = np.append(ids, tokenizer.token_to_id[EOS])
        x_num = np.append(x_num, 1.0)
        labels = np.append(ids[1:], IGNORE)
        num_mask = np.append(ids[1:] == num_id, False)
        num_target = np.where(num_mask, np.append(x_num[1:], 1.0), 0.0)
    else:
        raise ValueError(f"mode={mode!r}: expected 'mlm' or 'ar'")
    return Encoded(
        ids, x_num.astype(np.float32), labels, num_target.astype(np.float32), num_mask,
        spans, tuple(enc.numbers[k] for k in sample.targets),
        tuple(sample.fields[k] for k in sample.targets),
    )  # fmt: skip


def collate(items: Sequence[Encoded]) -> dict[str, torch.Tensor]:
    """Pad to the longest item: ids with [PAD]=0, values with 1, no targets on padding."""
    t = max(len(it.ids) for it in items)
    b = len(items)
    ids = torch.zeros(b, t, dtype=torch.long)
    x_num = torch.ones(b, t)
    labels = torch.full((b, t), IGNORE, dtype=torch.long)
    num_target = torch.zeros(b, t)
    num_mask = torch.zeros(b, t, dtype=torch.bool)
    for i, it in enumerate(items):
        n = len(it.ids)
        ids[i, :n] = torch.from_numpy(it.ids)
        x_num[i, :n] = torch.from_numpy(it.x_num)
        labels[i, :n] = torch.from_numpy(it.labels)
        num_target[i, :n] = torch.from_numpy(it.num_target)
        num_mask[i, :n] = torch.from_numpy(it.num_mask)
    return {"ids": ids, "x_num": x_num, "labels": labels, "num_target": num_target,
            "num_mask": num_mask}  # fmt: skip


def fit_scaler(samples: Sequence[Sample], kinds: dict[str, str]) -> ValueScaler:
    """Fit the value scaler on the numbers of training ``samples``."""
    from scifm.xval.numbers import find_numbers

    values, fields = [], []
    for s in samples:
        values += find_numbers(s.text)
        fields += list(s.fields)
    return ValueScaler.fit(values, fields, kinds)


def batches(
    items: Sequence[Encoded], batch_size: int, seed: int = 0, accum_steps: int = 1
) -> DatasetBatches:
    """The deterministic batch source over encoded samples (``core.DatasetBatches``)."""
    return DatasetBatches(list(items), batch_size, seed, accum_steps=accum_steps, collate=collate)
