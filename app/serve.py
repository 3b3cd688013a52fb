"""Serve the whole app: the landing page at ``/`` and every page module at ``/<SLUG>``.

``scifm serve`` and ``make app`` call ``serve()``; tests call ``start_server()``. Both start a
server that stays fair when many users arrive together (issue 16):

- ``/health`` answers JSON (status, sessions, builds in progress, RSS, uptime); 503 while busy;
- a session's page is built in one worker thread, one build at a time, so the event loop
  keeps answering static requests and other sessions' events meanwhile; while ``max_pending``
  builds are queued or running, a page request gets at once a 503 "server busy" page that
  retries itself after ``Retry-After`` instead of joining a long queue (a proxy in front
  sends it to another process);
- widget callbacks run in a pool of ``nthreads`` threads (``pn.config.nthreads``), one at a
  time per session and in the order they arrived (``app/ordered.py``);
- sessions without a connection are dropped after 10 s (checked every 5 s), and memory is
  handed back to the OS (``gc`` + ``malloc_trim``) after sessions went away;
- websocket messages, hence uploads (sent as base64 model patches), are limited in size;
- every page is built once at start (``warm``), loading the shared models and catalogs,
  and a page module's optional ``warm_up()`` (the galaxies page: redrock for the uploads'
  template fit) runs once in a background thread when the server's loop starts.

Behind a reverse proxy (``deploy/nginx.conf``, ``scripts/serve_multi.sh``): pass the public
host in ``allow_websocket_origin`` and ``use_xheaders=True``.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import logging
import os
import statistics
import threading
import time
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import panel as pn
import tornado.ioloop
import tornado.web

from app.ordered import install as install_callback_threads
from app.registry import discover_pages

UNUSED_SESSION_MS = 10_000  # a session without a websocket is dropped after this long
CHECK_UNUSED_MS = 5_000
MAX_UPLOAD_MB = 10  # largest file a user may upload
WS_MAX_MESSAGE_BYTES = int(MAX_UPLOAD_MB * 2**20 * 4 / 3) + 2**20  # base64 + the patch around it
BUSY_RETRY_S = 2
BUSY_HTML = f"""<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{BUSY_RETRY_S}"><title>scifm: server busy</title></head>
<body style="font-family:sans-serif;margin:3em"><h2>The server is busy</h2>
<p>Many people opened a page at the same moment. This page retries by itself in
{BUSY_RETRY_S} seconds.</p></body></html>"""


def routes() -> dict[str, object]:
    from app.pages import landing

    out: dict[str, object] = {"/": landing.page}
    for mod in discover_pages():
        out[f"/{mod.SLUG}"] = mod.page
    return out


class Builds:
    """Session builds: one worker thread, a count of those waiting, a limit on the queue."""

    def __init__(self, max_pending: int, off_loop: bool = True) -> None:
        self.max_pending = max_pending
        self.pending = 0  # builds queued or running (touched on the event loop only)
        # off_loop=False builds on the event loop, as Bokeh does (kept to compare against)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="scifm-build") if off_loop else None
        self.seconds: deque[float] = deque(maxlen=50)  # the last builds' durations

    @property
    def busy(self) -> bool:
        return self.pending >= self.max_pending

    async def run(self, fn, *args) -> None:
        self.pending += 1
        try:
            if self.pool is None:
                self._timed(fn, *args)
            else:
                await asyncio.get_running_loop().run_in_executor(self.pool, self._timed, fn, *args)
        finally:
            self.pending -= 1

    def _timed(self, fn, *args) -> None:
        t0 = time.perf_counter()
        try:
            fn(*args)
        finally:
            self.seconds.append(time.perf_counter() - t0)


def _frozen(init):
    """``init`` with the document's model graph frozen: Bokeh walks every model of the document
    once when the build ends instead of once per root the template adds (about 20 walks;
    galaxies 3.3-4.8 s -> 1.7-2.0 s a build, /tmp profiling on the loaded 2-core machine)."""

    def build(doc) -> None:
        with doc.models.freeze():
            return init(doc)

    return build


def build_off_loop(app, builds: Builds) -> None:
    """Build ``app``'s documents in ``builds``' thread instead of on the event loop.

    Bokeh awaits ``on_session_created`` and then calls ``initialize_document`` on the loop;
    the build moves into the awaited hook and the later call only re-raises its failure.
    Documents made without a session context (``warm``) are still built inline.
    """
    from panel.io.state import state

    init, created = _frozen(app.initialize_document), app.on_session_created
    done: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def on_session_created(session_context) -> None:
        await created(session_context)
        doc = session_context._document
        loop_thread = threading.get_ident()
        try:
            await builds.run(init, doc)
            done[doc] = None
        except Exception as exc:  # re-raised by initialize_document: Bokeh's error path
            done[doc] = exc
        state._thread_id_[doc] = loop_thread  # the document now belongs to the loop

    def initialize_document(doc) -> None:
        if doc not in done:
            return init(doc)
        if (exc := done.pop(doc)) is not None:
            raise exc

    app.on_session_created, app.initialize_document = on_session_created, initialize_document


def _busy_handler(base: type, builds: Builds) -> type:
    class BusyAwareDocHandler(base):
        """Answers 503 + a self-retrying page at once when too many builds are waiting."""

        async def get(self, *args, **kwargs):
            if builds.busy:
                self.set_status(503)
                self.set_header("Retry-After", str(BUSY_RETRY_S))
                self.set_header("Cache-Control", "no-store")
                self.finish(BUSY_HTML)
                return
            await super().get(*args, **kwargs)

    return BusyAwareDocHandler


class HealthHandler(tornado.web.RequestHandler):
    """``GET /health``: JSON for proxies and checks; 503 while page builds are saturated."""

    def initialize(self, builds: Builds, started: float) -> None:
        self.builds, self.started = builds, started

    def get(self) -> None:
        tornado_app = self.application
        sessions = {p: len(tornado_app.get_sessions(p)) for p in sorted(tornado_app.app_paths)}
        body = {
            "status": "busy" if self.builds.busy else "ok",
            "pid": os.getpid(),
            "sessions": sum(sessions.values()),
            "sessions_by_page": sessions,
            "builds_pending": self.builds.pending,
            "max_pending": self.builds.max_pending,
            "build_s_median": _median(self.builds.seconds),
            "rss_mb": _rss_mb(),
            "uptime_s": round(time.time() - self.started, 1),
        }
        self.set_status(503 if self.builds.busy else 200)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))


def warm_up_pages(modules=None) -> threading.Thread:
    """Run each page module's ``warm_up()`` (default: every page's) one after the other in a
    daemon thread; a failure is logged, never raised (the page then says so when used)."""
    log = logging.getLogger("scifm.serve")

    def run() -> None:
        for mod in modules if modules is not None else discover_pages():
            if not hasattr(mod, "warm_up"):
                continue
            t0 = time.perf_counter()
            try:
                mod.warm_up()
            except Exception as exc:  # a missing optional package, a missing asset, ...
                log.warning("warm-up of page %s failed: %s", mod.SLUG, exc)
            else:
                log.info("warm-up of page %s: %.1f s", mod.SLUG, time.perf_counter() - t0)

    thread = threading.Thread(target=run, name="scifm-warm-up", daemon=True)
    thread.start()
    return thread


def _median(values) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _env_int(name: str, default: int, minimum: int) -> int:
    text = os.environ.get(name, str(default))
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ValueError(f"environment variable {name}={text!r}: expected an integer >= {minimum}")
    return value


def _rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:  # no /proc (macOS)
        pass
    return None


def _give_back_memory(server) -> None:
    """After sessions were dropped: collect cycles and return freed heap pages to the OS."""
    count = sum(len(server._tornado.get_sessions(p)) for p in server._tornado.app_paths)
    if count < getattr(server, "_scifm_sessions", 0):
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc: the OS keeps the pages until exit
            pass
    server._scifm_sessions = count


@contextmanager
def _doc_handler(handler: type):
    """Bokeh reads the per-page handler classes from this list when a server is built."""
    from panel.io import server as pn_server

    patterns = pn_server.per_app_patterns
    saved = list(patterns)
    patterns[:] = [(p[0], handler, *p[2:]) if p[0] == r"/?" else p for p in patterns]
    try:
        yield
    finally:
        patterns[:] = saved


def make_server(
    address: str = "127.0.0.1",
    port: int = 5006,
    *,
    allow_websocket_origin: list[str] | None = None,
    use_xheaders: bool = False,
    max_pending: int | None = None,
    nthreads: int | None = None,
    warm: bool = True,
    apps: dict[str, object] | None = None,
    **kwargs: object,
):
    """The configured (not yet started) Panel server of the whole app (or of ``apps``)."""
    import torch
    from panel.io import server as pn_server

    torch.set_num_threads(_env_int("SCIFM_TORCH_THREADS", 1, 1))  # sessions share the cores
    if max_pending is None:
        max_pending = _env_int("SCIFM_MAX_PENDING", 8, 1)
    if nthreads is None:
        nthreads = _env_int("SCIFM_SERVER_THREADS", 4, 0)
    # widget callbacks in threads: 3x smaller stalls than on the loop in the A/B runs
    # (benchmarks/results/app_load_threads.md); 0 keeps them on the event loop
    install_callback_threads(nthreads)  # ordered per session (app/ordered.py)
    off_loop = bool(_env_int("SCIFM_BUILD_OFF_LOOP", 1, 0))
    builds, started = Builds(max_pending, off_loop), time.time()
    origins = allow_websocket_origin or [f"{address}:{port}", f"localhost:{port}",
                                         f"127.0.0.1:{port}"]  # fmt: skip
    with _doc_handler(_busy_handler(pn_server.DocHandler, builds)):
        server = pn.serve(
            apps or routes(), address=address, port=port, show=False, start=False, title="scifm",
            websocket_origin=origins, warm=warm, use_xheaders=use_xheaders,
            unused_session_lifetime_milliseconds=UNUSED_SESSION_MS,
            check_unused_sessions_milliseconds=CHECK_UNUSED_MS,
            websocket_max_message_size=WS_MAX_MESSAGE_BYTES,
            extra_patterns=[("/health", HealthHandler, {"builds": builds, "started": started})],
            **kwargs,
        )  # fmt: skip
    for ctx in server._tornado._applications.values():
        build_off_loop(ctx.application, builds)
    tornado_cb = tornado.ioloop.PeriodicCallback(lambda: _give_back_memory(server), 10_000)
    server.io_loop.add_callback(tornado_cb.start)
    server.scifm_builds = builds
    if warm and apps is None:  # once the loop runs (after serve() has printed its address)
        server.io_loop.add_callback(lambda: setattr(server, "scifm_warm_up", warm_up_pages()))
    return server


def start_server(address: str = "127.0.0.1", port: int = 5006, **kwargs: object):
    """Start the server in a background thread and return the thread (``.stop()`` ends it)."""
    import uuid

    from panel.io.threads import StoppableThread
    from tornado.ioloop import IOLoop

    loop = IOLoop(make_current=False)
    kwargs = dict(kwargs, address=address, port=port, loop=loop, server_id=uuid.uuid4().hex)

    def run(**kw: object):
        server = make_server(**kw)
        server.start()
        loop.start()
        return server  # StoppableThread stops it (closing the socket) once the loop ends

    thread = StoppableThread(target=run, io_loop=loop, kwargs=kwargs, owns_loop=True)
    thread.start()
    return thread


def serve(
    address: str = "127.0.0.1",
    port: int = 5006,
    show: bool = False,
    *,
    allow_websocket_origin: list[str] | None = None,
    use_xheaders: bool = False,
) -> None:
    """Serve in the foreground until interrupted (SIGINT or SIGTERM)."""
    import signal

    server = make_server(
        address, port, allow_websocket_origin=allow_websocket_origin, use_xheaders=use_xheaders
    )
    stop = server.io_loop.stop
    signal.signal(signal.SIGTERM, lambda *a: server.io_loop.asyncio_loop.call_soon_threadsafe(stop))
    print(f"scifm: serving on http://{address}:{port}/ (pid {os.getpid()})", flush=True)
    server.start()
    if show:
        server.io_loop.add_callback(server.show, "/")
    server.io_loop.start()
    server.stop()
