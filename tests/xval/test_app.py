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
    from scifm.xval import predict
    from scifm.xval.tasks import ood_text
    from scifm.xval.tokenizers import SCHEMES
    from scifm.xval.train import load_trained

    # The sweep draws, for each model, its library predictions of a*b at the a it plots.
    view.b_value = 2.5
    legend = view.sweep.figure.legend[0]
    assert [i.label.value for i in legend.items] == ["truth", *SCHEMES]
    assert len(view.sweep.figure.renderers) == len(SCHEMES) + 1  # one line each
    a, truth = view.sweep.line("truth")
    np.testing.assert_allclose(truth, a * 2.5, rtol=1e-7)
    for s in SCHEMES:
        samples = [ood_text(float(x), 2.5) for x in a]
        expected = predict(load_trained(tiny_assets / f"ood_{s}"), samples).pred
        np.testing.assert_allclose(view.sweep.line(s)[1], expected, rtol=1e-6)
    assert view.sweep.figure.yaxis[0].axis_label == "a × b (b = 2.5)"
    assert view.sweep.figure.title.text.startswith("a × 2.5;")
    view.__panel__()


def test_plots_follow_b_and_the_system_without_new_models(view) -> None:
    """A new b or orbit system replaces the sources' data: no Bokeh model is made after
    display (in JupyterLab, replaced models broke other widgets)."""
    from scifm.xval.demo import orbit_prediction

    plots = (view.sweep.figure, view.orbit.figure)
    before = [{m.id for m in fig.references()} for fig in plots]
    first = view.sweep.line("xval")[1]
    view.b_value = 7.5
    a, truth = view.sweep.line("truth")
    np.testing.assert_allclose(truth, a * 7.5, rtol=1e-7)
    assert not np.array_equal(view.sweep.line("xval")[1], first)
    for seed in (3, 0):
        view.orbit_seed = seed
        res = orbit_prediction(view.orbit_models, seed)  # the library's answer, recomputed
        orbits = view.orbit.orbits.data
        assert len(orbits["xs"]) == res["orbits"].shape[1]  # one orbit per planet
        np.testing.assert_allclose(orbits["xs"][0], res["orbits"][:, 0, 0])
        truth = view.orbit.sources["truth"].data
        np.testing.assert_allclose(np.c_[truth["x"], truth["y"]], res["recorded"][-1])
        given = view.orbit.sources["given"].data
        assert len(given["x"]) == res["recorded"][:-1, :, 0].size
        for s, pred in res["predicted"].items():
            got = view.orbit.sources[s].data
            np.testing.assert_allclose(np.c_[got["x"], got["y"]], pred, rtol=1e-6)
    assert [{m.id for m in fig.references()} for fig in plots] == before


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


def test_text_boxes_follow_typing_and_code(view) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def check() -> None:
        # a keystroke (value_input) is taken after the pause, without Enter or leaving the box
        view.text_input.value_input = "x = 1.5"
        assert view.text == "x = 1.5" and "data-scheme='xval'" in view.tokens_pane.object
        view.question_input.value_input = "2*3"
        assert "True value: <b>6</b>" in view.answers_pane.object
        view.text = "y = 2"  # code sets the parameter: the box shows it
        assert view.text_input.value == "y = 2"

    # on a thread without a running event loop, where Panel runs the pause to its end
    # (playwright's sync API keeps a loop running on the main thread after a browser test)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(check).result()


def test_default_views_are_computed_once_per_process(tiny_assets) -> None:
    from scifm.dashboards.numbers import ANSWERS, ORBITS, SWEEPS

    load_models.cache_clear()
    first = TokenizationComparer.from_assets(tiny_assets)
    hits = (SWEEPS.hits, ORBITS.hits, ANSWERS.hits)
    second = TokenizationComparer.from_assets(tiny_assets)  # draws the default views
    assert (SWEEPS.hits, ORBITS.hits, ANSWERS.hits) == tuple(h + 1 for h in hits)
    assert second.answers_pane.object == first.answers_pane.object
    for name in first.sweep.names:
        assert second.sweep.line(name)[1] is first.sweep.line(name)[1]  # the same arrays


def test_plots_have_axis_labels(view) -> None:
    from bokeh.models import Axis

    for fig in (view.sweep.figure, view.orbit.figure):
        labels = [a.axis_label for a in fig.select({"type": Axis})]
        assert labels and all(lb and lb not in ("x", "y") for lb in labels), labels
    assert view.sweep.figure.xaxis[0].axis_label == "a (first operand; trained on [1, 10))"
    assert view.orbit.figure.xaxis[0].axis_label == "x (innermost semi-major axis = 1)"
    assert [i.label.value for i in view.orbit.figure.legend[0].items] == [
        "star", "given", "truth", *view.orbit_models]  # fmt: skip


