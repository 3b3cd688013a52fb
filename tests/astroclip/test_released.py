"""Every AstroCLIP command trains, embeds and evaluates on a file in the released layout.

The file is written here by hand (not with ``released.write_released``) in exactly the
layout of the released AstroCLIP HDF5: groups "0".."9", each with ``images`` (N, 152, 152, 3),
``spectra`` (N, 7781, 1) or (N, 7781), ``redshifts`` and ``targetids``, no attributes, no
inverse variance and no physical properties, in float16 or float32.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from scifm.astroclip.pipeline import source_split
from scifm.astroclip.splits import recorded_split
from scifm.cli import main
from scifm.survey.datasets import SurveyDataset

PER_GROUP = 5  # int(0.8 * 5) = 4 train and 1 test galaxy per group


def _write_release(path, dtype: str, column_spectra: bool) -> np.ndarray:
    """Random data of the released shapes in ``dtype``; returns the redshifts written."""
    rng = np.random.default_rng(0 if dtype == "float32" else 1)
    zs = []
    with h5py.File(path, "w") as f:
        for g in range(10):
            grp = f.create_group(str(g))
            z = rng.uniform(0.01, 0.5, PER_GROUP)
            spec_shape = (PER_GROUP, 7781, 1) if column_spectra else (PER_GROUP, 7781)
            grp.create_dataset("images", data=rng.normal(0, 0.02, (PER_GROUP, 152, 152, 3))
                               .astype(dtype))  # fmt: skip
            grp.create_dataset("spectra", data=rng.normal(1, 0.3, spec_shape).astype(dtype))
            grp.create_dataset("redshifts", data=z.astype(dtype))
            grp.create_dataset("targetids", data=39_627_000_000_000_000 + g * 100 + np.arange(5))
            zs.append(z.astype(dtype))
    return np.concatenate(zs).astype(np.float32)


@pytest.mark.parametrize(("dtype", "column_spectra"), [("float32", True), ("float16", False)])
def test_every_command_on_the_released_layout(tmp_path, capsys, dtype, column_spectra):
    path = tmp_path / f"astroclip_desi_{dtype}.h5"
    z = _write_release(path, dtype, column_spectra)
    n = 10 * PER_GROUP

    assert main(["survey", "info", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n"] == n and info["layout"] == "astroclip-release"
    assert info["split"]["train"] == 40 and info["split"]["test"] == 10
    assert "no physical properties" in info["note"]

    # The dataset class reads the grouped file lazily, row by row across groups.
    ds = SurveyDataset(path, crop=144)
    item = ds[PER_GROUP + 2]  # second group, third row
    assert item["image"].shape == (3, 144, 144) and item["image"].dtype.is_floating_point
    assert item["spectrum"].shape == (7781,) and float(item["ivar"].min()) == 1.0
    assert float(item["redshift"]) == pytest.approx(float(z[PER_GROUP + 2]), rel=1e-3)
    assert int(item["targetid"]) == 39_627_000_000_000_100 + 2
    assert item["props"].shape == (4,) and bool(item["props"].isnan().all())  # absent
    assert ds.missing_props == ("log_mstar", "log_ssfr", "log_z", "age")

    # Training uses the file's own 80/20 split inside each group.
    train, test = source_split(path, n)
    assert len(train) == 40 and list(test) == [PER_GROUP * g + 4 for g in range(10)]
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
    rec = recorded_split(runs["clip"] / "checkpoint")  # the split travels with the model
    assert rec["n"] == n and rec["test_targetids"] == [
        39_627_000_000_000_000 + g * 100 + 4 for g in range(10)
    ]

    out = tmp_path / "emb.h5"
    assert main(["astroclip", "embed", "--model", str(runs["clip"]), "--survey", str(path),
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    with h5py.File(out, "r") as f:
        assert f["image"].shape[0] == n and np.isfinite(f["spectrum"][:]).all()
        assert f["targetid"][PER_GROUP] == 39_627_000_000_000_100

    # Default --props asks for the physical properties too: the report says they are absent.
    assert main(["astroclip", "evaluate", "--model", str(runs["clip"]), "--survey", str(path),
                 "--quiet"]) == 0  # fmt: skip
    res = json.loads(capsys.readouterr().out)
    assert set(res["knn_r2_spectrum"]) == {"redshift"} and np.isfinite(
        res["knn_r2_spectrum"]["redshift"]
    )
    assert res["absent_props"] == ["log_mstar", "log_ssfr", "log_z", "age"]
    assert "not in the survey file" in res["note"]
    assert res["split"]["n_test"] == 10 and "recorded with the model" in res["split"]["how"]
    if dtype == "float16":
        return
    # The benchmark report too: the model's split, measured photometry, absent properties.
    from benchmarks import astroclip as bench

    assert bench.main(["--survey", str(path), "--model", str(runs["clip"] / "checkpoint"),
                       "--work", "", "--quick", "--cnn-batch", "8",
                       "--out-dir", str(tmp_path / "results")]) == 0  # fmt: skip
    report = json.loads((tmp_path / "results" / "astroclip.json").read_text())
    assert report["n_test"] == 10 and report["split"].startswith("recorded with the model")
    assert report["targets"] == ["redshift"] and report["absent_targets"] == [
        "log_mstar", "log_ssfr", "log_z", "age"
    ]  # fmt: skip
    assert np.isfinite(report["zero_shot_knn_r2"]["photometry MLP"]["redshift"])
    assert "photometry MLP, true magnitudes (oracle)" not in report["zero_shot_knn_r2"]
    md = (tmp_path / "results" / "astroclip.md").read_text()
    assert "Not in the survey file, so not evaluated: log_mstar, log_ssfr, log_z, age." in md


def test_evaluate_leaves_out_galaxies_without_a_spectrum(trained, tmp_path, capsys):
    """All-NaN spectra were embedded as all-zero inputs, scored, and gave a cross-modal
    recall@10 of 1.0 (every such galaxy's embedding is the same vector)."""
    path = tmp_path / "release_nan.h5"
    _write_release(path, "float32", column_spectra=False)
    with h5py.File(path, "r+") as f:
        for g in ("0", "3"):
            f[g]["spectra"][...] = np.nan  # 10 of 50 galaxies: 8 train, 2 test
    model = str(trained["dir"] / "model")
    assert main(["astroclip", "evaluate", "--model", model, "--survey", str(path), "--quiet",
                 "--props", "redshift"]) == 0  # fmt: skip
    out = capsys.readouterr()
    res = json.loads(out.out)
    assert res["split"]["no_data"] == 10 and res["split"]["n_test"] == 8
    assert res["split"]["n_train"] == 32
    assert "10 of 50 galaxies of the split have no image or no spectrum" in out.err
    with h5py.File(path, "r+") as f:
        for g in map(str, range(10)):
            f[g]["spectra"][...] = np.nan
    assert main(["astroclip", "evaluate", "--model", model, "--survey", str(path), "--quiet",
                 "--props", "redshift"]) == 1  # fmt: skip
    assert "0 training and 0 test galaxies left, too few to evaluate" in capsys.readouterr().err
