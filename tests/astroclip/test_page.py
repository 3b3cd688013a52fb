"""The galaxy explorer (scifm.dashboards.galaxies): driven through its Viewer class, then
as the "galaxies" page through a real browser."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
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
    assert "Could not read junk.fits" in out[0].object and "tmp" not in out[0].object


def test_page_opens_on_the_default_galaxy(page):
    from scifm.dashboards.galaxies import DEFAULT_ROW

    assert page.row == DEFAULT_ROW and len(page.table.value) == page.k
    assert len(page._csv().getvalue().splitlines()) == page.k + 1


def test_click_selects_the_nearest_point_in_its_own_modality(page):
    x, y = page.explorer.catalog.umap["spectrum"][9]
    page.select_xy(float(x), float(y))
    assert page.row == 9 and page.mode == "spectrum → spectrum"
    page.select_xy(None, None)  # a tap outside the data: nothing happens
    assert page.row == 9
    page.mode = "spectrum → image"  # cross-modal stays cross-modal
    x, y = page.explorer.catalog.umap["image"][3]
    page.select_xy(float(x), float(y))
    assert page.row == 3 and page.mode == "image → spectrum"


def test_redshift_verdict_says_outside_instead_of_a_number():
    from scifm.astroclip.realspec import redshift_verdict

    v = redshift_verdict(0.31, 1.2, (0.02, 0.58))
    assert not v.ok and v.z is None and "outside the catalogue's redshift range" in v.text
    assert "0.31" not in v.text
    assert redshift_verdict(0.3, float("nan"), (0.02, 0.58)).ok
    assert not redshift_verdict(0.575, float("nan"), (0.02, 0.58)).ok  # at the edge


def test_line_labels_never_share_a_level_when_they_would_overlap():
    from scifm.dashboards.galaxy_plots import label_levels

    waves = [6562.8, 6583.5, 6724.0, 8000.0]
    levels = label_levels(waves, ["Hα", "[NII]", "[SII]", "x"], (3600.0, 9824.0))
    assert levels[:3] == [0, 1, 2] and levels[3] == 0


def test_real_desi_upload_gives_knn_redshift(page, desi_coadds):
    out = page.handle_upload(desi_coadds[0].read_bytes(), desi_coadds[0].name)
    assert "k-NN redshift" in out[0].object


def test_missing_catalog_is_reported_on_the_page(tmp_path):
    from scifm.dashboards import GalaxyExplorer

    view = GalaxyExplorer.from_assets(tmp_path)
    assert view.explorer is None and "could not be loaded" in view.message.object
    view.__panel__()


def test_upload_errors_name_the_users_file_in_one_sentence(desi_coadds, tmp_path):
    from astropy.io import fits

    from scifm.astroclip.realspec import read_uploaded_spectra

    raw = desi_coadds[0].read_bytes()
    fits.PrimaryHDU(np.zeros((8, 8), np.float32)).writeto(tmp_path / "image.fits")
    cases = {"corrupt.fits": raw[: len(raw) // 3], "table.fits": b"wavelength,flux\n4000,1\n",
             "image.fits": (tmp_path / "image.fits").read_bytes()}  # fmt: skip
    for name, data in cases.items():
        with pytest.raises(ValueError) as err:
            read_uploaded_spectra(data, name)
        msg = str(err.value)
        assert msg.startswith(f"Could not read {name}: ") and "expected" in msg, msg
        assert "tmp" not in msg and ". " not in msg and msg.endswith("."), msg
