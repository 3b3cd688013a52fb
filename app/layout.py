"""The shared page template: every page is a FastListTemplate with the same header and nav."""

from __future__ import annotations

from collections.abc import Sequence

import panel as pn

from app.registry import discover_pages

ACCENT = "#1f5f8b"
SITE = "scifm"


def nav_links(active: str = "") -> pn.pane.Markdown:
    items = ["[Home](./)"] + [
        f"[{'**' + m.TITLE + '**' if m.SLUG == active else m.TITLE}](./{m.SLUG})"
        for m in discover_pages()
    ]
    return pn.pane.Markdown("  \n".join(items), sizing_mode="stretch_width")


def make_template(
    title: str,
    *,
    main: Sequence[object],
    sidebar: Sequence[object] = (),
    slug: str = "",
) -> pn.template.FastListTemplate:
    """Wrap a page's content in the site template (title, nav links, accent colour)."""
    return pn.template.FastListTemplate(
        site=SITE,
        title=title,
        main=list(main),
        sidebar=[nav_links(slug), *sidebar],
        accent_base_color=ACCENT,
        header_background=ACCENT,
        main_layout=None,
    )
