"""Predictions and metrics: what the benchmark, CLI and app report for a trained model.

Prediction follows the paper: where the token head predicts ``[NUM]`` the value
is the number head's output (mapped back through the value scaler); for digit
schemes the predicted tokens are read back as a number, and a malformed number
(e.g. a digit where a sign belongs) is an *invalid* prediction.

Metrics (on raw values) count every test sample. The rule for an invalid
output: it is replaced by the *fallback* prediction -- the training mean of its
field (``ValueScaler.mean``), the constant a model that knows nothing would say --
so ``mse``/``r2`` cover all samples and an invalid answer scores like the mean
predictor; ``mse_valid``/``r2_valid`` beside them cover only the valid answers
(a different subset per encoding, so never compare those alone). ``exact`` = the
prediction written with 3 significant digits equals the truth written so (an
invalid answer is never exact); ``outlier_rate`` = share of samples whose answer
is invalid or off by more than ``OUTLIER_REL`` (10 %) of |truth|;
``invalid_rate`` = share of invalid answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from scifm.xval.data import collate, encode_sample
from scifm.xval.numbers import find_numbers
from scifm.xval.tasks import Sample
from scifm.xval.tokenizers import EOS, NUM
from scifm.xval.train import Trained

OUTLIER_REL = 0.1  # |pred - true| > 10 % of |true| counts as an outlier


@dataclass(frozen=True)
class Predictions:
    true: np.ndarray  # (N,) true values of every target number
    pred: np.ndarray  # (N,) predicted values, NaN where the prediction is invalid
    fields: tuple[str, ...]  # field of each target
    fallback: np.ndarray | None = None  # (N,) stand-in for invalid answers (training mean)


@torch.no_grad()
def predict(trained: Trained, samples: Sequence[Sample], *, batch_size: int = 256) -> Predictions:
    """Predict every target number of ``samples`` (masked-LM or autoregressive)."""
    if trained.config.mode == "ar":
        return _predict_ar(trained, samples)
    model, tok = trained.model.eval(), trained.config.tokenizer
    dev = next(model.parameters()).device
    num_id = tok.token_to_id.get(NUM, -1)
    true, pred, fields = [], [], []
    for i in range(0, len(samples), batch_size):
        items = [encode_sample(s, tok, trained.scaler, "mlm") for s in samples[i : i + batch_size]]
        batch = collate(items)
        logits, numbers = model(batch["ids"].to(dev), batch["x_num"].to(dev))
        best = logits.argmax(-1).cpu().numpy()
        numbers = numbers.float().cpu().numpy()
        for b, it in enumerate(items):
            for (s, e), value, field in zip(it.target_spans, it.target_values, it.target_fields):
                true.append(value)
                fields.append(field)
                if num_id >= 0:
                    ok = best[b, s] == num_id
                    v = trained.scaler.inverse([numbers[b, s]], [field])[0] if ok else np.nan
                else:
                    v = tok.parse_number([tok.vocab[j] for j in best[b, s:e]])
                pred.append(np.nan if v is None else v)
    return _predictions(trained, true, pred, fields)


def _predictions(trained: Trained, true: list, pred: list, fields: list) -> Predictions:
    pred_arr = np.asarray(pred, dtype=np.float64).reshape(-1)
    fallback = trained.scaler.mean(fields) if fields else np.zeros(0)
    return Predictions(np.asarray(true, dtype=np.float64), pred_arr, tuple(fields), fallback)


def _predict_ar(trained: Trained, samples: Sequence[Sample]) -> Predictions:
    """Greedy generation after the text that precedes the first target number."""
    model, tok = trained.model.eval(), trained.config.tokenizer
    dev = next(model.parameters()).device
    num_id, eos_id = tok.token_to_id.get(NUM, -1), tok.token_to_id[EOS]
    true, pred, fields = [], [], []
    for s in samples:
        it = encode_sample(s, tok, trained.scaler, "mlm")
        start = it.target_spans[0][0]
        full = encode_sample(s, tok, trained.scaler, "ar")
        ids = torch.as_tensor(full.ids[:start], device=dev)[None]
        x_num = torch.as_tensor(full.x_num[:start], device=dev)[None]
        k = 0
        values: list[float] = []
        for _ in range(trained.config.max_len - start):
            logits, numbers = model(ids, x_num)
            nxt = int(logits[0, -1].argmax())
            if nxt == eos_id:
                break
            v = 1.0
            if nxt == num_id:
                f = it.target_fields[min(k, len(it.target_fields) - 1)]
                v = float(numbers[0, -1])
                values.append(float(trained.scaler.inverse([v], [f])[0]))
                k += 1
            ids = torch.cat([ids, torch.tensor([[nxt]], device=dev)], 1)
            x_num = torch.cat([x_num, torch.tensor([[v]], device=dev)], 1)
        gen = ids[0, start:].tolist()
        if num_id < 0:
            try:
                values = find_numbers(tok.decode(gen))
            except ValueError:
                values = []
        for j, (value, field) in enumerate(zip(it.target_values, it.target_fields)):
            true.append(value)
            fields.append(field)
            pred.append(values[j] if j < len(values) else np.nan)
    return _predictions(trained, true, pred, fields)


def _sig3(x: np.ndarray) -> np.ndarray:
    return np.array([f"{v:.3g}" if np.isfinite(v) else "nan" for v in x])


def _mse_r2(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(t) == 0:
        return float("nan"), float("nan")
    mse = float(np.mean((y - t) ** 2))
    var = float(np.var(t)) if len(t) > 1 else 0.0
    return mse, (1.0 - mse / var if var > 0 else float("nan"))


def metrics(p: Predictions) -> dict[str, float]:
    """Metrics over all samples of ``p``, invalid answers scored by the fallback rule.

    Without ``p.fallback`` the fallback is the mean of ``p.true`` (R^2 = 0 for it).
    """
    valid = np.isfinite(p.pred)
    fallback = p.fallback if p.fallback is not None else np.full(len(p.true), np.mean(p.true))
    filled = np.where(valid, p.pred, fallback)
    mse, r2 = _mse_r2(p.true, filled)
    mse_valid, r2_valid = _mse_r2(p.true[valid], p.pred[valid])
    err = np.abs(filled - p.true)
    rel = err / np.maximum(np.abs(p.true), 1e-12)
    return {
        "mse": mse,
        "r2": r2,
        "mse_valid": mse_valid,
        "r2_valid": r2_valid,
        "exact": float(np.mean(_sig3(p.pred) == _sig3(p.true))) if len(p.true) else float("nan"),
        "outlier_rate": float(np.mean(~valid | (rel > OUTLIER_REL))),
        "invalid_rate": float(np.mean(~valid)),
        "median_rel_error": float(np.median(rel)) if len(p.true) else float("nan"),
        "n": len(p.true),
    }


def evaluate(trained: Trained, samples: Sequence[Sample]) -> dict[str, float]:
    return metrics(predict(trained, samples))
