"""Real chromium tabs alongside the websocket clients: a smoke test that pages still render.

Debian's chromium through Playwright, with the options of ``tests/conftest.py`` (no browser
is downloaded). Each tab opens one page; it has rendered when the Bokeh document is on the
page with its roots and no root is still a loading spinner. Web fonts are blocked (offline).
"""

from __future__ import annotations

import os
import shutil
import time

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
BLOCKED = ("fonts.googleapis.com", "fonts.gstatic.com")
RENDERED_JS = """() => window.Bokeh !== undefined && Bokeh.documents.length > 0
    && Bokeh.documents[0].roots().length > 0
    && document.querySelector('.pn-loading') === null"""


def run_browsers(base: str, pages: list[str], start_at: float, timeout: float) -> list[dict]:
    """Open every page in its own tab at ``start_at``; seconds until rendered (or the error)."""
    import asyncio

    exe = os.environ.get("SCIFM_CHROMIUM") or shutil.which("chromium")
    if exe is None:
        return [{"page": p, "error": "chromium not installed"} for p in pages]
    return asyncio.run(_run(exe, base, pages, start_at, timeout))


async def _run(exe: str, base: str, pages: list[str], start_at: float, timeout: float) -> list:
    import asyncio

    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        out = await asyncio.gather(*(_tab(browser, f"{base}/{p}", p, timeout) for p in pages))
        await browser.close()
    return list(out)


async def _tab(browser, url: str, page: str, timeout: float) -> dict:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = await context.new_page()
    await tab.route(lambda u: any(h in u for h in BLOCKED), lambda route: route.abort())
    res: dict = {"page": page, "errors": []}
    tab.on("pageerror", lambda exc: res["errors"].append(str(exc)[:200]))
    t0 = time.perf_counter()
    try:
        await tab.goto(url, wait_until="commit", timeout=timeout * 1000)
        left = max(1.0, timeout - (time.perf_counter() - t0))
        await tab.wait_for_function(RENDERED_JS, timeout=left * 1000, polling=200)
        res["rendered_s"] = round(time.perf_counter() - t0, 3)
    except Exception as exc:  # a tab that never renders is the finding
        res["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    await context.close()
    return res
