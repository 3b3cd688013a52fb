"""One simulated user of the served app, driven at the websocket level (``benchmarks/app_load.py``).

A client does what a browser tab does, minus the rendering: it GETs the page (the server
builds the session and answers HTML carrying the session token; a 503 "server busy" answer
is retried after its ``Retry-After``), opens the session's websocket with that token, the
page's cookies and an ``Origin`` header, pulls the document (page load ends here), sends
``DocumentReady`` and then does the page's actions: it changes a widget model's property,
or sends a ``ButtonClick``, from its own copy of the document, and times until the server's
patch that carries the result has been applied (click-to-result).
"""

from __future__ import annotations

import html
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from urllib.parse import urlsplit

TOKEN_RE = re.compile(r'"token"\s*:\s*"([^"]+)"')


@dataclass
class Action:
    """Change one model (found by ``find``) and wait until ``done`` holds on the document."""

    name: str  # what the user did, e.g. "random galaxy"
    kind: str  # "click" (times go to click-to-result) or "rollout"
    find: Callable  # doc -> model to act on
    act: Callable  # (doc, model) -> None: the property change or event
    done: Callable  # doc -> bool: the result has arrived


def _texts(doc) -> list[str]:
    """Every markup text of the document, HTML-unescaped (Panel escapes pane HTML)."""
    out = []
    for m in doc.models:
        t = getattr(m, "text", None)
        if isinstance(t, str):
            out.append(html.unescape(t))
    return out


def _has_text(*needles: str) -> Callable:
    return lambda doc: any(all(n in t for n in needles) for t in _texts(doc))


def _by(type_name: str, **props) -> Callable:
    def find(doc):
        for m in doc.models:
            if type(m).__name__.endswith(type_name) and all(  # CustomSelect is a Select
                p(getattr(m, k, None)) if callable(p) else getattr(m, k, None) == p
                for k, p in props.items()
            ):
                return m
        raise LookupError(f"no {type_name} with {props} in the document")

    return find


def _set(prop: str, value) -> Callable:
    return lambda doc, model: setattr(model, prop, value)


def _release(value: float) -> Callable:
    """A slider dragged to ``value`` and released (the sweep follows ``value_throttled``)."""

    def act(doc, model) -> None:
        model.value = value
        # read-only in Python (the browser sets it on release); set_from_json sends it as
        # the browser would
        model.set_from_json("value_throttled", value)

    return act


def _starts(prefix: str) -> Callable:
    return lambda v: isinstance(v, str) and v.startswith(prefix)


def _click(doc, model) -> None:
    from bokeh.events import ButtonClick

    doc.callbacks.send_event(ButtonClick(model))


def _title_starts(prefix: str) -> Callable:
    return lambda doc: any(
        type(m).__name__ == "Title" and str(m.text).startswith(prefix) for m in doc.models
    )


def _has_css(cls: str) -> Callable:
    return lambda v: v is not None and cls in list(v)


ACTIONS: dict[str, list[Action]] = {
    "numbers": [
        Action("ask 7.5*2.25", "click", _by("TextInput", css_classes=_has_css("xv-question")),
               _set("value", "7.5*2.25"), _has_text("16.875", "xval")),
        Action("sweep b = 5", "click", _by("Slider", title=_starts("b (")), _release(5.0),
               _title_starts("a × 5;")),
    ],
    "galaxies": [  # the page opens on a galaxy in "image → image": each action changes it
        Action("mode spectrum → spectrum", "click", _by("Select", title="Search mode"),
               _set("value", "spectrum → spectrum"), _has_text("Top ", "spectrum → spectrum")),
        Action("mode image → spectrum", "click", _by("Select", title="Search mode"),
               _set("value", "image → spectrum"), _has_text("Top ", "image → spectrum")),
    ],
    "physics": [
        Action("run rollout", "rollout", _by("Button", label="Run solver and surrogate"), _click,
               lambda doc: any((" steps of " in t and "First rollout" not in t)
                               or "run failed" in t for t in _texts(doc))),
    ],
}  # fmt: skip


@dataclass
class ClientResult:
    page: str
    started: float  # time.time() when the client began
    load_s: float | None = None
    busy_retries: int = 0
    actions: dict = field(default_factory=dict)  # name -> seconds (None: timed out)
    kinds: dict = field(default_factory=dict)  # name -> "click" | "rollout"
    error: str | None = None
    protocol_errors: list = field(default_factory=list)  # bad messages the client logged


