"""``scifm astroclip ...`` run in-process."""

from __future__ import annotations

import json

from scifm.cli import main


def test_search_prints_neighbours(trained, capsys):
    from scifm.astroclip.catalog import Catalog

    path = trained["dir"] / "catalog.h5"
    tid = int(Catalog.load(path).targetid[2])
    assert main(["astroclip", "search", "--catalog", str(path), "--id", str(tid),
                 "--mode", "s2i", "--k", "3", "--csv"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("rank,score,targetid") and len(lines) == 4


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
