"""The rollout viewer (scifm.dashboards.physics): driven as a class, then as the "physics"
page through a real browser."""

from __future__ import annotations

import pytest

pytest.importorskip("panel")


@pytest.fixture
def page_obj():
    from scifm.dashboards import RolloutViewer

    return RolloutViewer.from_assets()


def test_run_fills_player_frames_curve_and_times(page_obj):
    page_obj.system = "diffreact"
    page_obj.steps = 3
    assert page_obj.run()
    res = page_obj.result
    assert res.truth.shape == res.pred.shape and res.truth.shape[0] == 3
    assert page_obj.param.field.objects == ["u", "v"]
    assert page_obj.frames_pane.object.count("<img") == 3
    assert "step 1 of 3" in page_obj.frames_pane.object
    page_obj.field, page_obj.frame = "v", 2
    assert "v, step 3 of 3" in page_obj.frames_pane.object
    assert "solver" in page_obj.times_pane.object and page_obj.player.end == 2
    assert len(page_obj.curve_pane.object.data) == 3


def test_benchmark_views_show_transfer_plot_and_one_step_table(page_obj):
    from scifm.core.paths import results_dir

    if not (results_dir() / "mpp.json").exists():
        pytest.skip("no benchmarks/results/mpp.json yet")
    plot, _, table, note = page_obj.bench_panes
    assert len(plot.object) == 8  # (M=0.1, M=1.0) x (pretrained, scratch), lines + markers
    assert {"persistence", "mpp_pretrained"} <= set(table.object.index)
    assert "32" in note.object


def test_dam_radius_and_mach_number_are_used(page_obj):
    page_obj.use_param, page_obj.steps = True, 2
    page_obj.radius = 1.2
    assert page_obj.run()
    wide = page_obj.result.truth[0, 0]
    page_obj.radius = 0.3
    assert page_obj.run()
    assert (wide > 1.5).sum() > (page_obj.result.truth[0, 0] > 1.5).sum()


@pytest.mark.parametrize(
    ("attr", "value", "text"),
    [("steps", 500, "steps=500"), ("radius", -3.0, "radius=-3.0"), ("seed", -1, "seed=-1")],
)
def test_bad_inputs_give_a_clear_message(page_obj, attr, value, text):
    page_obj.use_param = True
    setattr(page_obj, attr, value)
    assert not page_obj.run()
    assert page_obj.message.visible and text in page_obj.message.object
    assert page_obj.message.alert_type == "danger"


@pytest.mark.browser
def test_physics_page_in_browser(app_url, browser_page, screenshot_dir):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(app_url + "/physics")
    expect(page.locator(".mpp-frames")).to_contain_text("Press Run")
    page.locator("select").first.select_option(label="Compressible NS, M=1.0")
    steps = page.get_by_label("Rollout steps (1-60)")
    steps.fill("6")
    steps.press("Enter")
    page.locator(".mpp-run button").click()
    expect(page.locator(".mpp-frames")).to_contain_text("step 1 of 6", timeout=90_000)
    expect(page.locator(".mpp-frames img")).to_have_count(3)
    expect(page.locator(".mpp-times")).to_contain_text("surrogate")
    expect(page.locator(".mpp-message")).to_contain_text("Done")
    expect(page.locator(".mpp-run button")).to_be_enabled()
    page.wait_for_timeout(1500)  # let bokeh draw the new NRMSE curve before the screenshot
    page.screenshot(path=str(screenshot_dir / "physics.png"), full_page=True)
    table = page.locator(".mpp-table")
    if table.count():  # benchmark results present: the transfer plot and one-step table
        table.scroll_into_view_if_needed()
        expect(table).to_contain_text("persistence")
        page.screenshot(path=str(screenshot_dir / "physics_benchmark.png"))
    assert not page.console_errors
