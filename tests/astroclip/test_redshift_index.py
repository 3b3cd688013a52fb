"""The catalog's redshift index (scifm.astroclip.redshift_index) and the galaxies page's
upload through it."""

from __future__ import annotations

import copy

import h5py
import numpy as np
import pytest
import torch

from scifm.astroclip.explore import Explorer
from scifm.astroclip.pipeline import survey_fetcher
from scifm.astroclip.redshift_index import RedshiftIndex

N = 192  # the ``trained`` fixture's toy survey


@pytest.fixture(scope="module")
def raw():
    fetch, _ = survey_fetcher(f"toy:{N}")
    return fetch(0, N)  # raw (N, 7781) spectra, as a survey file stores them


@pytest.fixture(scope="module")
def index(trained, raw):
    fit = np.ones(N, bool)
    fit[trained["test_idx"]] = False
    return RedshiftIndex.build(trained["model"], raw.spectra, raw.targetid,
                               raw.redshift, fit, n_components=8)  # fmt: skip


def test_index_holds_unit_vectors_and_finds_a_galaxy_by_its_own_spectrum(trained, raw, index):
    assert index.vectors.shape == (N, 8) and index.n_fit == N - len(trained["test_idx"])
    np.testing.assert_allclose(np.linalg.norm(index.vectors, axis=1), 1, atol=1e-5)
    q = index.query(trained["model"], raw.spectra[[5, 17]])
    for row, v in zip((5, 17), q):
        scores, ids = index.search(v, k=3)
        assert ids[0] == row and scores[0] == pytest.approx(1.0, abs=1e-4)
    allowed = np.ones(N, bool)
    allowed[5] = False  # a masked galaxy is never returned (the benchmark's held-out queries)
    assert 5 not in index.search(q[0], k=10, allowed=allowed)[1]


def test_project_of_pooled_tokens_is_the_query(trained, raw, index):
    """The reference-set benchmark pools the tokens once and projects them: the same vectors."""
    from scifm.astroclip.data import prepare_spectra
    from scifm.astroclip.embed import spectrum_poolings

    model = trained["model"]
    x = prepare_spectra(raw.spectra[:6], model.config.spectrum)
    pooled = spectrum_poolings(model.spectrum_encoder, x, [index.pooling])[index.pooling]
    np.testing.assert_allclose(index.project(pooled), index.query(model, raw.spectra[:6]),
                               atol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match=r"pooled tokens of shape \(6, 3\)"):
        index.project(pooled[:, :3])


def test_pca_is_fitted_on_the_training_galaxies_only(trained, raw, index):
    spectra = raw.spectra.copy()
    test = trained["test_idx"]
    spectra[test] = spectra[test][::-1] * 3.0  # other test spectra, same training ones
    fit = np.ones(N, bool)
    fit[test] = False
    other = RedshiftIndex.build(trained["model"], spectra, raw.targetid, raw.redshift,
                                fit, n_components=8)  # fmt: skip
    np.testing.assert_allclose(other.mean, index.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.abs(other.components), np.abs(index.components), atol=1e-4)
    with pytest.raises(ValueError, match="2 training galaxies to fit 8 principal components"):
        RedshiftIndex.build(trained["model"], raw.spectra, raw.targetid,
                            raw.redshift, np.arange(N) < 2, n_components=8)  # fmt: skip


