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

from scifm.xval.data import Encoded, collate, encode_sample
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


def _predict_ar(trained: Trained, samples: Sequence[Sample], batch_size: int = 256) -> Predictions:
    """Greedy generation after the text that precedes the first target number.

    Samples with the same prefix length generate together, for at most as many
    tokens as the rest of their text plus 4 (then the answer counts as cut short).
    """
    model, tok = trained.model.eval(), trained.config.tokenizer
    dev = next(model.parameters()).device
    num_id, eos_id = tok.token_to_id.get(NUM, -1), tok.token_to_id[EOS]
    masked = [encode_sample(s, tok, trained.scaler, "mlm") for s in samples]
    full = [encode_sample(s, tok, trained.scaler, "ar") for s in samples]
    groups: dict[int, list[int]] = {}
    for i, it in enumerate(masked):
        groups.setdefault(it.target_spans[0][0], []).append(i)
    answers: list[list[float]] = [[] for _ in samples]
    for start, members in groups.items():
        for j in range(0, len(members), batch_size):
            idx = members[j : j + batch_size]
            ids = torch.as_tensor(np.stack([full[i].ids[:start] for i in idx]), device=dev)
            x_num = torch.as_tensor(np.stack([full[i].x_num[:start] for i in idx]), device=dev)
            rest = max(len(full[i].ids) for i in idx) - start + 4
            gen, vals = _generate(model, ids, x_num, min(rest, trained.config.max_len - start))
            for row, i in enumerate(idx):
                answers[i] = _read_answer(trained, masked[i], gen[row], vals[row], num_id, eos_id)
    true, pred, fields = [], [], []
    for it, values in zip(masked, answers):
        for k, (value, field) in enumerate(zip(it.target_values, it.target_fields)):
            true.append(value)
            fields.append(field)
            pred.append(values[k] if k < len(values) else np.nan)
    return _predictions(trained, true, pred, fields)


def _generate(
    model: torch.nn.Module, ids: torch.Tensor, x_num: torch.Tensor, n_new: int
) -> tuple[list[list[int]], list[list[float]]]:
    """``n_new`` greedy steps for a batch of equal-length prefixes (B, T0)."""
    num_id = model.config.num_id
    for _ in range(max(n_new, 0)):
        logits, numbers = model(ids, x_num)  # (B, T, V), (B, T)
        nxt = logits[:, -1].argmax(-1)  # (B,)
        v = torch.where(nxt == num_id, numbers[:, -1].to(x_num.dtype), torch.ones_like(x_num[:, 0]))
        ids, x_num = torch.cat([ids, nxt[:, None]], 1), torch.cat([x_num, v[:, None]], 1)
    t0 = ids.shape[1] - max(n_new, 0)
    return ids[:, t0:].tolist(), x_num[:, t0:].tolist()


def _read_answer(
    trained: Trained, it: Encoded, gen: list[int], vals: list[float], num_id: int, eos_id: int
) -> list[float]:
    """The numbers of one generated continuation (up to ``[EOS]``), raw values."""
    if eos_id in gen:
        cut = gen.index(eos_id)
        gen, vals = gen[:cut], vals[:cut]
    if num_id >= 0:
        scaled = [v for t, v in zip(gen, vals) if t == num_id][: len(it.target_fields)]
        fields = it.target_fields[: len(scaled)]
        return list(trained.scaler.inverse(scaled, fields)) if scaled else []
    try:
        return find_numbers(trained.config.tokenizer.decode(gen))
    except ValueError:
        return []


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


def predict_text(trained: Trained, text: str) -> dict[str, list]:
    """Answers of a model trained on a user's file for each ``?`` of ``text``.

    ``{"fields": [...], "values": [...]}``; a value is None where the answer is invalid.
    """
    from scifm.xval.userdata import DataConfig, parse_query

    if not isinstance(trained.task, DataConfig):
        raise ValueError(
            f"this model was trained on task {trained.task.task!r}; predicting '?' in new "
            "text needs a model trained on a data file (scifm xval train --data)"
        )
    fallback = {name: fs.mean for name, fs in trained.scaler.fields.items()}
    p = predict(trained, [parse_query(text, trained.task, fallback)])
    return {"fields": list(p.fields), "values": [float(v) if np.isfinite(v) else None
                                                 for v in p.pred]}  # fmt: skip
