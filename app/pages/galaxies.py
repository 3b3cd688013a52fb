"""The "galaxies" page: the AstroCLIP galaxy explorer on the shipped catalog."""

from __future__ import annotations

import panel as pn

from app.layout import make_template
from scifm.dashboards import GalaxyExplorer

SLUG = "galaxies"
TITLE = "Galaxies"
DESCRIPTION = (
    "AstroCLIP: galaxy images and spectra in one embedding space — a UMAP map, "
    "cross-modal similarity search and real-spectrum upload."
)
ORDER = 3

pn.extension("tabulator", "filedropper")


def page() -> pn.template.BaseTemplate:
    from app.serve import MAX_UPLOAD_MB  # the websocket's limit (imported late: serve imports us)

    view = GalaxyExplorer.from_assets(max_upload_mb=MAX_UPLOAD_MB)
    return make_template(TITLE, main=[view.main()], sidebar=view.sidebar(), slug=SLUG)


def warm_up() -> dict[str, float]:
    """Prepare redrock for the uploads' template fit (import, redshifted templates, numba
    compilation: seconds), so that the first upload's fit is as fast as any later one. The
    server calls it once per process at start, in a thread."""
    from scifm.survey.redshift import warm_up as prepare_redrock

    return prepare_redrock()
