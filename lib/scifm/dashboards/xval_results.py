"""The stored xVal benchmark on the numbers page: learning curves, invalid rates, tables.

Reads a ``benchmarks/xval.py`` results JSON (``benchmarks/xval_report.py`` writes it): its
``curves`` (every cell's curve points: steps, training tokens, validation loss and test
metrics), ``groups`` (each encoding at convergence) and ``tasks`` (the table rows). The
file is read once per process; a session only draws.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, FactorRange, Legend, LegendItem, Line, VBar
from bokeh.plotting import figure

from scifm.dashboards.shared import add_glyph

SCHEMES = ("xval", "p10", "p1000", "b1999", "fp15")
COLORS = {"xval": "#d62728", "p10": "#1f77b4", "p1000": "#2ca02c", "b1999": "#9467bd",
          "fp15": "#ff7f0e", "truth": "#222222"}  # fmt: skip
MODES = {"mlm": "masked", "ar": "causal"}
X_AXES = {"optimizer steps": "step", "training tokens": "tokens"}


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> dict:
    return json.loads(Path(path).read_text())


def load_results(path: str | Path) -> dict | None:
    """The results JSON at ``path`` (None if absent), parsed once per process and version."""
    p = Path(path)
    return _load(str(p), p.stat().st_mtime) if p.exists() else None


def group_label(key: str) -> str:
    """``"ood/mlm"`` -> ``"ood (masked)"``."""
    task, _, mode = key.partition("/")
    return f"{task} ({MODES.get(mode, mode)})"


@lru_cache(maxsize=4)
def _table(path: str, mtime: float):
    import pandas as pd

    rows = []
    for task, per in _load(path, mtime)["tasks"].items():
        for scheme, budgets in per.items():
            for budget, agg in budgets.items():
                for split, m in agg["splits"].items():
                    rows.append({
                        "task": task, "split": split, "encoding": scheme, "point": budget,
                        "steps": int(agg["steps"]), "R2 all": m["r2"],
                        "R2 valid": m.get("r2_valid"),
                        "invalid %": _pct(m.get("invalid_rate")), "exact %": _pct(m["exact"]),
                        "outliers %": _pct(m["outlier_rate"]),
                        "tokens/sample": agg["tokens_per_sample"], "mem MiB": agg["peak_memory_mb"],
                    })  # fmt: skip
    return pd.DataFrame(rows)


def _pct(v) -> float:
    return float("nan") if v is None else 100 * float(v)


METRICS = {  # curve key -> (axis label, transform)
    "val_loss": ("validation loss (log)", lambda y: y),
    "test.r2": ("test R² (all samples, clipped at -1)", lambda y: np.maximum(y, -1.0)),
    "test.invalid_rate": ("invalid answers (% of test samples)", lambda y: 100 * y),
}


def _column(metric: str) -> str:
    """The column of ``metric`` in an encoding's source (no dot: "test.r2" -> "test_r2")."""
    return metric.replace(".", "_")


def _figure(title: str, xlabel: str, ylabel: str, **kw) -> figure:
    return figure(title=title, x_axis_label=xlabel, y_axis_label=ylabel, width=440,
                  height=300, tools="pan,wheel_zoom,box_zoom,reset,save,hover", **kw)  # fmt: skip