def test_save_load_round_trip_and_bad_files_name_the_file(index, tmp_path):
    path = index.save(tmp_path / "z.h5")
    back = RedshiftIndex.load(path)
    np.testing.assert_array_equal(back.targetid, index.targetid)
    np.testing.assert_allclose(back.vectors, index.vectors, atol=2e-3)  # float16 on disk
    assert (back.pooling, back.encoder, back.n_fit) == (index.pooling, index.encoder, index.n_fit)
    text = tmp_path / "text.h5"
    text.write_text("not HDF5")
    with pytest.raises(ValueError, match=rf"redshift index {text}: not a readable HDF5"):
        RedshiftIndex.load(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "scifm-astroclip-catalog"
    with pytest.raises(ValueError, match=rf"redshift index {other}: attribute format="):
        RedshiftIndex.load(other)
    nan = tmp_path / "nan.h5"
    index.save(nan)
    with h5py.File(nan, "r+") as f:
        f["vectors"][0, 0] = np.nan
    with pytest.raises(ValueError, match=rf"redshift index {nan}: non-finite values in vectors"):
        RedshiftIndex.load(nan)
    with pytest.raises(FileNotFoundError, match="not found"):
        RedshiftIndex.load(tmp_path / "none.h5")


def test_a_model_with_other_specformer_weights_is_refused(trained, raw, index):
    other = copy.deepcopy(trained["model"])
    with torch.no_grad():
        next(other.spectrum_encoder.parameters()).add_(0.01)
    with pytest.raises(ValueError, match="made with SpecFormer weights .* but the model's are"):
        index.query(other, raw.spectra[:1])


def test_rows_of_maps_target_ids_and_refuses_unknown_ones(trained):
    from scifm.astroclip.catalog import Catalog

    ex = Explorer(Catalog.load(trained["dir"] / "catalog.h5"))
    ids = ex.catalog.targetid[[7, 3, 100]]
    np.testing.assert_array_equal(ex.rows_of(ids), [7, 3, 100])
    with pytest.raises(ValueError, match=r"target ids \[42\] are not in this catalog"):
        ex.rows_of(np.array([ids[0], 42]))


def test_upload_searches_the_index_and_falls_back_when_it_does_not_fit(
    trained, index, tmp_path, desi_coadds
):
    from scifm.astroclip.realspec import read_uploaded_spectra
    from scifm.dashboards import GalaxyExplorer

    path = index.save(tmp_path / "z.h5")
    view = GalaxyExplorer(trained["dir"] / "catalog.h5", model=trained["model"],
                          redshift_index=path)  # fmt: skip
    assert view.redshift_index is not None and not view.message.visible
    upload = desi_coadds[0]  # real DESI coadds (specutils' wheel)
    answer = view.answer_upload(upload.read_bytes(), upload.name)
    assert answer.objects
    grids = [p.object for p in answer.panes if "gx-grid" in str(p.object)]
    assert len(grids) == len(answer.objects) and all("SpecFormer tokens" in g for g in grids)
    assert all(f"reads all {len(index)} indexed" in g for g in grids)
    # the answer's k-NN redshift is the index neighbours' similarity-weighted mean
    spectra = read_uploaded_spectra(upload.read_bytes(), upload.name)
    first = list(spectra.targetid).index(answer.objects[0].targetid)
    q = index.query(trained["model"], spectra.flux[first : first + 1])[0]
    scores, ids = index.search(q, view.k)
    w = np.clip(scores, 1e-6, None)
    want = float(np.sum(w * index.redshift[ids]) / w.sum())
    assert answer.objects[0].knn_z == pytest.approx(want, abs=1e-4)  # the table rounds to 1e-4

    # an index made with other weights: the upload says so and uses the aligned embedding
    other = copy.deepcopy(trained["model"])
    with torch.no_grad():
        next(other.spectrum_encoder.parameters()).add_(0.01)
    view = GalaxyExplorer(trained["dir"] / "catalog.h5", model=other, redshift_index=index)
    answer = view.answer_upload(upload.read_bytes(), upload.name)
    assert "made with SpecFormer weights" in answer.panes[0].object
    assert all("Nearest simulated" in str(p.object) and "SpecFormer tokens" not in
               str(p.object) for p in answer.panes if "gx-grid" in str(p.object))  # fmt: skip

    # an index of galaxies the catalog does not hold is not used, and the page says why
    stray = RedshiftIndex(**{**index.__dict__, "targetid": index.targetid + 10**9})
    view = GalaxyExplorer(trained["dir"] / "catalog.h5", model=trained["model"],
                          redshift_index=stray)  # fmt: skip
    assert view.redshift_index is None and "redshift index is not used" in view.message.object


def test_knn_redshifts_never_take_an_excluded_galaxy(trained, raw, index):
    from scifm.astroclip.redshift_index import knn_redshifts

    model = trained["model"]
    assert knn_redshifts(index, model, raw.spectra[[5]], k=1)[0] == pytest.approx(
        raw.redshift[5], abs=1e-6
    )  # a catalog galaxy finds itself ...
    z = knn_redshifts(index, model, raw.spectra[[5]], k=1, exclude=raw.targetid[[5]])
    q = index.query(model, raw.spectra[[5]])[0]
    _, ids = index.search(q, 1, index.targetid != raw.targetid[5])
    assert ids[0] != 5 and z[0] == pytest.approx(index.redshift[ids[0]])  # ... unless excluded
    with pytest.raises(ValueError, match="k = 0"):
        knn_redshifts(index, model, raw.spectra[:1], k=0)
    with pytest.raises(ValueError, match="every indexed galaxy is excluded"):
        knn_redshifts(index, model, raw.spectra[:1], exclude=raw.targetid)


def _masked_copy(coadd, out, arms: tuple[str, ...], upto: int):
    """``coadd`` with pixels [0, upto) of every fibre masked in ``arms``."""
    from astropy.io import fits

    with fits.open(coadd) as h:
        for arm in arms:
            h[f"{arm}_MASK"].data[:, :upto] = 1
        h.writeto(out)
    return out


def test_cli_knn_redshift_is_the_pages_and_withheld_outside_the_range(
    trained, index, tmp_path, desi_coadds, capsys
):
    import json
    import shutil

    from scifm.astroclip.realspec import NOT_PLACED
    from scifm.cli import main
    from scifm.dashboards import GalaxyExplorer
    from scifm.survey.redshift import OUTSIDE_NOTE

    folder = tmp_path / "assets"
    shutil.copytree(trained["dir"] / "model", folder / "model")
    shutil.copy(trained["dir"] / "catalog.h5", folder / "catalog.h5")
    index.save(folder / "redshift_index.h5")
    view = GalaxyExplorer(folder / "catalog.h5", model=trained["model"],
                          redshift_index=folder / "redshift_index.h5")  # fmt: skip
    elg = next(p for p in desi_coadds if "5-169" in p.name)
    files = [
        *desi_coadds,  # real DESI coadds (specutils' wheel); then with masked pixels:
        _masked_copy(elg, tmp_path / "coadd-masked.fits", ("B",), 1500),  # interpolated
        _masked_copy(elg, tmp_path / "coadd-bad.fits", ("B", "R", "Z"), 2300),
    ]  # < 30 %
    wide = tmp_path / "wide"  # a catalogue range no fit leaves: every number is compared
    shutil.copytree(folder, wide, ignore=shutil.ignore_patterns("catalog.h5"))
    with h5py.File(wide / "catalog.h5", "w") as f:
        f["redshift"] = np.array([0.0, 2.0])
    notes = {}
    for coadd in files:
        out = tmp_path / f"{coadd.stem}.json"
        assert main(["astroclip", "redshift", str(coadd), "--assets", str(wide),
                     "--json", str(out)]) == 0  # fmt: skip
        text = capsys.readouterr().out
        rows = json.loads(out.read_text())["rows"]
        page = {o.targetid: o.knn_z
                for o in view.answer_upload(coadd.read_bytes(), coadd.name).objects}  # fmt: skip
        for r in rows:
            assert f"k-NN: {r['knn_note']}" in text and not r["note"]
            notes[coadd.name, r["targetid"]] = r["knn_note"].split(":")[0]
            if r["knn_note"] == NOT_PLACED:  # the page does not place it either
                assert r["knn_z"] is None and r["targetid"] not in page
                continue
            assert r["knn_z"] == pytest.approx(page[r["targetid"]], abs=1e-9)  # the page's
            if r["z"] is not None:
                d = abs(r["knn_z"] - r["z"]) / (1 + r["z"])
                assert r["knn_note"].startswith("agrees" if d <= 0.01 else "disagrees")
    good = 39633300968442591  # the ELG file's target with data
    assert notes["coadd-masked.fits", good] in ("agrees", "disagrees")  # interpolated, placed
    assert notes["coadd-bad.fits", good] == NOT_PLACED  # under 30 % good pixels
    # the catalogue's own range: the dark-time LRGs (z > 0.8) get no number, and it says why
    sv3 = next(p for p in desi_coadds if "sv3-dark" in p.name)
    out = tmp_path / "sv3.json"
    assert (
        main(["astroclip", "redshift", str(sv3), "--assets", str(folder), "--json", str(out)]) == 0
    )
    capsys.readouterr()
    for r in json.loads(out.read_text())["rows"]:
        assert r["note"] == r["knn_note"] == OUTSIDE_NOTE and r["knn_z"] is None

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["astroclip", "redshift", str(elg), "--assets", str(empty)]) == 1
    assert f"catalog {empty / 'catalog.h5'}: does not exist" in capsys.readouterr().err
    shutil.copy(trained["dir"] / "catalog.h5", empty / "catalog.h5")
    assert main(["astroclip", "redshift", str(elg), "--assets", str(empty)]) == 1
    assert f"asset folder {empty}: no AstroCLIP model folder" in capsys.readouterr().err


