"""benchmarks/astroclip_reference.py: the zero-shot k-NN against the size of its reference set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import astroclip_reference as bench
from scifm.astroclip.embed import embed_arrays
from scifm.astroclip.evaluate import knn_r2
from scifm.astroclip.pipeline import survey_fetcher
from scifm.astroclip.redshift_index import RedshiftIndex

N = 192  # the ``trained`` fixture's toy survey


@pytest.fixture(scope="module")
def setup(trained, tmp_path_factory):
    """The tiny model, a redshift index made with it, and the toy survey embedded by `embed`."""
    tmp = tmp_path_factory.mktemp("reference")
    raw = survey_fetcher(f"toy:{N}")[0](0, N)
    fit = np.ones(N, bool)
    fit[trained["test_idx"]] = False
    index_path = RedshiftIndex.build(trained["model"], raw.spectra, raw.targetid, raw.redshift,
                                     fit, n_components=8).save(tmp / "index.h5")  # fmt: skip
    model = str(trained["dir"] / "model")
    base = tmp / "base.npz"
    assert bench.main(["embed", "--survey", f"toy:{N}", "--out", str(base), "--model", model,
                       "--index", str(index_path), "--chunk", "80"]) == 0  # fmt: skip
    return {"tmp": tmp, "raw": raw, "model": model, "index": index_path, "base": base}


def test_embed_writes_the_models_embeddings_and_the_pages_index_vectors(trained, setup):
    z = dict(np.load(setup["base"]))
    raw, data = setup["raw"], trained["data"]
    np.testing.assert_array_equal(z["targetid"], raw.targetid)
    np.testing.assert_array_equal(z["y_redshift"], raw.redshift)
    e = embed_arrays(trained["model"], data.images, data.spectra)
    np.testing.assert_allclose(z["spectrum"], e["spectrum"], atol=1e-5)
    np.testing.assert_allclose(z["image"], e["image"], atol=1e-5)
    index = RedshiftIndex.load(setup["index"])
    np.testing.assert_allclose(z["index"], index.query(trained["model"], raw.spectra), atol=1e-5)
    assert z["image_ok"].all() and z["spectrum_ok"].all()


def _extra(setup, rows: np.ndarray, name: str) -> str:
    """An 'other survey': the base file's galaxies at ``rows`` under new target ids."""
    z = dict(np.load(setup["base"]))
    out = {k: (v[rows] if v.ndim else v) for k, v in z.items()}
    out["targetid"] = out["targetid"] + 10**12
    path = setup["tmp"] / name
    np.savez(path, **out)
    return str(path)


def test_report_grows_the_reference_and_starts_from_the_models_own_split(trained, setup):
    tr, te = trained["train_idx"], trained["test_idx"]
    # the extra galaxies are copies of the test galaxies: with them among its neighbours the
    # k-NN finds each test galaxy's twin, so R^2 must rise to about 1
    extra = _extra(setup, te, "copies.npz")
    out = setup["tmp"] / "res"
    assert bench.main(["report", "--survey", f"toy:{N}", "--base", str(setup["base"]),
                       "--extra", extra, "--template-n", "0", "--model", setup["model"],
                       "--index", str(setup["index"]), "--out-dir", str(out)]) == 0  # fmt: skip
    r = json.loads((out / "astroclip_reference.json").read_text())
    assert r["sizes"] == [len(tr), len(tr) + len(te)]
    z = dict(np.load(setup["base"]))
    y = {k: z[f"y_{k}"] for k in bench.TARGETS if f"y_{k}" in z}
    direct = knn_r2(z["spectrum"][tr], z["spectrum"][te], {k: v[tr] for k, v in y.items()},
                    {k: v[te] for k, v in y.items()}, k=64)  # fmt: skip
    first, grown = r["knn_r2"]["AstroCLIP spectrum"]
    assert first["redshift"] == pytest.approx(direct["redshift"])  # astroclip.md's figure
    assert first["n_reference"] == len(tr) and grown["n_reference"] == len(tr) + len(te)
    assert grown["redshift"] > 0.99 > first["redshift"]
    md = (out / "astroclip_reference.md").read_text()
    assert f"N = {len(tr):,}" in md and "AstroCLIP spectrum" in md


