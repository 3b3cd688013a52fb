"""benchmarks/astroclip_runs.py: where the evidence runs stand, read from their folders."""

from __future__ import annotations

import json

import pytest

from benchmarks import astroclip_runs as runs
from scifm.core.checkpoint import TRAINER_JSON
from scifm.core.train import CHECKPOINT_DIR


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
