"""Serve the whole app: the landing page at ``/`` and every page module at ``/<SLUG>``.

``scifm serve`` and ``make app`` call ``serve()``; tests call ``start_server()``.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

import panel as pn

import app.pages

REQUIRED = ("SLUG", "TITLE", "DESCRIPTION", "ORDER", "page")


@cache
def discover_pages() -> tuple[ModuleType, ...]:
    """Page modules under ``app/pages`` (the landing page excluded), in ``ORDER``."""
    mods = []
    for info in pkgutil.iter_modules(app.pages.__path__):
        if info.name == "landing":
            continue
        mod = importlib.import_module(f"app.pages.{info.name}")
        missing = [n for n in REQUIRED if not hasattr(mod, n)]
        if missing:
            raise AttributeError(f"app/pages/{info.name}.py: missing {missing} (see app/serve.py)")
        mods.append(mod)
    return tuple(sorted(mods, key=lambda m: m.ORDER))


def routes() -> dict[str, object]:
    from app.pages import landing

    out: dict[str, object] = {"/": landing.page}
    for mod in discover_pages():
        out[f"/{mod.SLUG}"] = mod.page
    return out


def start_server(address: str = "127.0.0.1", port: int = 5006, **kwargs: object):
    """Start the server in a background thread and return it (tests stop it)."""
    return pn.serve(
        routes(), address=address, port=port, show=False, threaded=True, title="scifm", **kwargs
    )


def serve(address: str = "127.0.0.1", port: int = 5006, show: bool = False) -> None:
    """Serve in the foreground until interrupted."""
    origins = [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    print(f"scifm: serving on http://{address}:{port}/", flush=True)
    pn.serve(
        routes(), address=address, port=port, show=show, title="scifm",
        websocket_origin=origins,
    )  # fmt: skip
