"""Live training progress for notebooks: a loss curve that grows while a model trains.

``scifm.core.train`` calls ``callback(record)`` after every logged step; a ``LiveLoss`` is
such a callback and a Panel component at once::

    live = LiveLoss("xval vs p1000")
    display(live)                                  # the curve appears now...
    fit(..., callback=live.series("xval"))         # ...and grows while this trains
    live.flush()                                   # draw the last points

Several runs share one plot through ``series(name)``; ``run`` (when a record names its
stage, as ``scifm.astroclip.pipeline.run_pipeline`` does) splits one run into curves.

The plot is one Bokeh figure made once with ``MAX_SERIES`` hidden lines; a redraw only
replaces the data of each curve's ``ColumnDataSource``, and a new series shows the next hidden
line (property changes only: no model is made after the plot is displayed). Replacing the whole plot
at every redraw made new models several times a second, and in JupyterLab the browser's
answers about models the kernel had already dropped failed to decode in the kernel
("Line.line_color: expected ... Color, got Value") and took other widgets' events with them.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import panel as pn
from bokeh.models import ColumnDataSource, HoverTool, Legend, LegendItem, Line
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from scifm.dashboards.shared import add_glyph

MAX_SERIES = 10  # lines made up front; a further series is not drawn (with a warning)


class LiveLoss(pn.viewable.Viewer):
    """A (log-scale) curve of ``key`` against step per series, redrawn at most every
    ``min_interval`` seconds while records arrive."""

    def __init__(
        self,
        title: str = "training loss",
        *,
        key: str = "loss",
        logy: bool = True,
        min_interval: float = 0.3,
        height: int = 260,
        width: int = 520,
    ) -> None:
        super().__init__()
        self.title, self.key, self.logy = title, key, logy
        self.min_interval = min_interval
        self.data: dict[str, tuple[list[float], list[float]]] = {}
        self.sources: dict[str, ColumnDataSource] = {}
        self.dropped: set[str] = set()  # series beyond MAX_SERIES (kept in data, not drawn)
        self._drawn_at = 0.0
        self.figure = figure(
            title=title, height=height, width=width, x_axis_label="step", y_axis_label=key,
            y_axis_type="log" if logy else "linear", tools="pan,wheel_zoom,box_zoom,reset,save",
        )  # fmt: skip
        self.figure.add_tools(HoverTool(tooltips=[("series", "$name"), ("step", "@step{0,0}"),
                                                  (key, "@value{0.0000g}")]))  # fmt: skip
        self._lines, self._items = [], []
        for i in range(MAX_SERIES):
            src = ColumnDataSource({"step": [], "value": []})
            line = add_glyph(self.figure, src, Line(x="step", y="value", line_width=2,
                                                    line_color=Category10_10[i % 10]))  # fmt: skip
            line.visible = False
            self._lines.append(line)
            self._items.append(LegendItem(label="", renderers=[line], visible=False))
        self.figure.add_layout(Legend(items=self._items, location="top_right"))
        self.pane = pn.pane.Bokeh(self.figure, css_classes=["scifm-live-loss"])

    def __call__(self, record: dict, series: str | None = None) -> None:
        """Add one logged record (``step`` and ``key``) to ``series`` (or its ``stage``)."""
        if self.key not in record or "step" not in record:
            return
        name = series or str(record.get("stage", "loss"))
        steps, values = self.data.setdefault(name, ([], []))
        steps.append(float(record["step"]))
        values.append(float(record[self.key]))
        if time.monotonic() - self._drawn_at >= self.min_interval:
            self.flush()

    def series(self, name: str) -> Callable[[dict], None]:
        """A callback that adds its records to the curve ``name``."""
        return lambda record: self(record, name)

    def flush(self) -> None:
        """Redraw now (after training, so the last points show)."""
        self._drawn_at = time.monotonic()
        for name, (steps, values) in self.data.items():
            if name not in self.sources:
                i = len(self.sources)
                if i >= MAX_SERIES:  # never fail a training run over its plot
                    if name not in self.dropped:
                        self.dropped.add(name)
                        msg = f"LiveLoss: series {name!r} not drawn (one plot shows {MAX_SERIES})"
                        warnings.warn(msg, stacklevel=2)
                    continue
                line, item = self._lines[i], self._items[i]
                line.name, line.visible = name, True
                item.label, item.visible = name, True
                self.sources[name] = line.data_source
            self.sources[name].data = {"step": list(steps), "value": list(values)}
        pn.io.push_notebook(self.pane)  # a notebook needs the push; a server syncs by itself

    def __panel__(self) -> pn.viewable.Viewable:
        return self.pane
