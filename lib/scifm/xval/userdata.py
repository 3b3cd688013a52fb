"""A user's own data as xVal samples: JSON-lines records or plain text with numbers.

- ``jsonl``: one JSON object per line. The text the model sees is the compact
  JSON (``{"age":59,"bmi":32.1}``); the field of a number is its key path
  (``"a.b"``; every element of a list shares its list's field).
- ``text``: one text per line; the k-th number of a line is field ``n<k>``
  (CSV-like files get one field per column).

``DataConfig.target`` says what is predicted: ``"all"`` makes one masked sample
per number of a line (each number in turn, as the real-data task does), a field
name predicts that field. Lines are split into training and validation *by
line*, so no line is on both sides under another mask. The value scaler is fitted
on the training lines only and stored with the checkpoint (``Trained.scaler``);
the exponent range of the digit schemes comes from the training numbers too.

Bad input raises ``ValueError`` naming the file and line; a file without numbers
is refused. For ``predict``, a ``?`` stands for each number to be filled in.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scifm.core import ConfigMixin, numpy_rng
from scifm.xval.numbers import find_numbers, split_numbers
from scifm.xval.tasks import Sample

FORMATS = ("jsonl", "text")
QUERY = "?"  # placeholder of a number to predict in ``parse_query``
_SENTINEL = "__scifm_query__"


@dataclass(frozen=True)
class DataConfig(ConfigMixin):
    """What was trained on: stored in the checkpoint in place of a ``TaskConfig``."""

    format: str = "jsonl"  # "jsonl" (one JSON object per line) or "text" (one text per line)
    target: str = "all"  # "all": each number of a line masked in turn; else one field's name
    val_fraction: float = 0.2  # share of lines held out for validation (split by line)
    split_seed: int = 0  # seed of the line permutation that makes the split
    exp_min: int = -8  # digit schemes: smallest exponent (from the training numbers)
    exp_max: int = 7  # digit schemes: largest exponent
    kinds: tuple[tuple[str, str], ...] = ()  # value-scaler warp per field ("linear"/"asinh")
    source: str = ""  # the file trained on (information only)
    task: str = "data"  # so code that shows ``trained.task.task`` has a name to show

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"DataConfig.format={self.format!r}: expected one of {FORMATS}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"DataConfig.val_fraction={self.val_fraction}: expected (0, 1)")
        if self.exp_min > self.exp_max:
            raise ValueError(f"DataConfig: exp_min={self.exp_min} > exp_max={self.exp_max}")

    @property
    def exp_range(self) -> tuple[int, int]:
        return self.exp_min, self.exp_max

    @property
    def scaler_kinds(self) -> dict[str, str]:
        return dict(self.kinds)


@dataclass(frozen=True)
class Line:
    """One parsed line: the model's text and the field of each of its numbers."""

    number: int  # 1-based line number in the file
    text: str
    fields: tuple[str, ...]
    values: tuple[float, ...]


def detect_format(path: str | Path) -> str:
    """``jsonl`` for ``.jsonl``/``.json`` files or a first line starting with ``{``."""
    p = Path(path)
    if p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    for raw in _read_lines(p):
        if raw.strip():
            return "jsonl" if raw.lstrip().startswith("{") else "text"
    return "text"


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise ValueError(f"data file {str(path)!r}: no such file")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"data file {str(path)!r}: not UTF-8 text ({e.reason})") from e


MAX_ABS = 1e30  # the largest magnitude accepted: numbers go through float32 (max 3.4e38)


def _check_magnitude(value: float, where: str, what: str) -> None:
    if abs(value) > MAX_ABS:
        raise ValueError(f"{where}: {what} has magnitude {abs(value):g}; this model takes "
                         f"numbers up to {MAX_ABS:g} in magnitude (float32)")  # fmt: skip


def _leaves(obj: Any, key: str, out: list[tuple[str, float]], where: str) -> None:
    """Numeric leaves of a JSON value in text order, with their key path."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return
    if isinstance(obj, int | float):
        if not math.isfinite(obj):
            raise ValueError(f"{where}: field {key!r} is {obj}; expected a finite number")
        _check_magnitude(float(obj), where, f"field {key!r}")
        out.append((key or "value", float(obj)))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _leaves(v, f"{key}.{k}" if key else str(k), out, where)
    elif isinstance(obj, list):
        for v in obj:
            _leaves(v, key, out, where)


def json_line(obj: Any, where: str) -> tuple[str, tuple[str, ...], tuple[float, ...]]:
    """(compact text, fields, values) of one JSON record; checks the text's numbers."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object ({{...}}), got {type(obj).__name__}")
    leaves: list[tuple[str, float]] = []
    _leaves(obj, "", leaves, where)
    text = json.dumps(obj, separators=(",", ":"))
    found = find_numbers(text)
    values = [v for _, v in leaves]
    if len(found) != len(values) or not np.allclose(found, values, rtol=1e-9, atol=0):
        raise ValueError(
            f"{where}: a key or string holds a number ({text[:80]!r}); the model cannot tell "
            "it from a value: rename the key or drop the digits from the string"
        )
    return text, tuple(k for k, _ in leaves), tuple(values)