def test_stored_results_shown_as_learning_curves_and_invalid_rates() -> None:
    import json

    from scifm.core.paths import results_dir
    from scifm.dashboards.xval_results import XvalResults

    path = results_dir() / "xval.json"
    stored = json.loads(path.read_text())
    res = XvalResults(path)
    assert res.group == "ood/mlm" and set(res.param.group.objects) == set(stored["curves"])
    for group in stored["curves"]:
        res.group = group
        joined: dict = {}  # scheme -> its seeds' points, one NaN between seeds
        for cell, curve in sorted(stored["curves"][group].items()):
            scheme = cell.rpartition("_s")[0]
            pts = [(r["step"], r["val_loss"], 100 * r["test.invalid_rate"]) for r in curve]
            joined[scheme] = [*joined[scheme], (np.nan,) * 3, *pts] if scheme in joined else pts
        for scheme, pts in joined.items():
            step, loss, invalid = np.array(pts).T
            np.testing.assert_allclose(res.drawn("val_loss", scheme), [step, loss])
            np.testing.assert_allclose(res.drawn("test.invalid_rate", scheme), [step, invalid])
            conv = stored["groups"][group]["rows"][scheme]["converged"]
            if "missing" not in conv:  # at convergence, as the report stores it
                assert res.invalid_rates()[scheme] == pytest.approx(
                    100 * conv["test.invalid_rate"][0]
                )
    res.x_axis = "training tokens"
    cell, curve = sorted(stored["curves"][res.group].items())[0]
    got = res.drawn("val_loss", cell.rpartition("_s")[0])[0]
    np.testing.assert_allclose(got[: len(curve)], [r["tokens"] / 1e6 for r in curve])
    assert res.figures["val_loss"].xaxis.axis_label == "training tokens (M)"


AXIS_LABELS_JS = """() => [...Bokeh.documents].flatMap(d => [...d.all_models])
    .filter(m => m.constructor.__name__.endsWith('Axis')).map(m => m.axis_label)"""
FIGURES_JS = """() => Object.fromEntries([...Bokeh.documents].flatMap(d => [...d.all_models])
    .filter(m => m.constructor.__name__ === 'Figure' && m.title && m.title.text)
    .map(f => [f.title.text, f.renderers.filter(r => r.data_source).map(r => {
        const d = r.data_source.data, g = r.glyph, y = g.y ?? g.top;
        return Array.from(d[y && y.field] ?? []); })]))"""


@pytest.mark.browser
def test_numbers_boxes_follow_typing(app_url, browser_page, screenshot_dir) -> None:
    """Typing updates the tokens and the answers without Enter or leaving the box (issue 16:
    they updated only on blur, with no hint); the box keeps focus and every character."""
    from playwright.sync_api import expect

    page = browser_page
    page.goto(app_url + "/numbers")
    body = page.locator("body")
    expect(page.locator(".xv-scheme")).to_have_count(5)
    box = page.locator(".xv-text textarea")
    box.click()
    box.press("Control+a")
    box.press_sequentially("speed = 299792458, t1 = .5-2", delay=30)
    expect(page.locator(".xv-scheme").first).to_contain_text("19 tokens, 3 numbers")
    expect(box).to_have_value("speed = 299792458, t1 = .5-2")
    assert box.evaluate("e => e.getRootNode().activeElement === e")  # never left the box
    q = page.locator(".xv-question input")
    q.click()
    q.press("Control+a")
    q.press_sequentially("6.5*2.5", delay=30)
    expect(body).to_contain_text("True value: 16.25")
    expect(page.locator(".xv-answer")).to_have_count(5)
    assert q.evaluate("e => e.getRootNode().activeElement === e")
    expect(body).to_contain_text("the tokens follow as you type")  # the hint
    expect(body).to_contain_text("the answers follow as you type")
    page.screenshot(path=str(screenshot_dir / "numbers_typing.png"))
    assert page.console_errors == []


