"""The "physics" page: the MPP rollout viewer on the shipped surrogate."""

from __future__ import annotations

import panel as pn

from app.layout import make_template
from scifm.dashboards import RolloutViewer

SLUG = "physics"
TITLE = "Physics"
DESCRIPTION = (
    "Multiple Physics Pretraining: one AViT surrogate for shallow water, reaction-diffusion, "
    "incompressible and compressible flow, played against the solver and persistence."
)
ORDER = 2

pn.extension()


def page() -> pn.template.BaseTemplate:
    view = RolloutViewer.from_assets()
    return make_template(TITLE, main=[view.main()], sidebar=view.sidebar(), slug=SLUG)
