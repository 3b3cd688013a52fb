"""The numbers page's two plots as plain Bokeh figures: the OOD sweep and the orbits.

Each is made once per session with a fixed set of glyphs over ``ColumnDataSource``s;
``draw`` only replaces the sources' data (and texts), so a new b or orbit system makes no
new Bokeh model after display (in JupyterLab, replaced models broke other widgets; see
``scifm.dashboards.live``). As HoloViews overlays, the two were about half of a session's
build (1.2-1.8 s of server CPU; issue 16 asks for a fraction of a second):
``benchmarks/numbers_page.py`` measures it.

- ``SweepPlot``: a*b over a range of a for the truth and each model, with the held-out
  hole of the training range and the extrapolation range shaded;
- ``OrbitPlot``: one system's orbits around the star, the recorded positions, the true
  last one and each model's prediction of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from bokeh.models import (
    BoxAnnotation,
    ColumnDataSource,
    Legend,
    LegendItem,
    Line,
    MultiLine,
    Scatter,
)
from bokeh.plotting import figure

from scifm.dashboards.shared import add_glyph
from scifm.dashboards.xval_results import COLORS

# scifm.xval.orbits: G = 1, a unit star mass, the innermost planet's semi-major axis is 1
ORBIT_UNIT = "innermost semi-major axis = 1"
# the ood task's ranges (scifm.xval.tasks.TaskConfig's defaults, which the shipped models use)
HOLE, TRAINED, SWEEP_END = (4.0, 5.0), (1.0, 10.0), 15.0
SWEEP_XLABEL = "a (first operand; trained on [1, 10))"
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
EMPTY = np.zeros(0)


def sweep_title(b: float) -> str:
    return f"a × {b:.3g}; grey: held-out a in [4, 5); orange: a beyond training"


def sweep_ylabel(b: float) -> str:
    return f"a × b (b = {b:.3g})"


class SweepPlot:
    """A dashed truth line and one line per model (``schemes``) of a*b against a."""

    def __init__(self, schemes: Sequence[str], *, width: int = 760, height: int = 360) -> None:
        self.figure = figure(title=sweep_title(3.0), x_axis_label=SWEEP_XLABEL,
                             y_axis_label=sweep_ylabel(3.0), width=width, height=height,
                             tools=TOOLS)  # fmt: skip
        self.figure.add_layout(BoxAnnotation(left=HOLE[0], right=HOLE[1], fill_color="#999",
                                             fill_alpha=0.2, line_alpha=0))  # fmt: skip
        self.figure.add_layout(BoxAnnotation(left=TRAINED[1], right=SWEEP_END, fill_color="#f90",
                                             fill_alpha=0.1, line_alpha=0))  # fmt: skip
        # one source for the lines: the a grid once, a column per line ("truth", then models)
        self.names = ("truth", *schemes)
        self.source = ColumnDataSource({"a": EMPTY, **{column(n): EMPTY for n in self.names}})
        items: list[LegendItem] = []
        for name in self.names:
            line = Line(x="a", y=column(name), line_color=COLORS.get(name, "#555"), line_width=2,
                        line_dash="dashed" if name == "truth" else "solid")  # fmt: skip
            add_glyph(self.figure, self.source, line, name, items)
        self.figure.add_layout(Legend(items=items, location="top_left", click_policy="hide"))

    def draw(self, res: dict[str, np.ndarray], b: float) -> None:
        """Show ``res`` (``scifm.xval.demo.ood_sweep``'s: "a", "truth", one per model) for b."""
        nan = np.full(len(res["a"]), np.nan)
        self.source.data = {"a": res["a"], **{column(n): res.get(n, nan) for n in self.names}}
        self.figure.title.text = sweep_title(b)  # after the data: a browser that shows the
        self.figure.yaxis.axis_label = sweep_ylabel(b)  # new title has the new lines

    def line(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(a, y) of the line ``name`` ("truth" or a model) as drawn."""
        return self.source.data["a"], self.source.data[column(name)]


def column(name: str) -> str:
    """The sweep source's column of the line ``name`` (a model's label may be any string)."""
    return f"y {name}"


class OrbitPlot:
    """The star, each planet's orbit and recorded positions, the true and predicted next ones."""

    def __init__(self, schemes: Sequence[str], *, width: int = 520, height: int = 480) -> None:
        fig = self.figure = figure(
            title="Predicted next position of each planet", width=width, height=height,
            x_axis_label=f"x ({ORBIT_UNIT})", y_axis_label=f"y ({ORBIT_UNIT})", tools=TOOLS,
            match_aspect=True,  # one unit of x as long as one of y: orbits look like orbits
        )  # fmt: skip
        self.orbits = ColumnDataSource({"xs": [], "ys": []})
        add_glyph(fig, self.orbits, MultiLine(xs="xs", ys="ys", line_color="#bbb", line_width=1.5))
        self.sources = {k: ColumnDataSource({"x": EMPTY, "y": EMPTY})
                        for k in ("given", "truth", *schemes)}  # fmt: skip
        star = ColumnDataSource({"x": [0.0], "y": [0.0]})
        items: list[LegendItem] = []
        add_glyph(fig, star, _dots("gold", 14), "star", items)
        add_glyph(fig, self.sources["given"], _dots("#444", 6), "given", items)
        truth = Scatter(x="x", y="y", marker="x", size=14, line_color="black", line_width=2)
        add_glyph(fig, self.sources["truth"], truth, "truth", items)
        for s in schemes:
            add_glyph(fig, self.sources[s], _dots(COLORS.get(s, "#555"), 10), s, items)
        fig.add_layout(Legend(items=items, click_policy="hide"), "right")

    def draw(self, res: dict) -> None:
        """Show ``res`` (``scifm.xval.demo.orbit_prediction``'s): ``orbits`` (t, planets, 2),
        ``recorded`` (steps, planets, 2), ``predicted`` (scheme -> (planets, 2))."""
        orbits, recorded = res["orbits"], res["recorded"]
        n_pl = orbits.shape[1]
        self.orbits.data = {"xs": [orbits[:, p, 0] for p in range(n_pl)],
                            "ys": [orbits[:, p, 1] for p in range(n_pl)]}  # fmt: skip
        given = recorded[:-1].reshape(-1, 2)
        points = {"given": given, "truth": recorded[-1], **res["predicted"]}
        for name, src in self.sources.items():
            xy = np.asarray(points.get(name, np.zeros((0, 2))), dtype=float)
            src.data = {"x": xy[:, 0], "y": xy[:, 1]}


def _dots(color: str, size: float) -> Scatter:
    return Scatter(x="x", y="y", size=size, fill_color=color, line_color=color)