def load_model_types() -> None:
    """Import every Panel Bokeh model so the client can deserialize the documents (and
    HoloViews' own: the galaxies map's datashader tooltip uses its ``HoverModel``)."""
    import importlib
    import pkgutil

    import holoviews.plotting.bokeh.raster  # noqa: F401  (registers HoverModel)
    import panel.models

    for mod in pkgutil.iter_modules(panel.models.__path__):
        try:
            importlib.import_module(f"panel.models.{mod.name}")
        except ImportError:  # optional extras (e.g. vtk/deckgl deps) that pages do not use
            pass


def _get_page(url: str, opener, deadline: float, result: ClientResult) -> str:
    """The page's HTML; 503 busy answers are retried after their Retry-After."""
    while True:
        try:
            with opener.open(url, timeout=max(1.0, deadline - time.monotonic())) as r:
                return r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                raise
            result.busy_retries += 1
            time.sleep(float(exc.headers.get("Retry-After", "1") or 1))


def open_session(base: str, page: str, page_html: str, jar: CookieJar, timeout: float = 150):
    """The Bokeh client session of the page's server-side session (token from the HTML)."""
    import bokeh.client.connection as bconn
    from bokeh.client.session import ClientSession
    from bokeh.util.token import get_session_id
    from tornado.httpclient import HTTPRequest
    from tornado.ioloop import IOLoop

    found = TOKEN_RE.search(page_html)
    if found is None:
        raise RuntimeError(f"no session token in the HTML of /{page}")
    token = found.group(1)
    parts = urlsplit(base)
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    headers = {"Origin": f"{parts.scheme}://{parts.netloc}"} | (
        {"Cookie": cookie} if cookie else {}
    )
    # this process is one client; a browser waits for the websocket as long as the server needs
    bconn.HTTPRequest = lambda u: HTTPRequest(
        u, headers=headers, connect_timeout=timeout, request_timeout=timeout
    )

    class Session(ClientSession):
        @property
        def token(self) -> str:
            return token

    ws = f"ws://{parts.netloc}{parts.path.rstrip('/')}/{page}/ws"
    session = Session(session_id=get_session_id(token), websocket_url=ws, io_loop=IOLoop())
    session.pull()
    if session.document is None:
        raise RuntimeError(f"/{page}: websocket closed before the document arrived")
    return session


def _wait(session, predicate: Callable, timeout: float) -> float | None:
    """``perf_counter()`` when a server patch made ``predicate(doc)`` hold; None on timeout."""
    doc, conn = session.document, session._connection
    hit: list[float] = []

    def on_change(event) -> None:
        if not hit and predicate(doc):
            hit.append(time.perf_counter())

    doc.on_change(on_change)
    handle = conn.io_loop.call_later(timeout, conn.io_loop.stop)
    try:
        conn._loop_until(lambda: bool(hit) or not conn.connected)
    finally:
        conn.io_loop.remove_timeout(handle)
        doc.remove_on_change(on_change)
    return hit[0] if hit else None


def _count_bad_messages(into: list) -> None:
    """Keep what Bokeh's client logs about messages it could not read or apply."""
    import logging

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            into.append(record.getMessage()[:200])

    handler = Keep(logging.ERROR)
    for name in ("bokeh.protocol", "bokeh.client", "asyncio", "tornado.application"):
        logging.getLogger(name).addHandler(handler)


def run_client(base: str, page: str, start_at: float, timeout: float) -> ClientResult:
    """Open ``/page`` at wall time ``start_at`` and do its actions; never raises."""
    from bokeh.events import DocumentReady

    time.sleep(max(0.0, start_at - time.time()))
    result = ClientResult(page=page, started=time.time())
    _count_bad_messages(result.protocol_errors)
    deadline = time.monotonic() + timeout
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    session = None
    try:
        t0 = time.perf_counter()
        page_html = _get_page(f"{base}/{page}", opener, deadline, result)
        session = open_session(base, page, page_html, jar, deadline - time.monotonic())
        result.load_s = time.perf_counter() - t0
        session.document.callbacks.send_event(DocumentReady())
        for a in ACTIONS.get(page, []):
            model = a.find(session.document)
            t0 = time.perf_counter()
            a.act(session.document, model)
            left = max(1.0, deadline - time.monotonic())
            at = _wait(session, a.done, left)
            result.actions[a.name] = None if at is None else at - t0
            result.kinds[a.name] = a.kind
            if at is None:  # the loop was stopped mid-read: this session cannot be read on
                break
    except Exception as exc:  # a failed client is a measured outcome, not a crash
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        if session is not None:
            session.close()
    return result