def test_report_refuses_extra_galaxies_that_are_the_base_surveys(trained, setup):
    z = dict(np.load(setup["base"]))
    same = setup["tmp"] / "same.npz"
    np.savez(same, **z)
    with pytest.raises(SystemExit, match="share target ids with the base survey"):
        bench.main(["report", "--survey", f"toy:{N}", "--base", str(setup["base"]),
                    "--extra", str(same), "--template-n", "0", "--model", setup["model"],
                    "--index", str(setup["index"]), "--out-dir", str(setup["tmp"])])  # fmt: skip


def test_page_agreement_uses_the_extra_neighbours_and_never_a_query(trained, setup):
    tr, te = trained["train_idx"], trained["test_idx"]
    z = dict(np.load(setup["base"]))
    index = RedshiftIndex.load(setup["index"])
    ids, zt = z["targetid"][te], z["y_redshift"][te]
    fits = {"targetid": [int(t) for t in ids], "z": [float(v) for v in zt],
            "ok": [True] * len(te)}  # fmt: skip
    z_range = (float(zt.min()), float(zt.max()))
    ref = {k: v[tr] for k, v in z.items() if v.ndim}
    alone = bench.page_agreement(index, ref, z, fits, z_range)
    assert alone["n_neighbours"] == len(tr) and alone["n_inside"] == len(te)
    # the queries themselves among the reference rows are never taken as neighbours
    with_self = {k: v for k, v in z.items() if v.ndim}
    assert bench.page_agreement(index, with_self, z, fits, z_range)["n_neighbours"] == len(tr)
    twins = dict(np.load(_extra(setup, te, "twins.npz")))
    grown = {k: np.concatenate([ref[k], twins[k]]) for k in ref}
    got = bench.page_agreement(index, grown, z, fits, z_range)
    assert got["n_neighbours"] == len(tr) + len(te)
    assert got["median_abs_dz_1pz_inside"] < alone["median_abs_dz_1pz_inside"]
    nearest = bench.page_agreement(index, grown, z, fits, z_range, k=1)  # each query's twin
    assert nearest["frac_agree_inside"] == 1.0 and nearest["median_abs_dz_1pz_inside"] < 1e-6
    assert "n_disagree_template_wrong" not in nearest  # no truth given, none claimed


def test_page_agreement_tells_a_failed_template_fit_from_a_knn_miss(trained, setup):
    """With the simulation's true redshift, a disagreement is the template's when the template
    is off the truth, the k-NN's when the k-NN is and the template is not."""
    tr, te = trained["train_idx"], trained["test_idx"]
    z = dict(np.load(setup["base"]))
    index = RedshiftIndex.load(setup["index"])
    ref = {k: np.concatenate([v[tr], v[te]]) for k, v in z.items() if v.ndim}
    ref["targetid"] = ref["targetid"].copy()
    ref["targetid"][len(tr) :] += 10**12  # the twins of the queries, under other ids
    ids, truth = z["targetid"][te], z["y_redshift"][te]
    base = bench.page_agreement(index, ref, z, {"targetid": list(ids), "z": list(truth),
                                "ok": [True] * len(te), "z_true": list(truth)},
                                (0.0, 10.0), k=1)  # fmt: skip
    assert base["frac_agree_inside"] == 1.0 and base["frac_knn_within_tol_of_truth_inside"] == 1
    assert base["n_disagree_template_wrong"] == base["n_disagree_knn_wrong"] == 0
    wrong = truth.copy()
    wrong[:3] += 0.5  # three failed template fits; the k-NN (each query's twin) is right
    got = bench.page_agreement(index, ref, z, {"targetid": list(ids), "z": list(wrong),
                               "ok": [True] * len(te), "z_true": list(truth)},
                               (0.0, 10.0), k=1)  # fmt: skip
    assert got["n_disagree_inside"] == 3 and got["n_disagree_template_wrong"] == 3
    assert got["n_disagree_knn_wrong"] == 0 and got["frac_knn_within_tol_of_truth_inside"] == 1
