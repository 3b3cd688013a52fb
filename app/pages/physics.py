"""The "physics" page: the MPP rollout viewer on the shipped surrogates (64^2 by default)."""

from __future__ import annotations

import panel as pn

from app.layout import make_template
from scifm.dashboards import RolloutViewer

SLUG = "physics"
TITLE = "Physics"
DESCRIPTION = (
    "Multiple Physics Pretraining: an AViT surrogate pretrained at 64² on shallow water, "
    "reaction-diffusion and incompressible flow, rolled out on held-out initial conditions "
    "against the solver and persistence (a 32² demo model adds compressible flow)."
)
ORDER = 2

pn.extension()


def page() -> pn.template.BaseTemplate:
    view = RolloutViewer.from_assets()
    return make_template(TITLE, main=[view.main()], sidebar=view.sidebar(), slug=SLUG)
