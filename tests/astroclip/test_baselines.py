"""Honest baselines (issue 14, item 4): measured photometry, the model's split, no default path."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import astroclip as bench
from scifm.astroclip.baselines import measured_photometry
from scifm.astroclip.pipeline import default_split, prepare, survey_fetcher
from scifm.astroclip.splits import model_split, recorded_split, split_record
from scifm.core import save_checkpoint


@pytest.fixture(scope="module")
def toy(tiny_cfg):
    fetch, _ = survey_fetcher("toy:160")
    return prepare(fetch, 160, tiny_cfg, chunk=80, progress=False), fetch(0, 160)


def test_photometry_mlp_gets_measured_magnitudes_not_the_truth(toy):
    data, raw = toy
    mags, errs = measured_photometry(raw.images)
    np.testing.assert_allclose(data.photometry, np.concatenate([mags, errs], 1))
    assert np.isfinite(data.photometry).all() and (errs > 0).all()
    # Plant an oracle in the true-magnitude columns: a target the images know nothing of.
    # A baseline that read those columns would score R^2 ~ 1; the measured-photometry MLP
    # cannot, so it must read the cutouts' photometry.
    secret = np.random.default_rng(5).normal(size=len(data))
    data.props.update(mag_g=secret, mag_r=2 * secret, mag_z=-secret)
    tr, te = default_split(len(data))
    y = {"secret": secret}
    rows = bench.photometry_baselines(data, y, tr, te)
    assert rows[bench.ORACLE]["secret"] > 0.9  # the oracle row is labelled as such
    assert rows["photometry MLP"]["secret"] < 0.3
    for k in ("mag_g", "mag_r", "mag_z"):
        del data.props[k]
    assert set(bench.photometry_baselines(data, y, tr, te)) == {"photometry MLP"}


def test_baselines_read_the_split_recorded_with_the_model(trained, tiny_cfg, tmp_path):
    data = trained["data"]
    tid = data.targetid
    test = np.arange(len(tid) - 40, len(tid))  # unlike default_split: the last 40 rows
    rec = split_record(tid, np.arange(len(tid) - 40), test, how="test: last 40", source="toy")
    save_checkpoint(tmp_path / "model", trained["model"], tiny_cfg, extra={"split": rec})
    tr, te, got = model_split(tmp_path / "model", tid)
    np.testing.assert_array_equal(te, test)
    np.testing.assert_array_equal(tr, np.arange(len(tid) - 40))
    assert got["how"] == "test: last 40"
    # The shipped demo model predates the record: the catalog beside it marks its test rows.
    tr, te, got = model_split(trained["dir"] / "model", tid)
    np.testing.assert_array_equal(te, trained["test_idx"])
    assert "is_test" in got["how"]
    # Rows that are not the model's galaxies are refused, not silently re-split.
    with pytest.raises(ValueError, match="do not match the split recorded"):
        model_split(tmp_path / "model", tid + 10_000_000)
    save_checkpoint(tmp_path / "bare" / "model", trained["model"], tiny_cfg)
    with pytest.raises(ValueError, match="records no train/test split"):
        recorded_split(tmp_path / "bare" / "model")


def test_benchmark_has_no_default_survey(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--quick"])
    assert e.value.code == 2 and "--survey" in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r"--survey .*missing\.h5: no such file"):
        bench.main(["--survey", str(tmp_path / "missing.h5"), "--work", ""])


def test_the_supervised_cnn_checkpoints_in_work_and_a_finished_one_is_reused(toy, tiny_cfg,
                                                                           tmp_path):  # fmt: skip
    """A long CNN baseline survives a rerun: the same inputs load the finished run (same
    figures, no new steps); another split trains its own."""
    data, _ = toy
    tr, te = default_split(len(data))
    y = {"redshift": data.props["redshift"]}
    first = bench.supervised_baselines(data, y, tr, te, tiny_cfg, 6, 16, work=str(tmp_path))
    runs = sorted(tmp_path.glob("cnn_6x16_*"))
    assert len(runs) == 1 and (runs[0] / "checkpoint" / "model.safetensors").is_file()
    log = (runs[0] / "metrics.jsonl").read_text()
    again = bench.supervised_baselines(data, y, tr, te, tiny_cfg, 6, 16, work=str(tmp_path))
    assert again["supervised image CNN"] == first["supervised image CNN"]
    assert (runs[0] / "metrics.jsonl").read_text() == log  # loaded, not retrained
    tr2, te2 = default_split(len(data), seed=3)
    bench.supervised_baselines(data, y, tr2, te2, tiny_cfg, 6, 16, work=str(tmp_path))
    assert len(list(tmp_path.glob("cnn_6x16_*"))) == 2


def test_an_image_encoder_trained_in_alignment_is_not_reported_as_the_ssl_one(tiny_cfg):
    """Its pooled tokens are no longer the self-supervised encoder's: another row name, and
    no paper figure (the paper's 0.63 is the SSL encoder's)."""
    assert bench.image_alone_label(tiny_cfg) == "image SSL alone"
    label = bench.image_alone_label(tiny_cfg.replace(image_finetune_blocks=2))
    assert "SSL" not in label and "top 2 block(s)" in label and label not in bench.PAPER