@pytest.mark.browser
def test_numbers_first_look_axis_labels_and_stored_results(
    app_url, browser_page, screenshot_dir, eventually
):
    """Before any input: the default text's five tokenizations and every encoding's answer;
    every plot's axes labelled (the sweep read "x"/"y"); the stored learning curves and
    invalid rates (benchmarks/results/xval.json) drawn as stored, per chosen run group."""
    import json
    from functools import partial

    from playwright.sync_api import expect

    from scifm.core.paths import results_dir

    stored = json.loads((results_dir() / "xval.json").read_text())
    page = browser_page

    def drawn(name: str, per_scheme: dict) -> None:
        # a redraw's changes arrive one by one, the bars' title last (after the curves' one)
        figs = page.evaluate(FIGURES_JS)
        title, bars = f"{name}: validation loss", f"{name}: invalid at convergence"
        assert title in figs and bars in figs, sorted(figs)
        lengths = sorted(len(y) for y in figs[title] if y)
        assert lengths == sorted(per_scheme.values()), figs[title]
        invalid = figs[bars][0]
        assert len(invalid) == len(per_scheme)

    page.goto(app_url + "/numbers")
    expect(page.locator(".xv-scheme")).to_have_count(5)
    expect(page.locator(".xv-answer")).to_have_count(5)
    page.wait_for_function(f"() => ({AXIS_LABELS_JS})().length >= 4")  # sweep and orbits
    labels = page.evaluate(AXIS_LABELS_JS)
    assert all(label and label not in ("x", "y") for label in labels), labels
    page.wait_for_function(f"() => ({AXIS_LABELS_JS})().length >= 12")  # + stored results
    labels = page.evaluate(AXIS_LABELS_JS)
    assert all(label and label not in ("x", "y") for label in labels), labels
    assert {"a (first operand; trained on [1, 10))", "a × b (b = 3)",
            "x (innermost semi-major axis = 1)", "y (innermost semi-major axis = 1)",
            "validation loss (log)", "test R² (all samples, clipped at -1)",
            "invalid answers (% of test samples)", "optimizer steps"} <= set(labels)  # fmt: skip
    for group, name in (("ood/mlm", "ood (masked)"), ("multiplication/mlm",
                                                      "multiplication (masked)")):  # fmt: skip
        if group != "ood/mlm":
            page.locator("select").first.select_option(label=name)
        per_scheme: dict = {}  # an encoding's seeds are one line, a NaN between them
        for cell, curve in stored["curves"][group].items():
            scheme = cell.rpartition("_s")[0]
            per_scheme[scheme] = per_scheme.get(scheme, -1) + 1 + len(curve)
        eventually(partial(drawn, name, per_scheme))
    page.locator(".xv-curves").first.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(screenshot_dir / "numbers_results.png"))
    assert page.console_errors == []


SWEEP_TITLE_JS = """() => [...Bokeh.documents].flatMap(d => [...d.all_models])
    .filter(m => m.constructor.__name__ === 'Figure' && m.title && m.title.text.startsWith('a ×'))
    .map(f => f.title.text)"""
RENDERERS_JS = """title => [...Bokeh.documents].flatMap(d => [...d.all_models])
    .filter(m => m.constructor.__name__ === 'Figure' && m.title && m.title.text === title)
    .flatMap(f => f.renderers.filter(r => r.data_source).map(r => {
        const d = r.data_source.data, field = k => r.glyph[k] && r.glyph[k].field;
        return Object.fromEntries(['x', 'y'].filter(k => field(k) in d)
                                  .map(k => [k, Array.from(d[field(k)])])); }))"""


@pytest.mark.browser
def test_numbers_sweep_and_orbits_follow_their_sliders(
    app_url, browser_page, screenshot_dir, eventually
):
    """The sweep follows the b slider and the orbit plot the system slider, in the browser:
    the drawn lines and points are the library's for the new value."""
    from playwright.sync_api import expect

    from scifm.dashboards.numbers import default_assets
    from scifm.xval.demo import ood_sweep, orbit_prediction
    from scifm.xval.train import load_trained

    root = default_assets()
    page = browser_page
    page.goto(app_url + "/numbers")
    expect(page.locator(".xv-answer")).to_have_count(5)
    page.wait_for_function(f"() => ({SWEEP_TITLE_JS})().length == 1")
    assert page.evaluate(SWEEP_TITLE_JS)[0].startswith("a × 3;")
    # keyboard on a slider's handle: one step right, taken when the key is released
    sliders = page.locator(".noUi-handle")
    sliders.nth(0).focus()
    sliders.nth(0).press("ArrowRight")
    page.wait_for_function(f"() => ({SWEEP_TITLE_JS})()[0].startsWith('a × 3.01;')")
    xval = {"xval": load_trained(root / "ood_xval", "cpu")}

    def sweep_drawn() -> None:
        truth, *lines = page.evaluate(RENDERERS_JS, page.evaluate(SWEEP_TITLE_JS)[0])
        np.testing.assert_allclose(truth["y"], np.array(truth["x"]) * 3.01, rtol=1e-6)
        expected = ood_sweep(xval, 3.01, np.array(truth["x"]))["xval"]
        np.testing.assert_allclose(lines[0]["y"], expected, rtol=1e-5)  # xval's line is first
        # the axis label is its own change in the same redraw; it can arrive after the data
        assert "a × b (b = 3.01)" in page.evaluate(AXIS_LABELS_JS)

    eventually(sweep_drawn)

    title = "Predicted next position of each planet"
    sliders.nth(1).focus()
    sliders.nth(1).press("ArrowRight")  # system 0 -> 1
    models = {s: load_trained(root / f"orbits_{s}", "cpu") for s in ("xval", "p1000")}
    res = orbit_prediction(models, 1)

    def orbits_drawn() -> None:
        _orbits, _star, given, truth, *preds = page.evaluate(RENDERERS_JS, title)
        np.testing.assert_allclose(np.c_[truth["x"], truth["y"]], res["recorded"][-1])
        assert len(given["x"]) == res["recorded"][:-1, :, 0].size
        for pred, s in zip(preds, models, strict=True):
            got = np.c_[pred["x"], pred["y"]]
            np.testing.assert_allclose(got, res["predicted"][s], rtol=1e-5)

    eventually(orbits_drawn)
    page.screenshot(path=str(screenshot_dir / "numbers_sliders.png"), full_page=True)
    assert page.console_errors == []
