"""Serve the whole app: the landing page at ``/`` and every page module at ``/<SLUG>``.

``scifm serve`` and ``make app`` call ``serve()``; tests call ``start_server()``.
"""

from __future__ import annotations

import panel as pn

from app.registry import discover_pages


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