def test_index_command_refuses_to_pair_an_index_with_another_model(trained, tmp_path, capsys):
    import shutil

    from scifm.astroclip import redshift_index
    from scifm.core import save_checkpoint

    folder = tmp_path / "assets"
    shutil.copytree(trained["dir"] / "model", folder / "model")
    (folder / "redshift_index.h5").write_bytes(b"the index already there")
    other = copy.deepcopy(trained["model"])
    with torch.no_grad():
        next(other.spectrum_encoder.parameters()).add_(0.01)
    save_checkpoint(tmp_path / "other", other, other.config)
    code = redshift_index.main(["--survey", str(tmp_path / "none.h5"), "--model",
                                str(tmp_path / "other"), "--out",
                                str(folder / "redshift_index.h5")])  # fmt: skip
    assert code == 2 and "has other SpecFormer weights" in capsys.readouterr().err
    assert (folder / "redshift_index.h5").read_bytes() == b"the index already there"
    assert sorted(p.name for p in folder.iterdir()) == ["model", "redshift_index.h5"]


def test_shipped_knn_redshift_is_withheld_beyond_the_catalogue(desi_coadds, tmp_path, capsys):
    """The dark-time LRGs of specutils' coadd lie at z 0.84 and 0.98, beyond the shipped
    catalogue (z <= 0.6): the CLI gives no k-NN number for them, and says why."""
    import json

    from scifm.cli import main
    from scifm.survey.redshift import OUTSIDE_NOTE

    coadd = next(p for p in desi_coadds if "sv3-dark" in p.name)
    out = tmp_path / "z.json"
    assert main(["astroclip", "redshift", str(coadd), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert [r["z"] > 0.8 for r in rows] == [True, True]
    assert all(r["knn_z"] is None and r["knn_note"] == OUTSIDE_NOTE for r in rows)
    assert text.count(f"k-NN: {OUTSIDE_NOTE}") == 2


def _toy_survey_file(raw, path):
    """The toy survey's galaxies as a survey HDF5 file (``read_spectra`` reads it back)."""
    from scifm.survey import SurveyData, write_survey
    from scifm.survey.readers.grid import DESI_WAVE

    images = np.asarray(raw.images, np.float32)
    images = images.transpose(0, 2, 3, 1) if images.shape[1] == 3 else images
    spectra = np.asarray(raw.spectra, np.float32)
    data = SurveyData(images=images, spectra=spectra, ivar=np.ones_like(spectra),
                      redshift=np.asarray(raw.redshift, np.float32),
                      targetid=np.asarray(raw.targetid, np.int64), props={}, params={},
                      wavelength=np.asarray(DESI_WAVE))  # fmt: skip
    return write_survey(path, data)


def test_index_of_the_training_split_holds_the_catalog_and_no_other_test_galaxy(
    trained, raw, tmp_path
):
    """``--training-split``: the catalog's galaxies (its test ones too: the page shows them)
    and every training galaxy of the split recorded with the model; no other test galaxy;
    the PCA fitted on the training galaxies only. The page's neighbour grid shows catalog
    galaxies only, and an index lacking a catalog galaxy is refused."""
    from scifm.astroclip.catalog import Catalog
    from scifm.astroclip.pipeline import make_catalog
    from scifm.astroclip.redshift_index import build_for_catalog, main
    from scifm.astroclip.splits import split_record
    from scifm.core import save_checkpoint

    model, data = trained["model"], trained["data"]
    train_idx, test_idx = trained["train_idx"], trained["test_idx"]
    survey = _toy_survey_file(raw, tmp_path / "survey.h5")
    ckpt = tmp_path / "model"
    split = split_record(data.targetid, train_idx, test_idx, source="toy:192", how="test")
    save_checkpoint(ckpt, model, model.config, extra={"split": split})
    shown = np.sort(np.concatenate([train_idx[:60], test_idx[:10]]))  # a catalog of 70
    cat_path = tmp_path / "catalog.h5"
    make_catalog(model, data.take(shown), test_idx=np.flatnonzero(np.isin(shown, test_idx))).save(
        cat_path
    )
    cat = Catalog.load(cat_path)

    only = build_for_catalog(survey, model, cat_path, n_components=8)
    assert set(only.targetid) == set(cat.targetid) and only.n_fit == 60
    full = build_for_catalog(survey, model, cat_path, split_of=ckpt, n_components=8)
    tid = data.targetid
    want = set(tid[train_idx]) | set(tid[test_idx[:10]])
    assert set(full.targetid) == want and full.n_fit == len(train_idx)
    assert not set(full.targetid) & set(tid[test_idx[10:]])
    np.testing.assert_allclose(full.redshift, raw.redshift[np.isin(raw.targetid, list(want))],
                               atol=1e-6)  # fmt: skip

    ex = Explorer(cat)
    shown_mask = ex.indexed_in_catalog(full)
    assert shown_mask.sum() == 70 and len(full) > 70
    for row in range(0, N, 37):  # any query: the neighbours shown are catalog galaxies
        q = full.query(model, raw.spectra[[row]])[0]
        res = ex.search_redshift_index(full, q, k=5)
        assert len(res.table) == 5 and set(res.table["targetid"]) <= set(cat.targetid)
    with pytest.raises(ValueError, match="lacks 1 of this catalog's 70 galaxies"):
        keep = full.targetid != cat.targetid[3]
        Explorer(cat).indexed_in_catalog(
            RedshiftIndex(**{**full.__dict__, "targetid": full.targetid[keep],
                             "redshift": full.redshift[keep], "vectors": full.vectors[keep]})
        )  # fmt: skip

    out = tmp_path / "idx.h5"
    assert main(["--survey", str(survey), "--model", str(ckpt), "--catalog", str(cat_path),
                 "--out", str(out), "--components", "8", "--training-split"]) == 0  # fmt: skip
    assert set(RedshiftIndex.load(out).targetid) == want
