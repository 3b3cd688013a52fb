"""What the rollout viewer plays: solver frames and surrogates' predictions of them.

``Rollout`` holds one trajectory's frames (truth and any number of predictions, with the
NRMSE of each step as MPP reports it, and persistence's NRMSE as the bar to beat);
``field_png`` draws one field for an <img> tag and ``colorbar_html`` its colour bar;
``frames_html`` lays out one step (truth, predictions, errors) and ``nrmse_curve`` plots
the NRMSE of every step against persistence's; ``verdict`` says how good a rollout is.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from functools import lru_cache

import holoviews as hv
import holoviews.plotting.bokeh  # loads the backend whose plot options are set here
import numpy as np
import torch

from scifm.mpp.demo import Comparison
from scifm.mpp.metrics import nrmse as _nrmse

IMG_PX = 224  # displayed side of each field image
NRMSE_POOR = 1.0  # NRMSE 1 = an error as large as the field itself (predicting 0 scores 1)
UNITS = "dimensionless, PDEBench units"
FIELD_LABELS = {"h": "water depth h", "u": "activator u", "v": "inhibitor v",
                "vx": "velocity vx", "vy": "velocity vy", "particles": "passive scalar",
                "density": "density", "pressure": "pressure"}  # fmt: skip


def field_label(name: str) -> str:
    """What a colour bar says: the quantity and its units."""
    return f"{FIELD_LABELS.get(name, name)} ({UNITS})"


def verdict(nrmse: np.ndarray, persistence: np.ndarray | None) -> tuple[str, str]:
    """(alert type, sentence) for a rollout's per-step NRMSE against persistence's: green
    only when it ends below persistence, yellow when not, red when it diverged or ends at
    or above ``NRMSE_POOR``."""
    nrmse = np.asarray(nrmse, dtype=float)
    bad = ~np.isfinite(nrmse)
    if bad.any():
        return "danger", f"Diverged: the rollout is not finite from step {int(np.argmax(bad)) + 1}."
    final = float(nrmse[-1])
    base = ""
    if persistence is not None:
        base = f" Persistence (the last given frame repeated) ends at {persistence[-1]:.3g}."
    if final >= NRMSE_POOR:
        return "danger", (f"Poor: final NRMSE {final:.3g} is at or above {NRMSE_POOR:g}, an "
                          f"error as large as the field itself.{base}")  # fmt: skip
    if persistence is None:
        return "info", (f"Final NRMSE {final:.3g} (below {NRMSE_POOR:g}); no persistence "
                        "baseline for this rollout.")  # fmt: skip
    if final < float(persistence[-1]):
        return "success", f"Good: final NRMSE {final:.3g}, better than persistence.{base}"
    return "warning", f"Worse than persistence: final NRMSE {final:.3g}.{base}"


def field_png(a: np.ndarray, lo: float, hi: float, cmap: str) -> str:
    """A 2-D array as a base64 PNG (nearest upscaling), for an <img> tag."""
    from matplotlib import colormaps
    from PIL import Image

    norm = np.clip((a - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    rgb = (colormaps[cmap](norm.T[::-1])[..., :3] * 255).astype(np.uint8)  # x right, y up
    img = Image.fromarray(rgb).resize((IMG_PX, IMG_PX), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@lru_cache(maxsize=16)
def _gradient(cmap: str, stops: int = 11) -> str:
    from matplotlib import colormaps

    cols = colormaps[cmap](np.linspace(0, 1, stops))[:, :3] * 255
    return ", ".join(f"rgb({r:.0f},{g:.0f},{b:.0f})" for r, g, b in cols)


def colorbar_html(lo: float, hi: float, cmap: str, label: str, width: int = IMG_PX) -> str:
    """A horizontal colour bar for an image drawn by ``field_png(a, lo, hi, cmap)``: the
    colour map from ``lo`` to ``hi`` with three ticks and ``label`` (quantity and units)."""
    ticks = "".join(f"<span>{v:.3g}</span>" for v in (lo, (lo + hi) / 2, hi))
    return (
        f"<div class='mpp-cbar' style='width:{width}px'>"
        f"<div class='mpp-cbar-grad' style='background: linear-gradient(to right, "
        f"{_gradient(cmap)})'></div><div class='mpp-cbar-ticks'>{ticks}</div>"
        f"<div class='mpp-cbar-label'>{html.escape(label)}</div></div>"
    )


def as_numpy(a) -> np.ndarray:
    """A tensor (any device) or array as a float numpy array."""
    return a.detach().float().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


@dataclass
class Rollout:
    """Frames to play: the solver's, and any surrogates' predictions of the same frames."""

    label: str
    field_names: list[str]
    truth: np.ndarray  # (S, C, H, W) solver frames
    preds: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (S, C, H, W)
    nrmse: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (S,) per step
    note: str = ""  # shown under the curve (wall times)
    persistence: np.ndarray | None = None  # (S,) NRMSE of repeating the last given frame

    @classmethod
    def from_comparison(cls, res: Comparison, name: str = "AViT") -> Rollout:
        note = (
            f"<b>Wall time</b> (this run, CPU): solver {res.solver_s:.2f} s for "
            f"{res.context + len(res.nrmse)} frames; surrogate {res.surrogate_s:.2f} s for "
            f"{len(res.nrmse)} frames (ratio {res.solver_s / max(res.surrogate_s, 1e-9):.2f}x)."
        )
        return cls(res.system, list(res.field_names), res.truth, {name: res.pred},
                   {name: np.asarray(res.nrmse)}, note, res.persistence)  # fmt: skip

    @classmethod
    def from_tensors(cls, label: str, field_names, truth, preds=None) -> Rollout:
        """``truth`` (S, C, H, W) and ``preds`` name -> (S, C, H, W), arrays or tensors (a
        leading batch axis of 1 is dropped); NRMSE per step as MPP reports it."""
        t = as_numpy(truth)
        t = t[0] if t.ndim == 5 else t
        ps = {k: (p[0] if p.ndim == 5 else p) for k, p in
              ((k, as_numpy(v)) for k, v in (preds or {}).items())}  # fmt: skip
        for k, p in ps.items():
            if p.shape != t.shape:
                raise ValueError(f"preds[{k!r}]: shape {p.shape}; expected {t.shape} (truth)")
        err = {k: np.array([float(_nrmse(torch.from_numpy(p[s : s + 1]),
                                          torch.from_numpy(t[s : s + 1])))
                            for s in range(len(t))]) for k, p in ps.items()}  # fmt: skip
        return cls(label, list(field_names), t, ps, err)

    @property
    def n_steps(self) -> int:
        return len(self.truth)

    def value_range(self, c: int) -> tuple[float, float]:
        """Field ``c``'s range over every frame of truth and predictions (finite values):
        the one colour scale they share."""
        arrays = [self.truth[:, c], *(p[:, c] for p in self.preds.values())]
        vals = np.concatenate([a[np.isfinite(a)] for a in arrays])
        if vals.size == 0:
            return 0.0, 1.0
        lo, hi = float(vals.min()), float(vals.max())
        return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def frames_html(roll: Rollout, field_name: str, step: int) -> str:
    """Step ``step`` of ``roll``'s field ``field_name``: the truth, then each prediction and
    its error, with one colour scale for truth and predictions and one for the errors."""
    c = roll.field_names.index(field_name)
    k = min(int(step), roll.n_steps - 1)
    truth = roll.truth[:, c]
    lo, hi = roll.value_range(c)
    label = field_label(field_name)
    panels = [("Ground truth (solver)", truth[k], lo, hi, "viridis", label)]
    errs = {n: np.nan_to_num(p[:, c] - truth) for n, p in roll.preds.items()}
    e = max([float(np.abs(x).max(initial=0.0)) for x in errs.values()] + [1e-12])
    for name, pred in roll.preds.items():
        panels.append((f"Prediction ({name})", np.nan_to_num(pred[k, c]), lo, hi, "viridis",
                       label))  # fmt: skip
        panels.append((f"Error ({name} - truth)", errs[name][k], -e, e, "RdBu_r",
                       f"error in {label}"))  # fmt: skip
    cells = "".join(
        f"<div class='mpp-panel'><div class='mpp-title'><b>{html.escape(t)}</b></div>"
        f"<img src='data:image/png;base64,{field_png(a, a0, a1, cm)}' width={IMG_PX}>"
        f"{colorbar_html(a0, a1, cm, bar)}</div>"
        for t, a, a0, a1, cm, bar in panels
    )
    scores = ", ".join(f"{n} NRMSE {v[k]:.3g}" for n, v in roll.nrmse.items())
    head = (
        f"<div class='mpp-title'>{html.escape(roll.label)}: {html.escape(field_name)}, "
        f"step {k + 1} of {roll.n_steps}{f' ({scores})' if scores else ''}</div>"
    )
    return head + cells


def nrmse_curve(roll: Rollout | None) -> hv.Element:
    """NRMSE against rollout step for every prediction of ``roll``, persistence dashed."""
    opts = dict(height=260, width=520, xlabel="rollout step", ylabel="NRMSE",
                tools=["hover"], title="Rollout error against the solver")  # fmt: skip
    if roll is None or not roll.nrmse:
        return hv.Curve([], "step", "NRMSE").opts(**opts)
    curves = [hv.Curve((np.arange(1, len(v) + 1), v), "step", "NRMSE", label=n)
              for n, v in roll.nrmse.items()]  # fmt: skip
    if roll.persistence is not None:
        p = roll.persistence
        base = hv.Curve((np.arange(1, len(p) + 1), p), "step", "NRMSE", label="persistence")
        curves.append(base.opts(color="#888", line_dash="dashed"))
    if len(curves) == 1:
        return curves[0].opts(**opts)
    return hv.Overlay(curves).opts(**opts, legend_position="top_left")
