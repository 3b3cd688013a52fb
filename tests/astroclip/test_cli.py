"""``scifm astroclip ...`` run in-process."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from scifm.cli import main


def test_search_prints_neighbours(trained, capsys):
    from scifm.astroclip.catalog import Catalog

    path = trained["dir"] / "catalog.h5"
    tid = int(Catalog.load(path).targetid[2])
    assert main(["astroclip", "search", "--catalog", str(path), "--id", str(tid),
                 "--mode", "s2i", "--k", "3", "--csv"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("rank,score,targetid") and len(lines) == 4


def test_a_catalog_with_repeated_or_fractional_ids_is_refused(trained, tmp_path, capsys):
    import shutil

    import h5py

    for name, ids in (("dup", lambda t: np.r_[t[1], t[1:]]), ("float", lambda t: t + 0.5)):
        path = tmp_path / f"{name}.h5"
        shutil.copy(trained["dir"] / "catalog.h5", path)
        with h5py.File(path, "r+") as f:
            tid = f["targetid"][:]
            del f["targetid"]
            f["targetid"] = ids(tid)
        assert main(["astroclip", "search", "--catalog", str(path), "--id", str(tid[1])]) == 1
        err = capsys.readouterr().err
        assert f"catalog {path}: targetid" in err
        assert ("repeats [" in err) if name == "dup" else ("expected integers" in err)


def test_pretrain_spectrum_then_evaluate(trained, tmp_path, capsys):
    args = ["--survey", "toy:64", "--preset", "tiny", "--quiet"]
    assert main(["astroclip", "pretrain-spectrum", *args, "--steps", "3", "--batch-size", "16",
                 "--out", str(tmp_path / "spec")]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["final"]["step"] == 3
    assert main(["astroclip", "evaluate", "--model", str(trained["dir"] / "model"),
                 "--survey", "toy:64", "--quiet", "--props", "redshift"]) == 0  # fmt: skip
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"knn_r2_image", "knn_r2_spectrum", "image_to_spectrum", "split"}


def test_unknown_mode_is_a_clear_error(trained, capsys):
    rc = main(["astroclip", "search", "--catalog", str(trained["dir"] / "catalog.h5"),
               "--id", "1000001", "--mode", "x2y"])  # fmt: skip
    assert rc == 1 and "scifm: error: mode 'x2y'" in capsys.readouterr().err


def _edited_catalog(trained, tmp_path, edit):
    import shutil

    import h5py

    path = tmp_path / "cat.h5"
    shutil.copy(trained["dir"] / "catalog.h5", path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def test_a_catalog_with_disagreeing_shapes_is_refused_by_name(trained, tmp_path, capsys):
    """Before, a (N, 3) image embedding reached faiss' ``assert d == self.d`` as a traceback,
    and a 10-row targetid gave 'index 5171 is out of bounds'."""

    def narrow(f):
        del f["embedding/image"]
        f["embedding/image"] = np.zeros((len(f["targetid"]), 3), np.float16)

    def short(f):
        tid = f["targetid"][:10]
        del f["targetid"]
        f["targetid"] = tid

    cases = ((narrow, "embeddings have shapes"),
             (short, r"dataset source has shape \(\d+,\); expected \(10,\)"))  # fmt: skip
    for edit, match in cases:
        path = _edited_catalog(trained, tmp_path, edit)
        rc = main(["astroclip", "search", "--catalog", str(path), "--id", "1", "--mode", "i2s"])
        err = capsys.readouterr().err
        assert rc == 1 and f"catalog {path}: " in err and re.search(match, err), err


def test_galaxies_without_an_embedding_are_never_neighbours(trained, tmp_path, capsys):
    """``astroclip embed`` writes NaN for a galaxy with no spectrum; a catalog holding such rows
    printed an empty table (all-NaN) or put them among the neighbours."""
    from scifm.astroclip.catalog import Catalog
    from scifm.astroclip.explore import Explorer

    gone = [2, 5, 9]

    def blank(f):
        emb = f["embedding/spectrum"][:]
        emb[gone] = np.nan
        f["embedding/spectrum"][...] = emb

    path = _edited_catalog(trained, tmp_path, blank)
    cat = Catalog.load(path)
    ex = Explorer(cat)
    n = len(cat)
    for mode in ("image → spectrum", "spectrum → spectrum"):
        res = ex.neighbours(0, mode, k=n)
        assert set(res.table["row"]).isdisjoint(gone) and len(res.table) == n - 1 - len(gone)
        assert np.isfinite(res.table["score"]).all()
    res = ex.neighbours(0, "spectrum → spectrum", k=n, ranges={"redshift": (-1.0, 9.0)})
    assert set(res.table["row"]).isdisjoint(gone) and len(res.table) == n - 1 - len(gone)
    res = ex.search_embedding(cat.embeddings["spectrum"][0], "spectrum", k=n)
    assert set(res.table["row"]).isdisjoint(gone) and len(res.table) == n - len(gone)
    rc = main(["astroclip", "search", "--catalog", str(path), "--id", str(cat.targetid[5]),
               "--mode", "s2i"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and f"target id {cat.targetid[5]}: no spectrum embedding" in err, err
    with pytest.raises(ValueError, match="expected .* finite values"):
        ex.search_embedding(np.full(cat.embeddings["image"].shape[1], np.nan), "image")