class XvalResults(pn.viewable.Viewer):
    """Learning curves per encoding, invalid rates at convergence, the full table.

    Plain Bokeh figures made once per session (a HoloViews layout cost seconds of server
    time per session); choosing runs or the x axis only replaces the curves' data."""

    group = param.Selector(objects=[], doc="task and mode whose runs are shown")
    x_axis = param.Selector(objects=list(X_AXES), default="optimizer steps")

    def __init__(self, path: str | Path, **params) -> None:
        super().__init__(**params)
        self.path = Path(path)
        self.data = load_results(self.path)
        groups = list((self.data or {}).get("curves", {}))
        self.param.group.objects = groups
        if groups and self.group not in groups:
            self.group = "ood/mlm" if "ood/mlm" in groups else groups[0]
        # one source per encoding: its x once, a column per metric (one line in each figure)
        self.sources = {s: ColumnDataSource({"x": [], **{_column(k): [] for k in METRICS}})
                        for s in SCHEMES}  # fmt: skip
        self.figures = {}
        for k, (ylabel, _) in METRICS.items():
            fig = _figure("", "", ylabel, y_axis_type="log" if k == "val_loss" else "linear")
            items: list[LegendItem] = []
            for s in SCHEMES:
                line = Line(x="x", y=_column(k), line_color=COLORS[s], line_width=2)
                add_glyph(fig, self.sources[s], line, s, items)
            # one legend for the three (same colours)
            fig.add_layout(Legend(items=items, location="top_right", click_policy="hide",
                                  visible=k == "val_loss"))  # fmt: skip
            self.figures[k] = fig
        self.bar_source = ColumnDataSource({"encoding": [], "invalid": [], "color": []})
        self.bars = _figure("", "encoding", METRICS["test.invalid_rate"][0],
                            x_range=FactorRange(*SCHEMES))  # fmt: skip
        self.bars.y_range.start = 0
        bar = VBar(x="encoding", top="invalid", width=0.7, fill_color="color", line_color="color")
        add_glyph(self.bars, self.bar_source, bar)
        self.note = pn.pane.Markdown("", css_classes=["xv-curves-note"])
        if self.group:
            self._draw()  # not yet in a document: draw at once

    def _cells(self) -> dict[str, list[dict]]:
        return self.data["curves"][self.group]

    def curves(self) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """metric -> scheme -> (x, y) of the shown group: the seeds of one encoding joined
        by NaN (one broken line per encoding); x in steps or millions of tokens."""
        key = X_AXES[self.x_axis]
        out: dict = {k: {} for k in METRICS}
        for cell, curve in sorted(self._cells().items()):
            scheme = cell.rpartition("_s")[0]
            x = np.array([r[key] for r in curve], dtype=float) / (1e6 if key == "tokens" else 1)
            for k, (_, f) in METRICS.items():
                y = f(np.array([r.get(k, math.nan) for r in curve], dtype=float))
                if scheme in out[k]:  # another seed: break the line
                    x0, y0 = out[k][scheme]
                    x, y = np.r_[x0, math.nan, x], np.r_[y0, math.nan, y]
                out[k][scheme] = (x, y)
        return out

    @param.depends("group", "x_axis", watch=True)
    def _redraw(self) -> None:
        if self.group and hasattr(self, "note"):  # (not while __init__ sets the group)
            # Bokeh models change only under the document's lock: a callback running in
            # the server's thread pool hands the drawing to the event loop
            pn.state.execute(self._draw)

    def _draw(self) -> None:
        name, curves = group_label(self.group), self.curves()
        xlabel = self.x_axis + (" (M)" if X_AXES[self.x_axis] == "tokens" else "")
        for s, src in self.sources.items():  # the metrics of an encoding share its x
            x = curves["val_loss"].get(s, ((), ()))[0]
            src.data = {"x": list(x), **{_column(k): list(curves[k].get(s, ((), ()))[1])
                                         for k in METRICS}}  # fmt: skip
        rates = self.invalid_rates()
        self.bar_source.data = {"encoding": list(rates), "invalid": list(rates.values()),
                                "color": [COLORS.get(s, "#555") for s in rates]}  # fmt: skip
        # titles after the data: a browser that shows a new title has the new lines
        for k, fig in self.figures.items():
            fig.title.text = f"{name}: {METRICS[k][0].split(' (')[0]}"
            fig.xaxis.axis_label = xlabel
        self.bars.title.text = f"{name}: invalid at convergence"
        unfinished = [f"{c} ({st})" for c, st in self._states().items()
                      if st.startswith("unfinished")]  # fmt: skip
        self.note.object = (
            "Still training when stored (its last point is shown): " + ", ".join(unfinished)
            if unfinished
            else ""
        )

    def drawn(self, metric: str, scheme: str) -> tuple[list[float], list[float]]:
        """(x, y) of ``scheme``'s line in the figure of ``metric`` (a key of METRICS)."""
        data = self.sources[scheme].data
        return data["x"], data[_column(metric)]

    def _states(self) -> dict[str, str]:
        """cell (scheme_sSEED) -> how its run ended (plateau, budget, unfinished (step N))."""
        task, mode = self.group.split("/")
        states = self.data.get("cells", {})
        out = {}
        for cell in sorted(self._cells()):
            scheme, _, seed = cell.rpartition("_s")
            out[cell] = states.get(f"{task}_{scheme}_{mode}_s{seed}", "")
        return out

    def invalid_rates(self) -> dict[str, float]:
        """Invalid answers (% of test samples) of each encoding of the group at convergence,
        or at its last curve point while unfinished."""
        out = {}
        rows = self.data["groups"][self.group]["rows"]
        for cell, curve in sorted(self._cells().items()):
            scheme = cell.rpartition("_s")[0]
            conv = rows.get(scheme, {}).get("converged", {})
            v = conv.get("test.invalid_rate") if isinstance(conv, dict) else None
            out[scheme] = 100 * (v[0] if v else curve[-1].get("test.invalid_rate", math.nan))
        return out

    def table(self) -> pn.viewable.Viewable:
        df = _table(str(self.path), self.path.stat().st_mtime)
        return pn.widgets.Tabulator(
            df, disabled=True, height=360, show_index=False, sizing_mode="stretch_width",
            pagination=None, groupby=["task"], css_classes=["xv-results-table"],
        )  # fmt: skip

    def __panel__(self) -> pn.viewable.Viewable:
        if self.data is None:
            return pn.pane.Markdown(f"No benchmark results yet ({self.path.name}): run "
                                    "`python benchmarks/xval.py`.")  # fmt: skip
        meta = self.data["meta"]
        return pn.Column(
            pn.pane.Markdown(
                f"Measured {meta['date']} on {meta['machine']}. Each encoding trained until "
                "its validation loss plateaued or the budget ran out. An invalid answer (a "
                "malformed number, or none) counts as a failure: R² all scores it as the "
                "training mean; R² valid covers valid answers only."
            ),
            pn.Row(
                pn.widgets.Select.from_param(
                    self.param.group,
                    label="Runs",
                    options={group_label(g): g for g in self.param.group.objects},
                ),
                pn.widgets.RadioButtonGroup.from_param(self.param.x_axis, label="x axis"),
            ),
            self.note,
            pn.GridBox(
                *(pn.pane.Bokeh(f) for f in self.figures.values()),
                pn.pane.Bokeh(self.bars, css_classes=["xv-invalid"]),
                ncols=2,
                css_classes=["xv-curves"],
            ),
            pn.pane.Markdown("#### Every task, encoding and point (mean over seeds)"),
            self.table(),
            sizing_mode="stretch_width",
        )
