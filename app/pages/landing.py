"""Landing page: what scifm is, and a card per part linking to its page."""

from __future__ import annotations

import panel as pn
import param

from app.layout import make_template
from app.registry import discover_pages

INTRO = """
# scifm: foundation-model ideas for science

Three ideas from Polymathic AI's work on foundation models for science, rebuilt in one
library with their own data, trained small on this machine and explorable here:

- **xVal**: a language model sees every number as one `[NUM]` token scaled by its value,
  instead of a string of digit tokens.
- **MPP**: one axial vision transformer pretrained on several PDE systems at once, then
  fine-tuned on a new one with few examples.
- **AstroCLIP**: galaxy images and spectra embedded in one space by contrastive learning,
  searchable by nearest neighbours.

Everything on these pages is computed by the `scifm` package from assets it made itself
(see `assets/README.md`); the tutorials in `notebooks/` train the same models.
"""


class LandingPage(pn.viewable.Viewer):
    """The intro text and one card per discovered page."""

    pages = param.List(doc="page modules with SLUG, TITLE, DESCRIPTION")

    def __panel__(self) -> pn.viewable.Viewable:
        cards = [
            pn.Card(
                pn.pane.Markdown(f"{m.DESCRIPTION}\n\n[Open {m.TITLE} →](./{m.SLUG})"),
                title=m.TITLE,
                collapsible=False,
                width=340,
                css_classes=["scifm-card"],
            )
            for m in self.pages
        ]
        if not cards:
            cards = [pn.pane.Markdown("_No pages are installed yet._")]
        return pn.Column(pn.pane.Markdown(INTRO), pn.FlexBox(*cards))


def page() -> pn.template.FastListTemplate:
    return make_template("Home", main=[LandingPage(pages=list(discover_pages()))])