def parse_line(raw: str, fmt: str, where: str) -> Line | None:
    """One line of a data file, or None for a blank line (and a text line with no number)."""
    if not raw.strip():
        return None
    lineno = int(where.rsplit(":", 1)[-1]) if ":" in where else 0
    if fmt == "jsonl":
        try:
            obj = json.loads(raw, parse_constant=lambda c: float(c))
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from e
        text, fields, values = json_line(obj, where)
    else:
        text = raw.strip()
        try:
            values = tuple(find_numbers(text))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from e
        fields = tuple(f"n{k}" for k in range(len(values)))
        for k, v in enumerate(values):
            _check_magnitude(v, where, f"number {k + 1}")
    if not values:
        return None
    return Line(lineno, text, fields, values)


def read_lines(path: str | Path, fmt: str | None = None) -> list[Line]:
    """Every non-blank line of ``path`` that holds numbers; refuses a file without any."""
    p = Path(path)
    fmt = fmt or detect_format(p)
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {FORMATS}")
    lines = [parse_line(raw, fmt, f"{p}:{i}") for i, raw in enumerate(_read_lines(p), 1)]
    out = [ln for ln in lines if ln is not None]
    if not out:
        raise ValueError(f"data file {str(p)!r}: no numbers found; nothing to learn from")
    return out


def samples_of(lines: Sequence[Line], target: str) -> list[Sample]:
    """Masked samples: one per number (``target="all"``) or those of one field."""
    out = []
    for ln in lines:
        if target == "all":
            out += [Sample(ln.text, ln.fields, (k,)) for k in range(len(ln.values))]
        else:
            idx = tuple(k for k, f in enumerate(ln.fields) if f == target)
            if idx:
                out.append(Sample(ln.text, ln.fields, idx))
    if not out:
        fields = sorted({f for ln in lines for f in ln.fields})
        raise ValueError(f"target {target!r}: no line has this field; fields are {fields}")
    return out


def non_numeric_target(path: str | Path, target: str) -> tuple[int, Any] | None:
    """(line number, value) of the first JSON line where the field ``target`` (a dotted key
    path, as ``json_line`` names fields) holds something other than a number, or None: why a
    target that ``samples_of`` finds on no line may still be in the file."""
    for i, raw in enumerate(_read_lines(Path(path)), 1):
        try:
            obj: Any = json.loads(raw)
        except json.JSONDecodeError:
            continue
        for key in target.split("."):
            obj = obj.get(key, _SENTINEL) if isinstance(obj, dict) else _SENTINEL
        # a missing field reads as _SENTINEL, as does a query mark's stand-in: neither counts
        if obj != _SENTINEL and (isinstance(obj, bool) or not isinstance(obj, int | float)):
            return i, obj
    return None


def split_lines(lines: Sequence[Line], val_fraction: float, seed: int) -> tuple[list, list]:
    """(training lines, validation lines), split by line from ``seed``.

    Identical lines (real tables have duplicate rows) always land on the same side,
    so no text is on both sides.
    """
    if not 0 < val_fraction < 1:  # NaN included
        raise ValueError(f"val_fraction={val_fraction}: expected a fraction between 0 and 1")
    groups: dict[str, list[int]] = {}
    for i, ln in enumerate(lines):
        groups.setdefault(ln.text, []).append(i)
    if len(groups) < 2:
        raise ValueError(f"{len(groups)} distinct line(s) with numbers: need at least 2 to split")
    keys = list(groups)
    perm = numpy_rng([seed, 7]).permutation(len(keys))
    n_val = min(max(1, round(val_fraction * len(keys))), len(keys) - 1)
    val = sorted(i for g in perm[:n_val] for i in groups[keys[int(g)]])
    train = sorted(i for g in perm[n_val:] for i in groups[keys[int(g)]])
    return [lines[i] for i in train], [lines[i] for i in val]


