"""The tiny end-to-end pipeline: training histories, catalog, explorer, resumable embedding."""

from __future__ import annotations

import copy
import json

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from scifm.astroclip.catalog import Catalog, replicate
from scifm.astroclip.data import prepare_images, prepare_spectra
from scifm.astroclip.embed import embed_arrays, embed_file, embedding_summary, read_embeddings
from scifm.astroclip.explore import MODES, Explorer, Neighbours, knn_redshift
from scifm.astroclip.pipeline import _toy_slice


def test_stages_train_and_alignment_loss_falls(trained):
    h = trained["history"]
    assert set(h) == {"image", "spectrum", "align"}
    assert h["align"][-1]["loss"] < h["align"][0]["loss"]
    assert h["spectrum"][-1]["loss"] < h["spectrum"][0]["loss"]


def test_catalog_round_trip_and_contents(trained):
    cat = Catalog.load(trained["dir"] / "catalog.h5")
    n = len(trained["data"])
    assert len(cat) == n and len(cat.thumbnails) == n
    assert cat.thumbnails[0][:2] == b"\xff\xd8"  # JPEG magic
    for m in ("image", "spectrum"):
        assert cat.umap[m].shape == (n, 2)
        np.testing.assert_allclose(np.linalg.norm(cat.embeddings[m], axis=1), 1, atol=2e-3)
    assert cat.props["is_test"].sum() == len(trained["test_idx"])
    big = replicate(cat, 3 * n, seed=1)
    assert len(big) == 3 * n and big.source.max() < n


def test_a_served_catalog_may_keep_a_seeded_subset_of_the_galaxies(trained):
    from scifm.astroclip.assets import catalog_rows

    data, n = trained["data"], len(trained["data"])
    assert np.array_equal(catalog_rows(n, None), np.arange(n))
    rows = catalog_rows(n, 50, seed=3)
    assert len(rows) == 50 and np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, catalog_rows(n, 50, seed=3))
    part = data.take(rows)
    assert np.array_equal(part.targetid, data.targetid[rows])
    assert part.thumbnails[7] == data.thumbnails[rows[7]]
    assert np.array_equal(part.images[5].numpy(), data.images[rows[5]].numpy())
    assert all(np.array_equal(part.props[k], v[rows]) for k, v in data.props.items())
    with pytest.raises(ValueError, match="--catalog-rows 0"):
        catalog_rows(n, 0)
    with pytest.raises(ValueError, match="rows"):
        data.take(np.array([n]))


def test_a_rerun_manifest_takes_a_finished_stage_from_its_log(trained, tmp_path):
    from scifm.astroclip.assets import last_logged
    from scifm.astroclip.pipeline import STAGE_DIRS

    for stage, hist in trained["history"].items():  # what a fresh run's history ended with
        assert last_logged(trained["dir"] / "work" / STAGE_DIRS[stage])["step"] == hist[-1]["step"]
    assert last_logged(tmp_path) is None


def test_explorer_modes_filters_and_errors(trained):
    ex = Explorer(Catalog.load(trained["dir"] / "catalog.h5"))
    for mode in MODES:
        res = ex.neighbours(3, mode, k=5)
        assert len(res.table) == 5 and 3 not in res.table["row"].to_list()
        assert res.table["score"].is_monotonic_decreasing
    zlo, zhi = 0.1, 0.3
    res = ex.neighbours(3, "image → image", 8, {"redshift": (zlo, zhi)})
    assert res.table["redshift"].between(zlo, zhi).all()
    assert ex.row_of(str(ex.catalog.targetid[7])) == 7
    with pytest.raises(ValueError, match="not an integer"):
        ex.row_of("abc")
    with pytest.raises(ValueError, match="not in this catalog"):
        ex.row_of("12")
    with pytest.raises(ValueError, match="mode"):
        ex.neighbours(0, "image → sound")
    x, y = ex.catalog.umap["spectrum"][11]
    assert ex.nearest_row(float(x), float(y), "spectrum") == 11
    neigh = ex.neighbours(3, "spectrum → spectrum", 8)
    z, score = neigh.table["redshift"].to_numpy(), neigh.table["score"].to_numpy()
    assert knn_redshift(neigh) == pytest.approx(np.average(z, weights=np.clip(score, 1e-6, None)))
    table = pd.DataFrame({"score": [1.0, 3.0, -0.5], "redshift": [0.1, 0.5, 0.9]})
    known = Neighbours(table=table, seconds=0.0)
    assert knn_redshift(known) == pytest.approx((0.1 + 3 * 0.5 + 1e-6 * 0.9) / (4 + 1e-6))


