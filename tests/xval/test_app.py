"""The tokenization comparer (scifm.dashboards.numbers): driven directly, then as the
"numbers" page through headless chromium."""

import re

import numpy as np
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


ANSWER_ROW = re.compile(
    r"<tr class='xv-answer' data-scheme='(\w+)'><td[^>]*>\w+</td><td>([^<]*)</td><td>([^<]*)%</td>"
)


def test_answers_from_every_model(view, tiny_assets) -> None:
    from scifm.xval import predict
    from scifm.xval.tasks import ood_text
    from scifm.xval.tokenizers import SCHEMES
    from scifm.xval.train import load_trained

    # The page must show, per encoding, what that model predicts for a*b= (library call).
    models = {s: load_trained(tiny_assets / f"ood_{s}") for s in SCHEMES}
    for question, a, b in [("4.5*3.2", 4.5, 3.2), ("6.5 x 2.5 =", 6.5, 2.5)]:
        view.question = question
        html = view.answers_pane.object
        assert f"True value: <b>{a * b:.6g}</b>" in html
        shown = {s: (answer, error) for s, answer, error in ANSWER_ROW.findall(html)}
        assert sorted(shown) == sorted(SCHEMES)
        expected = {s: float(predict(t, [ood_text(a, b)]).pred[0]) for s, t in models.items()}
        assert np.isfinite(expected["xval"])  # at least one real number to compare
        for s, v in expected.items():
            answer, error = shown[s]
            if not np.isfinite(v):
                assert answer == "invalid", (s, answer)
                continue
            assert float(answer) == pytest.approx(v, rel=1e-5), (question, s)
            assert float(error) == pytest.approx(abs(v - a * b) / (a * b) * 100, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("question", ["", "hello", "--5", "1e300*2", "nan*2", "3+4", "1e400*1"])
def test_absurd_questions_give_a_message(view, question: str) -> None:
    view.question = question
    html = view.answers_pane.object
    assert "xv-answer" not in html and ("Expected" in html or "Ask" in html or "absurd" in html
                                        or "Cannot" in html)  # fmt: skip


def test_plots_and_table_render(view, tiny_assets) -> None:
    import holoviews as hv

    from scifm.xval import predict
    from scifm.xval.tasks import ood_text
    from scifm.xval.tokenizers import SCHEMES
    from scifm.xval.train import load_trained

    # The sweep draws, for each model, its library predictions of a*b at the a it plots.
    view.b_value = 2.5
    curves = {c.label: c for c in view.sweep_plot() if isinstance(c, hv.Curve)}
    assert sorted(curves) == sorted((*SCHEMES, "truth"))
    a = curves["truth"].dimension_values(0)
    np.testing.assert_allclose(curves["truth"].dimension_values(1), a * 2.5, rtol=1e-7)
    for s in SCHEMES:
        samples = [ood_text(float(x), 2.5) for x in curves[s].dimension_values(0)]
        expected = predict(load_trained(tiny_assets / f"ood_{s}"), samples).pred
        np.testing.assert_allclose(curves[s].dimension_values(1), expected, rtol=1e-6)
    assert isinstance(view.orbit_plot(), hv.Overlay)
    view.__panel__()


@pytest.mark.browser
def test_numbers_page_in_browser(app_url, browser_page, screenshot_dir) -> None:
    from playwright.sync_api import expect

    from scifm.xval import predict
    from scifm.xval.assets import checkpoint_path
    from scifm.xval.tasks import ood_text
    from scifm.xval.tokenizers import SCHEMES
    from scifm.xval.train import load_trained

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
    question = [ood_text(6.5, 2.5)]
    for scheme in SCHEMES:  # each row shows what that shipped model predicts
        v = float(predict(load_trained(checkpoint_path("ood", scheme)), question).pred[0])
        row = page.locator(f".xv-answer[data-scheme='{scheme}'] td").nth(1)
        expect(row).to_have_text(f"{v:.6g}" if np.isfinite(v) else "invalid")
    page.wait_for_timeout(1000)
    page.screenshot(path=str(screenshot_dir / "numbers.png"), full_page=True)
    assert page.console_errors == []
