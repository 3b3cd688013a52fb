"""Every AstroCLIP command trains and evaluates on a file in the released AstroCLIP layout."""

from __future__ import annotations

import json

import numpy as np

from scifm.astroclip.data import toy_survey
from scifm.astroclip.pipeline import source_split
from scifm.cli import main
from scifm.survey.released import write_released


def test_tiny_preset_trains_on_the_released_layout(tmp_path, capsys):
    g = toy_survey(60, seed=3)
    path = tmp_path / "astroclip_desi.h5"
    # Exactly the released layout: groups "0".."9", (N, 7781, 1) spectra, float64 redshifts.
    write_released(str(path), g.images, g.spectra[..., None], g.redshift, g.targetid)
    train, test = source_split(path, 60)
    assert len(train) == 40 and len(test) == 20  # int(0.8 * 6) = 4 of each group of 6 train
    common = ["--survey", str(path), "--preset", "tiny", "--quiet", "--batch-size", "8"]
    runs = {stage: tmp_path / stage for stage in ("img", "spec", "clip")}
    assert main(["astroclip", "pretrain-image", *common, "--steps", "2",
                 "--out", str(runs["img"])]) == 0  # fmt: skip
    assert main(["astroclip", "pretrain-spectrum", *common, "--steps", "2",
                 "--out", str(runs["spec"])]) == 0  # fmt: skip
    assert main(["astroclip", "align", *common, "--steps", "3", "--image", str(runs["img"]),
                 "--spectrum", str(runs["spec"]), "--out", str(runs["clip"])]) == 0  # fmt: skip
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["final"]
    assert final["step"] == 3 and np.isfinite(final["loss"])
    assert main(["astroclip", "evaluate", "--model", str(runs["clip"]), "--survey", str(path),
                 "--quiet", "--props", "redshift"]) == 0  # fmt: skip
    res = json.loads(capsys.readouterr().out)
    assert np.isfinite(res["knn_r2_spectrum"]["redshift"])