def _crash_on_second_call(calls: list[int]):
    """A survey fetcher of toy galaxies that records each start and fails on its 2nd call."""

    def fetch(a, b):
        calls.append(a)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return _toy_slice(192, a, b)

    return fetch


def test_embed_file_resumes_after_a_crash(trained, tmp_path):
    model, n = trained["model"], 40
    calls = []
    flaky = _crash_on_second_call(calls)

    out = tmp_path / "emb.h5"
    with pytest.raises(RuntimeError):
        embed_file(model, flaky, n, out, chunk=16, progress=False)
    with h5py.File(out) as f:
        assert f.attrs["n_done"] == 16
    embed_file(model, flaky, n, out, chunk=16, progress=False)
    assert calls == [0, 16, 16, 32]
    emb = read_embeddings(out)
    ref = embed_arrays(model, trained["data"].images[:n], trained["data"].spectra[:n])
    np.testing.assert_allclose(emb["spectrum"], ref["spectrum"], atol=1e-5)
    # a finished file of another source or model is refused, a user's own file never touched
    before = out.read_bytes()
    with pytest.raises(ValueError, match=r"another run .*'source': \('', 'other.h5'\)"):
        embed_file(model, flaky, n, out, chunk=16, progress=False, source="other.h5")
    other = copy.deepcopy(model)
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    with pytest.raises(ValueError, match="another run .*'model'"):
        embed_file(other, flaky, n, out, chunk=16, progress=False)
    assert out.read_bytes() == before
    mine = tmp_path / "mine.h5"
    with h5py.File(mine, "w") as f:
        f["x"] = np.arange(3)
    kept = mine.read_bytes()
    with pytest.raises(ValueError, match="mine.h5: exists and is not a scifm embedding file"):
        embed_file(model, flaky, n, mine, chunk=16, progress=False)
    assert mine.read_bytes() == kept


def test_a_galaxy_without_data_gets_a_flag_and_no_embedding(trained, tmp_path):
    def blanks(a, b):
        g = _toy_slice(192, a, b)
        g.images[1] = np.nan  # off the imaging footprint
        g.spectra[2] = 0.0  # a failed fibre
        return g

    out = embed_file(trained["model"], blanks, 8, tmp_path / "e.h5", chunk=8, progress=False)
    emb, clean = read_embeddings(out), _toy_slice(192, 0, 8)
    assert emb["image_ok"].tolist() == [True, False] + [True] * 6
    assert emb["spectrum_ok"].tolist() == [True, True, False] + [True] * 5
    assert np.isnan(emb["image"][1]).all() and np.isnan(emb["spectrum"][2]).all()
    assert np.isfinite(np.delete(emb["image"], 1, axis=0)).all()
    cfg = trained["model"].config
    ref = embed_arrays(trained["model"], prepare_images(clean.images, cfg.image),
                       prepare_spectra(clean.spectra, cfg.spectrum))  # fmt: skip
    np.testing.assert_allclose(emb["spectrum"][3:], ref["spectrum"][3:], atol=1e-5)
    assert embedding_summary(out) == {"n_done": 8, "no_image": 1, "no_spectrum": 1}


