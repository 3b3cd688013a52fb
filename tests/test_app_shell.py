"""The app shell: page discovery, the landing page, and a real browser visit."""

import pytest

from app.pages.landing import LandingPage
from app.registry import REQUIRED, discover_pages
from app.serve import routes


def test_every_page_module_has_the_contract():
    for mod in discover_pages():
        assert all(hasattr(mod, n) for n in REQUIRED), mod.__name__
    assert len({m.SLUG for m in discover_pages()}) == len(discover_pages())


def test_routes_include_landing_and_pages():
    r = routes()
    assert "/" in r
    assert {f"/{m.SLUG}" for m in discover_pages()} <= set(r)


def test_landing_lists_every_page():
    view = LandingPage(pages=list(discover_pages())).__panel__()
    cards = view.objects[1].objects
    texts = [card.objects[0].object for card in cards]
    for mod in discover_pages():
        assert any(f"(./{mod.SLUG})" in t for t in texts), mod.SLUG


@pytest.mark.browser
def test_landing_renders_in_browser(app_url, browser_page, screenshot_dir):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(app_url + "/")
    expect(page.locator("body")).to_contain_text("foundation-model ideas for science")
    expect(page.locator("body")).to_contain_text("AstroCLIP")
    page.wait_for_timeout(500)
    page.screenshot(path=str(screenshot_dir / "landing.png"), full_page=True)
    assert page.console_errors == []
