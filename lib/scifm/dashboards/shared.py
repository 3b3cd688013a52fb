"""What the dashboards share across sessions, text boxes that follow typing, cheap glyphs.

``ModelCache`` computes a result once per process for the same models and arguments: every
session of the app (and every component a notebook makes from the same models) reuses it,
so a page's default view costs nothing after the first. ``follow_typing`` makes a text box
update its parameter while the user types, after a short pause (``DEBOUNCE_S``), instead of
only when the box loses focus. ``add_glyph`` draws a glyph on a Bokeh figure without the
copies ``figure.line`` makes (fewer models for a session to build).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import param
from bokeh.models import ColumnDataSource, GlyphRenderer, LegendItem
from bokeh.plotting import figure

DEBOUNCE_S = 0.3  # pause in typing after which a text box's value is taken


class ModelCache:
    """``fn(models, *args)`` memoised per process (least recently used dropped beyond
    ``maxsize``). The key is the models' identities and ``args``; an entry holds the models,
    so no other object can take their ids while it lives."""

    def __init__(self, fn: Callable[..., Any], maxsize: int = 64) -> None:
        self.fn, self.maxsize = fn, maxsize
        self._data: OrderedDict[tuple, tuple[tuple, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __call__(self, models: Mapping[str, Any], *args: Any) -> Any:
        key = (tuple((k, id(v)) for k, v in models.items()), *args)
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key][1]
        result = self.fn(models, *args)  # outside the lock: a slow call blocks no one else
        with self._lock:
            self.misses += 1
            self._data[key] = (tuple(models.values()), result)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return result

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def follow_typing(widget, owner: param.Parameterized, name: str, delay: float = DEBOUNCE_S):
    """Keep ``owner.<name>`` equal to a text widget's content as the user types.

    Keystrokes (``value_input``) are taken after ``delay`` seconds without another one;
    Enter or leaving the box (``value``) is taken at once. Code that sets ``owner.<name>``
    updates the box; the box's own changes are never sent back to it (an echo could undo
    characters typed meanwhile).
    """
    state = {"seq": 0, "own": False}

    def take(value: str | None) -> None:
        if value is None:
            return
        state["own"] = True
        try:
            setattr(owner, name, value)
        finally:
            state["own"] = False

    async def on_input(event) -> None:
        state["seq"] += 1
        mine = state["seq"]
        await asyncio.sleep(delay)
        if mine == state["seq"]:  # no keystroke since: take it
            take(event.new)

    def on_value(event) -> None:
        state["seq"] += 1  # drops a pending keystroke: this value is newer
        take(event.new)

    def on_param(event) -> None:
        if not state["own"] and widget.value != event.new:
            widget.value = event.new

    widget.param.watch(on_input, "value_input")
    widget.param.watch(on_value, "value")
    owner.param.watch(on_param, name)
    return widget


def add_glyph(
    fig: figure, source: ColumnDataSource, glyph, label: str = "", items: list | None = None
) -> GlyphRenderer:
    """``glyph`` drawn from ``source``; with its ``label`` added to ``items`` (a legend's).

    ``figure.line``/``scatter`` also make an unselected and a muted copy of every glyph:
    two more models per glyph for each session to build and walk, where BokehJS derives
    them itself when needed (these plots select and mute nothing)."""
    renderer = fig.add_glyph(source, glyph)
    if items is not None:
        items.append(LegendItem(label=label, renderers=[renderer]))
    return renderer
