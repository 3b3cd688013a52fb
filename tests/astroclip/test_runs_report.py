"""benchmarks/astroclip_runs.py: where the evidence runs stand, read from their folders."""

from __future__ import annotations

import json

import pytest

from benchmarks import astroclip_runs as runs
from scifm.core.checkpoint import TRAINER_JSON
from scifm.core.resume import CHECKPOINT_DIR


def _run(folder, step, curve):
    (folder / CHECKPOINT_DIR).mkdir(parents=True)
    (folder / CHECKPOINT_DIR / TRAINER_JSON).write_text(json.dumps({"step": step}))
    (folder / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in curve))


def test_report_reads_curves_up_to_the_checkpoint_and_judges_the_plateau(tmp_path):
    spec, img = tmp_path / "spec", tmp_path / "img"
    # a loss still falling by more than 1 %; a record past the checkpoint (a killed chunk)
    _run(spec, 1200, [{"step": s, "val_loss": 1.0 / s, "knn_r2_redshift": 0.5 + s / 1e4}
                      for s in (400, 800, 1200, 1600)])  # fmt: skip
    # a flat R^2 over 15 evaluations (3 in the last 20 %): plateau
    _run(img, 1500, [{"step": s, "knn_r2_redshift": 0.6} for s in range(100, 1501, 100)])
    # the same number of evaluations, still gaining more than 1 % at the end
    grow = tmp_path / "grow"
    _run(grow, 1500, [{"step": s, "knn_r2_redshift": s / 3000} for s in range(100, 1501, 100)])
    out = tmp_path / "results"
    runs.main(["--run", f"spec={spec}", "--run", f"img={img}", "--run", f"none={tmp_path / 'x'}",
               "--run", f"grow={grow}", "--out", str(out)])  # fmt: skip
    rows = {r["run"]: r for r in json.loads((out / "astroclip_runs.json").read_text())["runs"]}
    assert rows["spec"]["stage"] == "spectrum" and rows["spec"]["steps"] == 1200
    assert rows["spec"]["evaluations"] == 3  # one of them in the last 20 %: no verdict
    assert rows["spec"]["status"] == (
        "no verdict: 1 evaluation(s) in the last 20% of the steps, the rule needs 3"
    )  # fmt: skip
    assert rows["grow"]["status"] == "still improving"
    assert rows["spec"]["last"] == pytest.approx(0.62) and rows["spec"]["paper"] == 0.99
    assert rows["img"]["stage"] == "image" and rows["img"]["status"] == "plateau"
    assert rows["none"]["status"] == "not started"
    md = (out / "astroclip_runs.md").read_text()
    assert "| spec | no verdict: 1 evaluation(s)" in md and (out / "astroclip_runs.png").exists()


def test_a_curve_of_no_known_stage_is_refused():
    with pytest.raises(ValueError, match="not an AstroCLIP stage"):
        runs.stage_of([{"step": 1, "accuracy": 0.5}])


def test_a_bad_run_argument_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        runs.main(["--run", "no-equals-sign", "--out", str(tmp_path)])


def test_a_lost_folder_keeps_the_curve_the_replaced_report_measured(tmp_path):
    """A run folder gone with a machine: the row of the report being replaced stands in
    (marked as such) when it read the same folder; a run it never saw stays not started."""
    img = tmp_path / "img"
    _run(img, 1500, [{"step": s, "knn_r2_redshift": 0.6} for s in range(100, 1501, 100)])
    out = tmp_path / "results"
    args = ["--run", f"img={img}", "--out", str(out)]
    runs.main(args)
    first = json.loads((out / "astroclip_runs.json").read_text())
    for f in (img / "eval.jsonl", img / CHECKPOINT_DIR / TRAINER_JSON):
        f.unlink()
    (img / CHECKPOINT_DIR).rmdir()
    img.rmdir()
    runs.main([*args, "--run", f"new={tmp_path / 'new'}"])
    rows = {r["run"]: r for r in json.loads((out / "astroclip_runs.json").read_text())["runs"]}
    assert rows["img"]["curve"] == first["runs"][0]["curve"] and rows["img"]["steps"] == 1500
    assert rows["img"]["status"].startswith("plateau (folder gone; as in the report of 20")
    assert rows["img"]["from_report"].endswith(first["run"]["date_utc"])
    assert rows["new"]["status"] == "not started"
    runs.main(args)  # a stand-in carried again keeps its first mark
    again = json.loads((out / "astroclip_runs.json").read_text())["runs"][0]
    assert (
        again["status"] == rows["img"]["status"]
        and again["from_report"] == rows["img"]["from_report"]
    )
    runs.main([*args, "--previous", "none"])  # off: the lost run reads as not started
    rows = json.loads((out / "astroclip_runs.json").read_text())["runs"]
    assert rows[0]["status"] == "not started"
    (out / "astroclip_runs.json").write_text("{}")
    with pytest.raises(ValueError, match="not an astroclip_runs report"):
        runs.main(args)


def test_an_alignment_with_a_recorded_schedule_gets_no_verdict_before_half_of_it(tmp_path):
    """As the run watches itself (train.align_plateau): the 6,000-step run's early dip is no
    plateau; a run older than the schedule record keeps the plain rule."""
    curve = [{"step": s, "recall@10": 0.5 if s < 1600 else 0.45} for s in range(200, 2201, 200)]
    new, old = tmp_path / "new", tmp_path / "old"
    _run(old, 2200, curve)
    _run(new, 2200, curve)
    state = {"step": 2200, "schedule": {"steps": 6000, "lr": 5e-4, "warmup_steps": 300,
                                        "min_lr_ratio": 0.1}}  # fmt: skip
    (new / CHECKPOINT_DIR / TRAINER_JSON).write_text(json.dumps(state))
    out = tmp_path / "results"
    runs.main(["--run", f"new={new}", "--run", f"old={old}", "--out", str(out)])
    rows = {r["run"]: r for r in json.loads((out / "astroclip_runs.json").read_text())["runs"]}
    assert rows["new"]["status"] == "no verdict before step 3000"
    assert rows["new"]["schedule"]["steps"] == 6000 and rows["old"]["schedule"] is None
    assert rows["old"]["status"] == "plateau"
