"""The server under load: /health, session builds off the event loop, the busy answer."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import panel as pn
import pytest

from app.serve import BUSY_RETRY_S, start_server


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 30) -> tuple[int, dict, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def _slow_page(seconds: float):
    def page():
        time.sleep(seconds)  # stands for a page whose build takes a while
        return pn.pane.Markdown("slow page built")

    return page


@pytest.fixture
def slow_server():
    """A server of one page that takes 2 s to build; at most one build may wait."""
    port = _port()
    server = start_server(port=port, warm=False, max_pending=1, apps={"/slow": _slow_page(2.0)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while _get_ok(url + "/health") is None:
        assert time.time() < deadline, "the server did not start"
        time.sleep(0.2)
    yield url
    server.stop()


def _in_thread(fn):
    """Run ``fn()`` on a fresh thread and return its result: a client's event loop must not
    meet the loop another test's in-process server left registered on this thread."""
    out: dict = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # re-raised on the test's thread
            out["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _get_ok(url: str):
    try:
        return _get(url, timeout=2)
    except OSError:
        return None


def test_health_answers_json(slow_server):
    status, headers, body = _get(slow_server + "/health")
    assert status == 200 and headers["Content-Type"] == "application/json"
    info = json.loads(body)
    assert info["status"] == "ok" and info["builds_pending"] == 0 and info["sessions"] == 0
    assert info["sessions_by_page"] == {"/slow": 0} and info["rss_mb"] > 0
    assert info["build_s_median"] is None  # nothing built yet (warm=False)


def test_builds_leave_the_loop_free_and_saturation_answers_busy(slow_server, eventually):
    first: list = []
    t = threading.Thread(target=lambda: first.append(_get(slow_server + "/slow")))
    t.start()
    waits: list[float] = []  # how long each /health took to answer

    def health_while_building() -> tuple[float, int, dict]:
        t0 = time.perf_counter()
        status, _, body = _get(slow_server + "/health")
        waits.append(time.perf_counter() - t0)
        info = json.loads(body)
        # polled until the first build sleeps in the build thread (its request can take a
        # while to arrive on a loaded machine); a blocked loop answers only after the build
        slowest = f"slowest answer {max(waits):.2f} s (over 1 s: the loop was blocked)"
        assert info["builds_pending"] == 1, (slowest, info)
        return waits[-1], status, info

    seconds, status, info = eventually(health_while_building, timeout=30)
    assert seconds < 1.0, "the event loop was blocked by a session build"
    assert status == 503 and info["builds_pending"] == 1
    status, headers, body = _get(slow_server + "/slow")  # a second user meanwhile
    assert status == 503 and headers["Retry-After"] == str(BUSY_RETRY_S)
    assert "server is busy" in body and 'http-equiv="refresh"' in body
    t.join(30)
    assert first and first[0][0] == 200 and '"token"' in first[0][2]
    status, _, body = _get(slow_server + "/health")
    info = json.loads(body)
    assert status == 200 and info["sessions"] == 1 and info["build_s_median"] >= 2.0


def test_a_page_built_off_the_loop_is_served_over_its_websocket(slow_server):
    """The document built in the build thread reaches the client with the page's token."""
    import re

    from bokeh.client.session import ClientSession
    from bokeh.util.token import get_session_id
    from tornado.ioloop import IOLoop

    status, _, body = _get(slow_server + "/slow")
    assert status == 200
    token = re.search(r'"token"\s*:\s*"([^"]+)"', body).group(1)

    class Session(ClientSession):
        @property
        def token(self) -> str:
            return token

    ws = slow_server.replace("http://", "ws://") + "/slow/ws"

    def pull_texts() -> list[str]:
        session = Session(session_id=get_session_id(token), websocket_url=ws, io_loop=IOLoop())
        try:
            session.pull()
            return [str(getattr(m, "text", "")) for m in session.document.models]
        finally:
            session.close()

    assert any("slow page built" in t for t in _in_thread(pull_texts))


def test_bad_server_settings_name_the_variable(monkeypatch):
    from app.serve import make_server

    monkeypatch.setenv("SCIFM_MAX_PENDING", "many")
    with pytest.raises(ValueError, match=r"SCIFM_MAX_PENDING='many': expected an integer >= 1"):
        make_server(port=_port(), warm=False, apps={"/slow": _slow_page(0.0)})


@pytest.mark.parametrize("off_loop", [True, False])
def test_builds_count_pending_and_time_each_build(off_loop):
    import asyncio

    from app.serve import Builds

    builds, seen = Builds(max_pending=1, off_loop=off_loop), []

    def build(doc) -> None:
        seen.append((doc, builds.pending, builds.busy, threading.get_ident()))

    loop_thread = _in_thread(
        lambda: (asyncio.run(builds.run(build, "doc")), threading.get_ident())
    )[1]
    ((doc, pending, busy, thread),) = seen
    assert doc == "doc" and pending == 1 and busy and builds.pending == 0 and not builds.busy
    assert (thread != loop_thread) == off_loop and len(builds.seconds) == 1


def test_page_warm_ups_run_in_a_thread_and_a_failure_is_only_logged(caplog):
    """A page module's optional ``warm_up()`` (the galaxies page: redrock) runs at start in a
    daemon thread, after the other pages' ones; one that fails is logged, never raised."""
    from types import SimpleNamespace

    from app.serve import warm_up_pages

    done = []

    def broken():
        raise FileNotFoundError("redshift templates x.fits: does not exist")

    def mark():
        done.append(threading.current_thread())

    mods = [SimpleNamespace(SLUG="a", warm_up=broken), SimpleNamespace(SLUG="plain"),
            SimpleNamespace(SLUG="b", warm_up=mark)]  # fmt: skip
    with caplog.at_level("INFO", logger="scifm.serve"):
        thread = warm_up_pages(mods)
        thread.join(10)
    assert done == [thread] and thread.daemon and thread is not threading.main_thread()
    assert "warm-up of page a failed: redshift templates x.fits: does not exist" in caplog.text
    assert "warm-up of page b:" in caplog.text
