"""The arithmetic tasks of the xVal paper as pure generators of ``(config, n, seed)``.

- ``multiplication``: ``a*b=c`` with a, b of 3 to 5 digits (written with 3
  significant digits, e.g. 12300, so every scheme sees the operands exactly);
- ``compound``: binary expression trees of ``+ - *`` over 2 to 5 operands in
  [1, 10), e.g. ``((1.23+4.56)*7.89)-2.34=43.3362``;
- ``ood``: ``a*b=c`` with a, b in [1, 10) but a never inside the held-out band
  ``ood_hole`` during training; the ``interp`` split draws a inside the band, the
  ``extrap`` split beyond ``ood_max`` (up to ``ood_extrap_max``).
- ``orbits`` lives in ``orbits.py``.

Every task predicts the number(s) after ``=`` (``Sample.targets``); each number
belongs to a field (``"operand"``, ``"result"``) that the value scaler fits.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from scifm.core import ConfigMixin, numpy_rng
from scifm.xval.numbers import format_number
from scifm.xval.orbits import Systems, integrate, sample_systems

TASKS = ("multiplication", "compound", "ood", "orbits")
SPLITS = ("train", "test", "interp", "extrap")


@dataclass(frozen=True)
class Sample:
    """One text, the field of each of its numbers, and which numbers are to be predicted."""

    text: str  # e.g. "123*456=56088"
    fields: tuple[str, ...]  # field name of each number, in text order
    targets: tuple[int, ...]  # indices (into the numbers) of the numbers to predict


@dataclass(frozen=True)
class TaskConfig(ConfigMixin):
    task: str = "multiplication"  # one of TASKS
    n_train: int = 20_000  # training samples drawn once (seed) and reused over epochs
    n_test: int = 1_000  # evaluation samples per split
    min_digits: int = 3  # multiplication: fewest digits of an operand
    max_digits: int = 5  # multiplication: most digits of an operand
    min_operands: int = 2  # compound: fewest operands of an expression tree
    max_operands: int = 5  # compound: most operands
    ood_hole: tuple[float, float] = (4.0, 5.0)  # ood: band of a held out of training
    ood_max: float = 10.0  # ood: training a (and b) stay below this
    ood_extrap_max: float = 15.0  # ood: extrap split draws a in [ood_max, this)
    n_planets: tuple[int, int] = (2, 3)  # orbits: planets per system (inclusive range)
    n_steps: int = 3  # orbits: recorded positions per planet (the last one is predicted)
    dt: float = 0.5  # orbits: time between recorded positions (inner period ~6.3)
    a_hole: tuple[float, float] = (2.0, 2.4)  # orbits: outer semi-major axes held out

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"n_train": 256, "n_test": 64},
        "small": {"n_train": 20_000, "n_test": 1_000},
    }

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"TaskConfig.task={self.task!r}: expected one of {TASKS}")
        if self.n_train < 1 or self.n_test < 1:
            raise ValueError("TaskConfig.n_train and n_test must be >= 1")
        if not 1 <= self.min_digits <= self.max_digits <= 9:
            raise ValueError("TaskConfig: need 1 <= min_digits <= max_digits <= 9")
        if not 2 <= self.min_operands <= self.max_operands <= 8:
            raise ValueError("TaskConfig: need 2 <= min_operands <= max_operands <= 8")
        lo, hi = self.ood_hole
        if not 1.0 <= lo < hi <= self.ood_max < self.ood_extrap_max:
            raise ValueError(
                f"TaskConfig: need 1 <= ood_hole[0] < ood_hole[1] <= ood_max < ood_extrap_max, "
                f"got {self.ood_hole}, {self.ood_max}, {self.ood_extrap_max}"
            )
        if not 1 <= self.n_planets[0] <= self.n_planets[1] <= 5 or self.n_steps < 2:
            raise ValueError("TaskConfig: need 1 <= n_planets <= 5 and n_steps >= 2")

    @property
    def exp_range(self) -> tuple[int, int]:
        """Exponents (value = m * 10**e, 100 <= m <= 999) the task's numbers need."""
        return {
            "multiplication": (0, 7),
            "compound": (-6, 3),
            "ood": (-2, 0),
            "orbits": (-9, -2),
        }[self.task]

    @property
    def scaler_kinds(self) -> dict[str, str]:
        """Value-scaler warp per field: asinh where values span decades."""
        if self.task == "multiplication":
            return {"operand": "asinh", "result": "asinh"}
        if self.task == "compound":
            return {"operand": "linear", "result": "asinh"}
        return {}


