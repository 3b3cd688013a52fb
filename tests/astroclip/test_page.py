"""The galaxy explorer (scifm.dashboards.galaxies): driven through its Viewer class, then
as the "galaxies" page through a real browser."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SHIPPED = ROOT / "assets" / "astroclip" / "catalog.h5"


@pytest.fixture
def page(trained):
    from scifm.dashboards import GalaxyExplorer

    view = GalaxyExplorer.from_assets(trained["dir"])
    view.__panel__()
    return view


def test_selecting_by_id_shows_galaxy_and_neighbours(page):
    tid = int(page.explorer.catalog.targetid[4])
    page.select_id(str(tid))
    assert page.row == 4 and not page.message.visible
    assert len(page.table.value) == page.k and "Top 16" in page.grid.object
    assert str(tid) in page.image_pane.object  # the image's alt text
    assert "redshift" in page.props_pane.object
    csv = page._csv().getvalue().splitlines()
    assert csv[0].startswith("rank,score,targetid") and len(csv) == page.k + 1


def test_modes_k_and_filters_update_the_neighbours(page):
    page.select_row(0)
    page.mode = "spectrum → image"
    page.k = 5
    assert len(page.table.value) == 5
    w = page.filters["redshift"]
    w.value = (w.start, w.start + 1e-6 * (w.end - w.start))
    page._refresh()
    assert len(page.table.value) <= 1
    if len(page.table.value) == 0:
        assert "filters" in page.message.object


def test_absurd_input_gives_a_message_not_an_error(page):
    page.select_id("not a number")
    assert page.message.visible and "not an integer" in page.message.object
    page.select_id("123")
    assert "not in this catalog" in page.message.object
    out = page.handle_upload(b"definitely not FITS", "junk.fits")
    assert "Could not read junk.fits" in out[0].object


def test_click_selects_the_nearest_point(page):
    x, y = page.explorer.catalog.umap["spectrum"][9]
    page.select_xy(float(x), float(y))
    assert page.row == 9
    page.select_xy(None, None)  # a tap outside the data: nothing happens
    assert page.row == 9


def test_real_desi_upload_gives_knn_redshift(page, desi_coadds):
    out = page.handle_upload(desi_coadds[0].read_bytes(), desi_coadds[0].name)
    assert "k-NN redshift" in out[0].object


def test_missing_catalog_is_reported_on_the_page(tmp_path):
    from scifm.dashboards import GalaxyExplorer

    view = GalaxyExplorer.from_assets(tmp_path)
    assert view.explorer is None and "could not be loaded" in view.message.object
    view.__panel__()


@pytest.mark.browser
@pytest.mark.skipif(not SHIPPED.exists(), reason="shipped catalog not built yet")
def test_galaxies_page_in_a_browser(app_url, browser_page, screenshot_dir, desi_coadds):
    from playwright.sync_api import expect

    from scifm.astroclip.catalog import Catalog

    p = browser_page
    p.goto(app_url + "/galaxies")
    canvas = p.locator(".bk-Canvas, canvas").first
    expect(canvas).to_be_visible(timeout=60_000)
    p.wait_for_timeout(1500)
    box = p.locator("canvas").first.bounding_box()
    p.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    expect(p.get_by_text("Top 16").first).to_be_visible(timeout=30_000)
    tid = str(Catalog.load(SHIPPED).targetid[123])
    p.get_by_placeholder("e.g. 396000...").fill(tid)
    p.get_by_role("button", name="Show").click()
    expect(p.locator(f"img[alt='galaxy {tid}']")).to_be_visible(timeout=30_000)
    # Enter in the box shows the typed galaxy too (it once said "True is not an integer")
    tid2 = str(Catalog.load(SHIPPED).targetid[7])
    box = p.get_by_placeholder("e.g. 396000...")
    box.fill(tid2)
    box.press("Enter")
    expect(p.locator(f"img[alt='galaxy {tid2}']")).to_be_visible(timeout=30_000)
    expect(p.get_by_text("is not an integer")).to_have_count(0)
    p.locator("input[type=file]").set_input_files(desi_coadds[0])
    expect(p.get_by_text("k-NN redshift").first).to_be_visible(timeout=60_000)
    p.screenshot(path=str(screenshot_dir / "galaxies.png"), full_page=True)
    p.locator(".gx-grid").first.scroll_into_view_if_needed()
    p.screenshot(path=str(screenshot_dir / "galaxies_neighbours.png"))
    assert not p.console_errors, p.console_errors
