"""Pure computations behind the "numbers" page (the app only lays them out).

- ``tokenize_all``: the five tokenizations of a text, with warnings for absurd input;
- ``parse_question`` / ``answer``: ``a*b`` asked of every shipped model;
- ``ood_sweep``: predictions over a range of the first operand, one curve per model;
- ``orbit_prediction``: true orbits and the models' predicted last positions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from scifm.xval.evaluate import predict
from scifm.xval.numbers import split_numbers
from scifm.xval.orbits import integrate
from scifm.xval.tasks import ood_text, orbit_systems
from scifm.xval.tokenizers import SCHEMES, Encoding, get_tokenizer
from scifm.xval.train import Trained

MAX_CHARS = 20_000  # longer texts are refused with a message (the page stays responsive)


@dataclass
class Tokenized:
    """The five tokenizations of one text, or the reason there are none."""

    encodings: dict[str, Encoding] = field(default_factory=dict)
    error: str | None = None  # set when the text cannot be tokenized at all
    notes: list[str] = field(default_factory=list)  # warnings about odd input


def tokenize_all(text: str, schemes: tuple[str, ...] = SCHEMES) -> Tokenized:
    """Tokenize ``text`` with every scheme; never raises for user text."""
    if not isinstance(text, str) or not text.strip():
        return Tokenized(error="Type or paste some text with numbers (the box is empty).")
    if len(text) > MAX_CHARS:
        return Tokenized(
            error=f"The text has {len(text):,} characters; the limit here is {MAX_CHARS:,}."
        )
    try:
        segs = split_numbers(text)
    except ValueError as exc:
        return Tokenized(error=f"Cannot read this text: {exc}.")
    out = Tokenized()
    lower = text.lower()
    if "nan" in lower or "inf" in lower:
        out.notes.append("'nan' and 'inf' are words here, not numbers: they stay text.")
    if "--" in text or "+-" in text or "-+" in text:
        out.notes.append("A doubled sign like '--5' reads as the operator '-' then -5.")
    big = [s.value for s in segs if s.value is not None and abs(s.value) > 3.4e38]
    if big:
        out.notes.append(
            f"{len(big)} number(s) exceed float32 (|x| > 3.4e38): xVal keeps them in float64 "
            "here, but a model would need them scaled first."
        )
    for scheme in schemes:
        out.encodings[scheme] = get_tokenizer(scheme).encode(text)
    return out


def parse_question(text: str) -> tuple[float, float] | str:
    """``"a*b"`` (optionally ``=`` or ``?`` at the end) -> (a, b), or an error message."""
    if not isinstance(text, str) or not text.strip():
        return "Ask a product like 4.5*3.2 (the box is empty)."
    if len(text) > 200:
        return f"The question has {len(text)} characters; ask a short product like 4.5*3.2."
    q = text.strip().rstrip("?=").strip()
    try:
        segs = split_numbers(q)
    except ValueError as exc:
        return f"Cannot read the question: {exc}."
    nums = [s for s in segs if s.value is not None]
    rest = [s.text.strip() for s in segs if s.value is None]
    if len(nums) != 2 or rest not in (["*"], ["x"], ["×"]) or segs[1].value is not None:
        return f"Expected a product of two numbers like 4.5*3.2; got {text!r}."
    a, b = float(nums[0].value), float(nums[1].value)
    if max(abs(a), abs(b)) > 1e12:
        return (
            f"{text.strip()!r}: operands beyond 1e12 are absurd for models trained on [1, 10); "
            "ask something like 4.5*3.2 or 12*3 (out of range, but sensible)."
        )
    return a, b


def answer(models: Mapping[str, Trained], a: float, b: float) -> dict[str, float]:
    """Each model's answer to ``a*b=`` (NaN where its prediction is invalid)."""
    sample = ood_text(a, b)
    out = {}
    for scheme, trained in models.items():
        with np.errstate(all="ignore"):
            v = float(predict(trained, [sample]).pred[0])
        out[scheme] = v if math.isfinite(v) else float("nan")
    return out


def ood_sweep(models: Mapping[str, Trained], b: float, a_grid: np.ndarray) -> dict[str, np.ndarray]:
    """Predicted ``a*b`` over ``a_grid`` for each model; key ``"truth"`` holds a*b."""
    a_grid = np.array([float(f"{a:.3g}") for a in a_grid])
    samples = [ood_text(float(a), float(b)) for a in a_grid]
    out = {"a": a_grid, "truth": np.array([float(f"{a * b:.8g}") for a in a_grid])}
    for scheme, trained in models.items():
        out[scheme] = predict(trained, samples).pred
    return out


def orbit_prediction(models: Mapping[str, Trained], seed: int, split: str = "test") -> dict:
    """One orbit-task system: its true orbits, the recorded positions, predicted last step."""
    from scifm.core import numpy_rng
    from scifm.xval.numbers import find_numbers
    from scifm.xval.tasks import SPLITS, generate

    task = next(iter(models.values())).task
    sample = generate(task, 1, seed, split)[0]
    system = orbit_systems(task, 1, numpy_rng([seed, SPLITS.index(split)]), split)
    n_pl = int(system.n_planets[0])
    nums = find_numbers(sample.text)
    recorded = np.array(nums[n_pl:]).reshape(task.n_steps, n_pl, 2)
    period = 2 * np.pi * float(system.a_max[0]) ** 1.5  # outermost planet's period
    dense, _ = integrate(system, np.linspace(0, period, 240)[1:], dt=2e-2)
    orbits = dense[0, :, 1 : n_pl + 1] - dense[0, :, :1]  # (t, planets, 2) around the star
    preds = {s: predict(t, [sample]).pred.reshape(n_pl, 2) for s, t in models.items()}
    return {"recorded": recorded, "orbits": orbits, "predicted": preds, "text": sample.text}