def three_sig(rng: np.random.Generator, lo: float, hi: float, size: int) -> np.ndarray:
    """Uniform values in [lo, hi) rounded to 3 significant digits (exact for every scheme)."""
    return _round3(rng.uniform(lo, hi, size))


def _round3(x: np.ndarray) -> np.ndarray:
    return np.array([float(f"{v:.3g}") for v in x], dtype=np.float64)


def _multiplication(cfg: TaskConfig, n: int, rng: np.random.Generator) -> list[Sample]:
    out = []
    for _ in range(n):
        a, b = (
            int(
                rng.integers(100, 1000)
                * 10 ** int(rng.integers(cfg.min_digits - 3, cfg.max_digits - 2))
            )
            for _ in range(2)
        )
        out.append(Sample(f"{a}*{b}={a * b}", ("operand", "operand", "result"), (2,)))
    return out


def _expression(rng: np.random.Generator, k: int) -> tuple[str, float]:
    """A random binary tree over ``k`` operands; returns (text, value)."""
    if k == 1:
        v = float(three_sig(rng, 1.0, 10.0, 1)[0])
        return format_number(v), v
    left = int(rng.integers(1, k))
    (ls, lv), (rs, rv) = _expression(rng, left), _expression(rng, k - left)
    op = "+-*"[int(rng.integers(3))]
    ls = ls if left == 1 else f"({ls})"
    rs = rs if k - left == 1 else f"({rs})"
    value = lv + rv if op == "+" else lv - rv if op == "-" else lv * rv
    return f"{ls}{op}{rs}", value


def _compound(cfg: TaskConfig, n: int, rng: np.random.Generator) -> list[Sample]:
    out = []
    for _ in range(n):
        k = int(rng.integers(cfg.min_operands, cfg.max_operands + 1))
        text, value = _expression(rng, k)
        value = float(np.round(value, 8))  # drop float noise like 0.30000000000000004
        out.append(Sample(f"{text}={format_number(value)}", ("operand",) * k + ("result",), (k,)))
    return out


def ood_operand(cfg: TaskConfig, n: int, rng: np.random.Generator, split: str) -> np.ndarray:
    """The first operand ``a`` of the ood task for ``split``."""
    lo, hi = cfg.ood_hole
    if split == "interp":
        return three_sig(rng, lo, hi, n)
    if split == "extrap":
        return three_sig(rng, cfg.ood_max, cfg.ood_extrap_max, n)
    width_below, width_above = lo - 1.0, cfg.ood_max - hi
    u = rng.uniform(0, width_below + width_above, n)
    a = np.where(u < width_below, 1.0 + u, hi + (u - width_below))
    a = _round3(a)
    return np.where((a >= lo) & (a < hi), np.where(a < (lo + hi) / 2, lo - 0.01, hi), a)


def ood_text(a: float, b: float) -> Sample:
    c = float(np.round(a * b, 8))
    text = f"{format_number(a)}*{format_number(b)}={format_number(c)}"
    return Sample(text, ("operand", "operand", "result"), (2,))


def _ood(cfg: TaskConfig, n: int, rng: np.random.Generator, split: str) -> list[Sample]:
    a = ood_operand(cfg, n, rng, split)
    b = three_sig(rng, 1.0, cfg.ood_max, n)
    return [ood_text(float(x), float(y)) for x, y in zip(a, b)]


