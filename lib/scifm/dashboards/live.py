"""Live training progress for notebooks: a loss curve that grows while a model trains.

``scifm.core.train`` calls ``callback(record)`` after every logged step; a ``LiveLoss`` is
such a callback and a Panel component at once::

    live = LiveLoss("xval vs p1000")
    display(live)                                  # the curve appears now...
    fit(..., callback=live.series("xval"))         # ...and grows while this trains
    live.flush()                                   # draw the last points

Several runs share one plot through ``series(name)``; ``run`` (when a record names its
stage, as ``scifm.astroclip.pipeline.run_pipeline`` does) splits one run into curves.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import holoviews as hv
import holoviews.plotting.bokeh  # loads the backend whose plot options are set here
import panel as pn


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
        self.size = {"height": height, "width": width}
        self.data: dict[str, tuple[list[float], list[float]]] = {}
        self._drawn_at = 0.0
        self.pane = pn.pane.HoloViews(self._plot(), css_classes=["scifm-live-loss"])

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
        self.pane.object = self._plot()

    def _plot(self) -> hv.Overlay:
        opts = {**self.size, "title": self.title, "xlabel": "step", "ylabel": self.key,
                "logy": self.logy, "show_grid": True, "tools": ["hover"]}  # fmt: skip
        curves = [hv.Curve((s, v), "step", self.key, label=n) for n, (s, v) in self.data.items()]
        if not curves:
            curves = [hv.Curve([], "step", self.key)]
        return hv.Overlay(curves).opts(**opts, legend_position="top_right")

    def __panel__(self) -> pn.viewable.Viewable:
        return self.pane
