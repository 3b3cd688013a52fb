"""The tokenization comparer (scifm.dashboards.numbers): driven directly, then as the
"numbers" page through headless chromium."""

import pytest

from scifm.dashboards.numbers import TokenizationComparer, load_models


@pytest.fixture
def view(tiny_assets):
    load_models.cache_clear()
    return TokenizationComparer.from_assets(tiny_assets)


def test_five_tokenizations_with_counts(view) -> None:
    view.text = "x = 1.2345, t1 = 3-2"
    html = view.tokens_pane.object
    for scheme in ("xval", "p10", "p1000", "b1999", "fp15"):
        assert f"data-scheme='{scheme}'" in html
    assert "1 not exact" in html  # 1.2345 is rounded by the digit schemes
    assert "0 not exact" in html  # ... but not by xVal
    assert "<+123E-2>" in html.replace("&lt;", "<").replace("&gt;", ">")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("1e400", "overflows"),
        ("nan inf", "words here"),
        ("--5", "doubled sign"),
        ("7" * 25_000, "limit"),
        ("1e300 + 1e-300", "float32"),
    ],
)
def test_absurd_text_gives_a_message(view, text: str, message: str) -> None:
    view.text = text
    assert message in view.tokens_pane.object


def test_ten_thousand_characters_are_fine(view) -> None:
    view.text = "a=1.5, " * 1430
    assert "tokens shown" in view.tokens_pane.object


def test_answers_from_every_model(view) -> None:
    view.question = "4.5*3.2"
    html = view.answers_pane.object
    assert "14.4" in html
    assert html.count("class='xv-answer'") == 5


@pytest.mark.parametrize("question", ["", "hello", "--5", "1e300*2", "nan*2", "3+4", "1e400*1"])
def test_absurd_questions_give_a_message(view, question: str) -> None:
    view.question = question
    html = view.answers_pane.object
    assert "xv-answer" not in html and ("Expected" in html or "Ask" in html or "absurd" in html
                                        or "Cannot" in html)  # fmt: skip


def test_plots_and_table_render(view) -> None:
    import holoviews as hv

    assert isinstance(view.sweep_plot(), hv.Overlay)
    assert isinstance(view.orbit_plot(), hv.Overlay)
    view.__panel__()


@pytest.mark.browser
def test_numbers_page_in_browser(app_url, browser_page, screenshot_dir) -> None:
    from playwright.sync_api import expect

    page = browser_page
    page.goto(app_url + "/numbers")
    body = page.locator("body")
    expect(body).to_contain_text("xVal: one token per number")
    box = page.locator(".xv-text textarea")
    box.fill("speed = 299792458, t1 = .5-2")
    box.press("Tab")
    expect(page.locator(".xv-scheme")).to_have_count(5)
    expect(body).to_contain_text("fp15")
    expect(page.locator(".xv-scheme").first).to_contain_text("19 tokens, 3 numbers")
    q = page.locator(".xv-question input")
    q.fill("6.5*2.5")
    q.press("Enter")
    expect(body).to_contain_text("True value: 16.25")
    expect(page.locator(".xv-answer")).to_have_count(5)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(screenshot_dir / "numbers.png"), full_page=True)
    assert page.console_errors == []
