"""The value scaler: maps each numeric field into about [-5, 5] before xVal sees it.

xVal multiplies a token embedding by the number, and layer norm then squashes
magnitude, so values must live in a moderate range. The reference code scales
by hand per dataset; here a ``ValueScaler`` is fitted on training data, stored
as JSON in the checkpoint's ``extra`` and inverted at prediction time.

Each field (e.g. ``"operand"``, ``"result"``, ``"x"``) gets
``y = (f(x) - center) / scale`` with ``f`` the identity (``kind="linear"``) or
``asinh`` (``kind="asinh"``, for values spanning decades; it is odd, smooth and
invertible, log-like for large |x|). ``center``/``scale`` are the training mean
and standard deviation of ``f(x)``, so training values land within a few units of 0.
The raw training mean of each field is kept too (``mean``): it is the fallback
prediction that scores an invalid output (see ``evaluate.metrics``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

KINDS = ("linear", "asinh")


@dataclass(frozen=True)
class FieldScale:
    kind: str  # "linear" or "asinh"
    center: float  # training mean of f(x)
    scale: float  # training std of f(x) (> 0)
    mean: float  # training mean of the raw values (fallback prediction for invalid outputs)


class ValueScaler:
    """Per-field affine (optionally asinh-warped) scaling; fit, transform, inverse, JSON."""

    def __init__(self, fields: Mapping[str, FieldScale]) -> None:
        self.fields = dict(fields)

    @classmethod
    def fit(
        cls, values: Sequence[float], fields: Sequence[str], kinds: Mapping[str, str]
    ) -> ValueScaler:
        """Fit on parallel lists of raw ``values`` and their ``fields``; ``kinds[field]``."""
        v = np.asarray(values, dtype=np.float64)
        f = np.asarray(fields)
        if v.shape != f.shape:
            raise ValueError(f"values {v.shape} and fields {f.shape}: expected equal lengths")
        out = {}
        for name in sorted(set(f.tolist())):
            kind = kinds.get(name, "linear")
            if kind not in KINDS:
                raise ValueError(f"scaler kind {kind!r} for field {name!r}: expected {KINDS}")
            raw = v[f == name]
            w = _warp(raw, kind)
            std = float(w.std())
            out[name] = FieldScale(
                kind, float(w.mean()), std if std > 1e-12 else 1.0, float(raw.mean())
            )
        return cls(out)

    def _get(self, field: str) -> FieldScale:
        if field not in self.fields:
            raise KeyError(f"scaler has no field {field!r}; fitted fields: {sorted(self.fields)}")
        return self.fields[field]

    def mean(self, fields: Sequence[str]) -> np.ndarray:
        """Raw training mean of each of ``fields`` (the fallback prediction)."""
        return np.array([self._get(name).mean for name in fields], dtype=np.float64)

    def transform(self, values: Sequence[float], fields: Sequence[str]) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        out = np.empty_like(v)
        for i, (x, name) in enumerate(zip(v, fields)):
            fs = self._get(name)
            out[i] = (_warp(np.array([x]), fs.kind)[0] - fs.center) / fs.scale
        return out

    def inverse(self, scaled: Sequence[float], fields: Sequence[str]) -> np.ndarray:
        y = np.asarray(scaled, dtype=np.float64)
        out = np.empty_like(y)
        for i, (s, name) in enumerate(zip(y, fields)):
            fs = self._get(name)
            w = s * fs.scale + fs.center
            out[i] = math.sinh(min(max(w, -700.0), 700.0)) if fs.kind == "asinh" else w
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            k: {"kind": f.kind, "center": f.center, "scale": f.scale, "mean": f.mean}
            for k, f in self.fields.items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValueScaler:
        out = {}
        for k, d in data.items():
            kind, center = str(d["kind"]), float(d["center"])
            # checkpoints written before ``mean`` existed: the centre mapped back
            # (exact for "linear"; sinh of the mean asinh for "asinh")
            default = math.sinh(center) if kind == "asinh" else center
            out[k] = FieldScale(kind, center, float(d["scale"]), float(d.get("mean", default)))
        return cls(out)


def _warp(x: np.ndarray, kind: str) -> np.ndarray:
    return np.arcsinh(x) if kind == "asinh" else x
