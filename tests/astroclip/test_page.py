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


def _fit(z: float, flag: str = "ok", dchi2: float = 200.0):
    from scifm.survey.redshift import RedshiftFit

    return RedshiftFit(z=z, z_err=1e-4, flag=flag, zwarn=0, deltachi2=dchi2, chi2=1.0, npixels=9)


def test_template_verdict_says_outside_agrees_or_disagrees_by_how_much():
    """Issue 14 item 5: inside the catalogue's range the k-NN z must agree within 0.01 (1 + z)."""
    from scifm.astroclip.realspec import template_verdict

    zr = (0.02, 0.58)
    v = template_verdict(_fit(0.9), 0.31, zr)
    assert not v.ok and "outside the catalogue's redshift range" in v.text and "0.31" not in v.text
    v = template_verdict(_fit(0.3), 0.305, zr)  # |dz| = 0.005 <= 0.013
    assert v.ok and "template redshift 0.3000 ± 1.0e-04 (flag ok, Δχ² = 200.0)" in v.text
    assert "k-NN redshift 0.3050 agrees (|Δz| = 0.0050" in v.text
    v = template_verdict(_fit(0.3), 0.35, zr)
    assert not v.ok and "disagrees by |Δz| = 0.0500" in v.text and "0.0130" in v.text
    v = template_verdict(_fit(0.3, "SMALL_DELTA_CHI2,DELTACHI2<40", 3.0), 0.301, zr)
    assert not v.ok and "flag SMALL_DELTA_CHI2,DELTACHI2<40" in v.text and "agrees" in v.text
    v = template_verdict(_fit(float("nan"), "NODATA"), 0.3, zr)
    assert not v.ok and v.z is None and "no template redshift (flag NODATA)" in v.text


def _texts(answer) -> tuple[list[str], list[str]]:
    return [o.verdict.object for o in answer.objects], [o.template.object for o in answer.objects]


def test_upload_shows_knn_at_once_then_the_template_fit(page, desi_coadds):
    """The two LRGs of the sv3 coadd: the k-NN answer comes first with "template fit
    running…"; the fit (redrock, our templates) puts them at z ~ 0.84 and 0.98, flag ok,
    beyond the toy catalogue's z <= 0.6, so the k-NN number is withdrawn."""
    import holoviews as hv

    from scifm.dashboards.galaxy_upload import RUNNING, fit_templates

    lrg = next(p for p in desi_coadds if "sv3-dark" in p.name)
    answer = page.answer_upload(lrg.read_bytes(), lrg.name)
    knn, tpl = _texts(answer)
    assert len(answer.objects) == 2 and all("k-NN redshift 0." in t for t in knn), knn
    assert all(t.endswith(RUNNING) for t in tpl) and answer.panes[1] is answer.objects[0].template
    fits = fit_templates(answer)
    assert page.show_templates(answer, fits)
    knn, tpl = _texts(answer)
    for t, z in zip(tpl, ("0.8", "0.9")):
        assert f"template redshift {z}" in t and "(flag ok, Δχ² = " in t, t
        assert "outside the catalogue's redshift range" in t, t
    for t, o in zip(knn, answer.objects):
        assert "outside the catalogue's redshift range: the template redshift is 0." in t, t
        assert "k-NN redshift 0." not in t and o.verdict.alert_type == "warning"
        title = hv.Store.lookup_options("bokeh", o.plot.object, "plot").kwargs["title"]
        assert title.startswith(f"{lrg.name} object {o.targetid} (lines at the template redshift")
    assert all(o.template.alert_type == "warning" for o in answer.objects)


def _run_async(make_coro) -> None:
    """``asyncio.run(make_coro())`` in a thread of its own: playwright's sync API (the browser
    tests, same process) keeps an event loop running in this one."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(make_coro())).result()


def _upload_event(path):
    from types import SimpleNamespace

    return SimpleNamespace(new={path.name: path.read_bytes()})


def test_a_fit_that_ends_after_a_newer_upload_is_dropped(page, desi_coadds, monkeypatch):
    """Upload A's fit is still running when upload B is answered and fitted: A's result
    must not land in B's answer (each fit carries its upload's number)."""
    import asyncio
    import threading

    from scifm.dashboards import galaxies
    from scifm.dashboards.galaxy_upload import RUNNING

    a, b = desi_coadds[0], next(p for p in desi_coadds if "sv3-dark" in p.name)
    started, release, fitted = threading.Event(), threading.Event(), []

    def fake_fit(answer):
        if answer.filename == a.name:
            started.set()
            release.wait(30)
        fitted.append(answer.upload)
        return [_fit(0.1 if answer.filename == a.name else 0.2)] * len(answer.objects)

    shown = {}  # upload -> (whether its result was shown, its answer)

    def spy(answer, fits):
        shown[answer.upload] = (type(page).show_templates(page, answer, fits), answer)
        return shown[answer.upload][0]

    monkeypatch.setattr(galaxies, "fit_templates", fake_fit)
    monkeypatch.setattr(page, "show_templates", spy)

    async def scenario() -> None:
        first = asyncio.create_task(page._on_upload(_upload_event(a)))
        while not started.is_set():
            await asyncio.sleep(0.05)
        await page._on_upload(_upload_event(b))  # answered and fitted while A's fit runs
        release.set()
        await first

    n0 = page.uploads
    _run_async(scenario)
    assert page.uploads == n0 + 2 and sorted(fitted) == [n0 + 1, n0 + 2]
    heading, *panes = page.upload_out.objects
    assert heading.object.startswith(f"### Uploaded spectrum {n0 + 2}: {b.name}")
    lines = [p.object for p in panes if type(p).__name__ == "Alert" and "template" in p.object]
    assert len(lines) == 2 and all("template redshift 0.2000" in t for t in lines), lines
    assert not any("0.1000" in t for t in lines)
    shown_a, answer_a = shown[n0 + 1]
    assert not shown_a and shown[n0 + 2][0]
    assert all(o.template.object.endswith(RUNNING) for o in answer_a.objects)  # untouched


def test_a_failed_fit_is_one_line_and_the_knn_answer_stays(page, desi_coadds, monkeypatch):

    import scifm.survey.redshift as redshift

    def broken(*args, **kwargs):
        raise RuntimeError("template file unreadable\n  Traceback (most recent call last): ...")

    monkeypatch.setattr(redshift, "fit_redshifts", broken)
    _run_async(lambda: page._on_upload(_upload_event(desi_coadds[0])))
    alerts = [p for p in page.upload_out.objects if type(p).__name__ == "Alert"]
    knn, tpl = alerts
    assert "k-NN redshift" in knn.object and knn.alert_type in ("success", "warning")
    assert tpl.alert_type == "danger" and "\n" not in tpl.object
    assert tpl.object.endswith(": the template fit failed (template file unreadable).")
