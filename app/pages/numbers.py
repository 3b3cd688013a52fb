"""The "numbers" page: the xVal tokenization comparer on the shipped models."""

from __future__ import annotations

import panel as pn

from app.layout import make_template
from scifm.dashboards import TokenizationComparer

SLUG = "numbers"
TITLE = "Numbers"
DESCRIPTION = (
    "xVal: one [NUM] token scaled by the value vs four digit tokenizations — "
    "side-by-side tokens, model answers, an out-of-distribution sweep, orbits, and the "
    "benchmark's learning curves and invalid-answer rates."
)
ORDER = 1

pn.extension("tabulator")


def page() -> pn.template.BaseTemplate:
    return make_template(TITLE, main=[TokenizationComparer.from_assets()], slug=SLUG)