def test_flags_follow_what_the_model_sees_and_old_files_resume(trained, tmp_path):
    model = trained["model"]
    crop = model.config.image.crop

    def border_only(a, b):  # light outside the centre crop only: the model sees zeros
        g = _toy_slice(192, a, b)
        h = g.images.shape[1]
        lo = (h - crop) // 2
        g.images[0, lo : lo + crop, lo : lo + crop] = 0.0
        return g

    out = embed_file(model, border_only, 4, tmp_path / "b.h5", chunk=4, progress=False)
    assert read_embeddings(out)["image_ok"].tolist() == [False, True, True, True]

    # a file begun before the flags existed resumes; its done rows count as checked
    crash_once = _crash_on_second_call([])
    old = tmp_path / "old.h5"
    with pytest.raises(RuntimeError):
        embed_file(model, crash_once, 8, old, chunk=4, progress=False)
    with h5py.File(old, "a") as f:
        del f["image_ok"], f["spectrum_ok"]
    embed_file(model, crash_once, 8, old, chunk=4, progress=False)
    emb = read_embeddings(old)
    assert emb["image_ok"].all() and emb["spectrum_ok"].all()
    assert embedding_summary(old) == {"n_done": 8, "no_image": 0, "no_spectrum": 0}


def test_assets_package_a_trained_model_on_the_split_it_recorded(trained, tmp_path):
    """`--from-model` ships a model trained elsewhere as it is: its weights, its preset, and
    the catalog's held-out flags from the split the model recorded; a survey whose galaxies
    are not the model's is refused."""
    from scifm.astroclip.assets import main as assets_main
    from scifm.astroclip.pipeline import default_split
    from scifm.astroclip.splits import split_record
    from scifm.core import load_model, save_checkpoint

    data, model = trained["data"], trained["model"]
    train_idx, test_idx = default_split(len(data), seed=5)  # not the survey's default split
    split = split_record(data.targetid, train_idx, test_idx, source="toy:192", how="test")
    ckpt = tmp_path / "run" / "checkpoint"
    save_checkpoint(ckpt, model, model.config, extra={"split": split})
    out = tmp_path / "out"
    argv = ["--survey", "toy:192", "--from-model", str(ckpt), "--out", str(out),
            "--work", str(tmp_path / "work"), "--catalog-rows", "120"]  # fmt: skip
    assert assets_main(argv) == 0
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["from_model"] == str(ckpt) and manifest["preset"] == "tiny"
    assert manifest["split"]["n_test"] == len(test_idx) and "plan" not in manifest
    _, shipped = load_model(out / "model")
    for (k, a), b in zip(model.state_dict().items(), shipped.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    cat = Catalog.load(out / "catalog.h5")
    assert len(cat) == 120
    is_test = np.isin(cat.targetid, data.targetid[test_idx])
    assert np.array_equal(cat.props["is_test"] > 0.5, is_test)
    # the uploads' redshift index: the catalog's galaxies and every training galaxy of the
    # split (no other test galaxy), PCA fitted on the training ones only, made with the
    # shipped SpecFormer (a query with it is accepted)
    from scifm.astroclip.redshift_index import RedshiftIndex

    index = RedshiftIndex.load(out / "redshift_index.h5")
    want = set(cat.targetid) | set(data.targetid[train_idx])
    assert set(index.targetid) == want and index.n_fit == len(train_idx)
    assert not set(index.targetid) & (set(data.targetid[test_idx]) - set(cat.targetid))
    index.check_model(shipped)
    assert manifest["redshift_index"]["n"] == len(want) > 120
    assert "redshift_index.h5" in manifest["files"]
    other = tmp_path / "other" / "checkpoint"  # a model trained on other galaxies
    save_checkpoint(other, model, model.config,
                    extra={"split": {**split, "test_targetids": [1, 2, 3]}})  # fmt: skip
    with pytest.raises(ValueError, match="do not match the split"):
        assets_main(["--survey", "toy:192", "--from-model", str(other), "--out",
                     str(tmp_path / "out2"), "--work", str(tmp_path / "work")])  # fmt: skip
    assert not (tmp_path / "out2" / "model").exists()