def generate(
    cfg: TaskConfig, n: int, seed: int, split: str = "train", *, exclude: Collection[str] = ()
) -> list[Sample]:
    """``n`` samples of ``cfg.task`` for ``split`` (train/test/interp/extrap), from ``seed``.

    ``exclude``: texts that must not occur (e.g. the training texts, so that a test
    set holds no training sample); draws continue from the same stream until ``n``
    samples avoid them. With no ``exclude`` the first ``n`` draws are returned.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {SPLITS}")
    if split in ("interp", "extrap") and cfg.task not in ("ood", "orbits"):
        raise ValueError(f"split={split!r} exists only for the ood and orbits tasks")
    rng = numpy_rng([seed, SPLITS.index(split)])
    out: list[Sample] = []
    for _ in range(100):
        out += [s for s in _draw(cfg, n - len(out), rng, split) if s.text not in exclude]
        if len(out) == n:
            return out
    raise ValueError(
        f"task {cfg.task!r} split {split!r}: could not draw {n} samples outside the "
        f"{len(exclude)} excluded texts"
    )


def _draw(cfg: TaskConfig, n: int, rng: np.random.Generator, split: str) -> list[Sample]:
    if cfg.task == "multiplication":
        return _multiplication(cfg, n, rng)
    if cfg.task == "compound":
        return _compound(cfg, n, rng)
    if cfg.task == "ood":
        return _ood(cfg, n, rng, "train" if split == "test" else split)
    return orbit_samples(cfg, n, rng, split)


def held_out(
    cfg: TaskConfig, n: int, seed: int, split: str, train: Sequence[Sample]
) -> list[Sample]:
    """Evaluation samples of ``split`` none of whose texts occurs in ``train``."""
    return generate(cfg, n, seed, split, exclude=frozenset(s.text for s in train))


def _fmt(v: float) -> str:
    return format_number(float(f"{v:.3g}"))


def orbit_systems(cfg: TaskConfig, n: int, rng: np.random.Generator, split: str) -> Systems:
    """The systems of the orbit task's ``split``: ood splits vary the outer ``a_max``."""
    if split == "interp":
        return sample_systems(n, rng, n_planets=cfg.n_planets, a_max_range=cfg.a_hole)
    if split == "extrap":
        return sample_systems(n, rng, n_planets=cfg.n_planets, a_max_range=(3.0, 3.5))
    return sample_systems(n, rng, n_planets=cfg.n_planets, a_hole=cfg.a_hole)


def orbit_samples(cfg: TaskConfig, n: int, rng: np.random.Generator, split: str) -> list[Sample]:
    """Orbit-task samples; ood splits vary ``a_max``.

    The text lists the masses and ``n_steps`` recorded positions (relative to the
    star, 3 significant digits); the last step's positions are predicted:
    ``{"m":[2.1e-05,3.3e-05],"p":[[1,0,1.8,0.2],[...],...]}``.
    """
    sys = orbit_systems(cfg, n, rng, split)
    times = np.arange(cfg.n_steps) * cfg.dt
    pos, _ = integrate(sys, times)
    rel = pos[:, :, 1:] - pos[:, :, :1]  # (S, steps, K, 2) relative to the star
    out = []
    for s in range(n):
        k = int(sys.n_planets[s])
        masses = ",".join(_fmt(x) for x in sys.mass[s, 1 : k + 1])
        steps = [",".join(_fmt(x) for x in rel[s, t, :k].reshape(-1)) for t in range(cfg.n_steps)]
        text = '{"m":[' + masses + '],"p":[' + ",".join(f"[{x}]" for x in steps) + "]}"
        fields = ("m",) * k + ("x", "y") * (k * cfg.n_steps)
        n_num = len(fields)
        out.append(Sample(text, fields, tuple(range(n_num - 2 * k, n_num))))
    return out
