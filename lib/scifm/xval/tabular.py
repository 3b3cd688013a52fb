"""Real tabular data as JSON records: the tables scikit-learn ships inside its package.

``load_diabetes`` (442 patients: age, sex, BMI, blood pressure, six blood serum
measurements and a disease-progression score one year later; Efron et al. 2004),
``load_wine``, ``load_iris`` and ``load_linnerud`` read CSV files bundled with
scikit-learn -- nothing is downloaded. Each row becomes one JSON object with short
keys; values are rounded to 3 significant digits so that every encoding (the digit
schemes write 3) sees the inputs exactly. The real-data task masks one field of a
row at a time (``userdata.samples_of(lines, "all")``) and splits *by row*
(``converge.lines_study``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scifm.xval.userdata import Line, json_line

TABLES = ("diabetes", "wine", "iris", "linnerud")


def _round3(x: float) -> float | int:
    v = float(f"{x:.3g}")
    return int(v) if v.is_integer() and abs(v) < 1e15 else v


def table(name: str) -> tuple[list[str], np.ndarray]:
    """(column keys, (rows, columns) values) of a bundled table; the target is last."""
    from sklearn import datasets

    if name == "diabetes":
        d = datasets.load_diabetes(scaled=False)
        keys = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "y"]
        return keys, np.column_stack([d.data, d.target])
    if name == "wine":
        d = datasets.load_wine()
        keys = [f"f{i}" for i in range(d.data.shape[1])] + ["cls"]
        return keys, np.column_stack([d.data, d.target])
    if name == "iris":
        d = datasets.load_iris()
        return ["sl", "sw", "pl", "pw", "cls"], np.column_stack([d.data, d.target])
    if name == "linnerud":
        d = datasets.load_linnerud()
        keys = ["chins", "situps", "jumps", "weight", "waist", "pulse"]
        return keys, np.column_stack([d.data, d.target])
    raise ValueError(f"table {name!r}: expected one of {TABLES}")


def records(name: str) -> list[dict[str, float | int]]:
    """The rows of table ``name`` as JSON-ready dicts (3 significant digits)."""
    keys, values = table(name)
    return [{k: _round3(v) for k, v in zip(keys, row)} for row in values]


def lines(name: str) -> list[Line]:
    """Rows of table ``name`` as parsed lines (what ``userdata.read_lines`` gives for its file)."""
    out = []
    for i, rec in enumerate(records(name), 1):
        text, fields, values = json_line(rec, f"{name}:{i}")
        out.append(Line(i, text, fields, values))
    return out


def write_jsonl(name: str, path: str | Path) -> Path:
    """Write table ``name`` as JSON lines (one row per line) to ``path``."""
    p = Path(path)
    p.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records(name)))
    return p