def _exponent(v: float) -> int:
    return math.floor(math.log10(abs(v))) - 2  # value = m * 10**e with m in [100, 999]


def data_config(lines: Sequence[Line], *, fmt: str, target: str = "all", val_fraction: float = 0.2,
                split_seed: int = 0, source: str = "") -> DataConfig:  # fmt: skip
    """The ``DataConfig`` of training ``lines``: exponent range and scaler warps from them."""
    values = np.array([v for ln in lines for v in ln.values])
    fields = np.array([f for ln in lines for f in ln.fields])
    nonzero = values[values != 0]
    exps = [_exponent(v) for v in nonzero] or [0]
    kinds = []
    for name in sorted(set(fields.tolist())):
        mag = np.abs(values[fields == name])
        mag = mag[mag > 0]
        # values spanning more than two decades get the log-like asinh warp
        wide = mag.size > 1 and np.quantile(mag, 0.99) > 100 * max(np.quantile(mag, 0.5), 1.0)
        kinds.append((name, "asinh" if wide else "linear"))
    return DataConfig(
        format=fmt, target=target, val_fraction=val_fraction, split_seed=split_seed,
        exp_min=max(min(exps) - 1, -30), exp_max=min(max(exps) + 1, 30), kinds=tuple(kinds),
        source=source,
    )  # fmt: skip


def parse_query(text: str, cfg: DataConfig, fallback: dict[str, float]) -> Sample:
    """A sample from ``text`` whose ``?`` marks are the numbers to predict.

    Each ``?`` is written as its field's ``fallback`` value (any number would do:
    the masked-LM hides the targets) so the tokenizer sees a number there.
    """
    if QUERY not in text:
        raise ValueError(f"text {text[:60]!r}: mark each number to predict with '?'")
    if cfg.format == "jsonl":
        marked = re.sub(r"(?<=[:\[,])\s*\?\s*(?=[,\]}])", lambda _: f'"{_SENTINEL}"', text)
        try:
            obj = json.loads(marked)
        except json.JSONDecodeError as e:
            raise ValueError(
                f"text {text[:60]!r}: not a JSON object with ? values ({e.msg})"
            ) from e
        keys: list[str] = []
        obj = _fill(obj, "", fallback, keys)
        filled, fields, _ = json_line(obj, f"query {text[:60]!r}")
        targets = _query_targets(fields, keys)
    else:
        pieces, targets, fields, k = [], [], [], 0
        for seg in split_numbers(text):
            for j, part in enumerate(seg.text.split(QUERY) if not seg.is_number else [seg.text]):
                if j:
                    field = f"n{k}"
                    pieces.append(repr(float(_known(fallback, field))))
                    targets.append(k)
                    fields.append(field)
                    k += 1
                pieces.append(part)
            if seg.is_number:
                fields.append(f"n{k}")
                k += 1
        filled = "".join(pieces)
        numbers = find_numbers(filled)
        if len(numbers) != len(fields):
            raise ValueError(f"text {text[:60]!r}: a '?' touches a number; separate them")
        for k, v in enumerate(numbers):
            _check_magnitude(v, f"text {text[:60]!r}", f"number {k + 1}")
    return Sample(filled, tuple(fields), tuple(targets))


def _known(fallback: dict[str, float], field: str) -> float:
    if field not in fallback:
        raise ValueError(f"field {field!r} was not in the training data; known: {sorted(fallback)}")
    return fallback[field]


def _fill(obj: Any, key: str, fallback: dict[str, float], keys: list[str]) -> Any:
    if obj == _SENTINEL:
        keys.append(key)
        return _known(fallback, key or "value")
    if isinstance(obj, dict):
        return {
            k: _fill(v, f"{key}.{k}" if key else str(k), fallback, keys) for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_fill(v, key, fallback, keys) for v in obj]
    if isinstance(obj, int | float) and not isinstance(obj, bool):
        keys.append("")  # a given number: position kept, not a target
    elif (key or "value") in fallback:  # a field the model knows as a number, given as text
        raise ValueError(
            f"field {key or 'value'!r} is {json.dumps(obj)[:40]}; the model was trained on "
            "numbers there: give a number or '?'"
        )
    return obj


def _query_targets(fields: tuple[str, ...], keys: list[str]) -> list[int]:
    """Indices of the numbers that were ``?`` (``keys`` holds "" for given numbers)."""
    if len(keys) != len(fields):
        raise AssertionError("query numbers out of step with the JSON leaves")
    return [i for i, k in enumerate(keys) if k]
