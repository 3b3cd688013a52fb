"""Shared fixtures: the served app on a free port, a headless Debian chromium, and the
``scifm.*`` imports of source files (the layout checks).

Browser tests never download a browser: they drive /usr/bin/chromium through
Playwright. Without chromium they skip locally and FAIL under CI=true.
"""

from __future__ import annotations

import ast
import os
import shutil
import socket
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# Two cores, many small tensors: one intra-op thread avoids oversubscription (workers,
# subprocesses and the served app share the machine).
torch.set_num_threads(1)
OUTPUT = ROOT / "test-output"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
BLOCKED_HOSTS = ("fonts.googleapis.com", "fonts.gstatic.com")


def _chromium() -> str | None:
    return os.environ.get("SCIFM_CHROMIUM") or shutil.which("chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scifm_imports(files: Iterable[Path]) -> set[str]:
    """Every ``scifm.X`` module imported anywhere in ``files`` (inside functions too)."""
    out = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                out.add(node.module)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("scifm.")}


def _eventually(check, timeout: float = 60.0):
    """``check()`` until it passes (raises no AssertionError), then its result; the last
    AssertionError after ``timeout`` seconds. A browser receives a redraw's model changes
    one by one, and a server answers a request once its thread gets to it: poll for the
    state a check reads rather than reading it once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


@pytest.fixture(scope="session")
def eventually() -> Callable:
    """``eventually(check, timeout=60.0)``: ``check()`` until it passes, then its result."""
    return _eventually


@pytest.fixture(scope="session")
def scifm_imports() -> Callable[[Iterable[Path]], set[str]]:
    """``scifm_imports(files)``: every ``scifm.X`` module the files import, at any depth."""
    return _scifm_imports


@pytest.fixture(scope="session")
def desi_coadds() -> list[Path]:
    """specutils' real DESI coadd files; skip without specutils (fail under CI=true).

    specutils installed but without the files is a failure, never a skip.
    """
    from scifm.survey.readers.synthetic import specutils_desi_coadds

    try:
        return specutils_desi_coadds()
    except ModuleNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI=true: the astro extra must be installed)")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    path = OUTPUT / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    """The whole app served in-process on a free loopback port."""
    from app.serve import start_server

    port = _free_port()
    server = start_server(port=port)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/liveness", timeout=5):
                break
        except OSError:
            try:
                with urllib.request.urlopen(url + "/", timeout=30):
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
    yield url
    server.stop()


@pytest.fixture(scope="session")
def _browser():
    exe = _chromium()
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing under CI=true: .ci/run must install it")
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait on content; a page's first render shares two cores with the other
    # test worker, so wait as long as actions do (a real failure still fails, later).
    expect.set_options(timeout=60_000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _open_page(browser, **context_options):
    """A page in a new context (1400x1000 unless told); web fonts blocked;
    ``page.console_errors`` collects other errors. Returns ``(context, page)``."""
    options = {"viewport": {"width": 1400, "height": 1000}, **context_options}
    context = browser.new_context(**options)
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []

    def on_console(msg) -> None:
        if msg.type == "error":
            where = (msg.location or {}).get("url", "")
            if not any(h in where or h in msg.text for h in BLOCKED_HOSTS):
                errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.route(lambda url: any(h in url for h in BLOCKED_HOSTS), lambda route: route.abort())
    page.console_errors = errors
    return context, page


@pytest.fixture(scope="session")
def open_page(_browser):
    """``open_page(**context_options) -> (context, page)``; the caller closes the context."""
    return lambda **context_options: _open_page(_browser, **context_options)


@pytest.fixture
def browser_page(open_page):
    """A fresh page; web fonts blocked; ``page.console_errors`` collects other errors."""
    context, page = open_page()
    yield page
    context.close()
