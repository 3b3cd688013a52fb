"""benchmarks/xval.py restore: a report's stored cells back as run folders, and what follows."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from benchmarks import xval as bench
from scifm.xval import TaskConfig
from scifm.xval.converge import ConvergeConfig, converge, task_study
from scifm.xval.train import model_config_for

METRICS = ("r2", "r2_valid", "mse", "exact", "invalid_rate", "outlier_rate")


def _point(step: int, loss: float) -> dict:
    return {"step": step, "tokens": 640 * step, "train_seconds": step / 50, "train_loss": loss,
            "val_loss": loss, **{f"test.{k}": 1 - loss / 10 for k in METRICS}}  # fmt: skip


def _cell(root, name: str, losses: list[float], reason: str | None) -> None:
    (root / name).mkdir(parents=True)
    curve = [_point(100 * (i + 1), v) for i, v in enumerate(losses)]
    (root / name / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in curve))
    if reason:  # what cmd_run's converge writes once a cell is done (the fields report reads)
        status = {"done": True, "reason": reason, "step": curve[-1]["step"],
                  "tokens_per_sample": 10.0}  # fmt: skip
        (root / name / "status.json").write_text(json.dumps(status))


@pytest.fixture
def stored(tmp_path):
    """results/xval.json of four fabricated cells (one unfinished), with the side sections."""
    runs, res = tmp_path / "runs", tmp_path / "res"
    _cell(runs, "ood_xval_mlm_s0", [3.0, 2.0, 1.5, 1.49, 1.49], "plateau")
    _cell(runs, "ood_xval_mlm_s1", [3.1, 2.1, 1.6], None)  # killed at step 300
    _cell(runs, "ood_p10_mlm_s0", [4.0, 3.0, 2.5, 2.0], "budget")
    _cell(runs, "ood_p10_mlm_s1", [4.1, 3.2, 2.4, 2.41, 2.42], "plateau")
    res.mkdir()
    side = {"xval_lengths": {"command": "lengths", "n": 3,
                             "tokens_per_text": {"ood": dict.fromkeys(bench.SCHEMES, 5.0)}},
            "xval_deadzone": {"command": "deadzone", "near": 0.1, "rows": {}},
            "xval_memory": {"command": "memory", "rows": []}}  # fmt: skip
    for name, content in side.items():
        (res / f"{name}.json").write_text(json.dumps(content))
    assert bench.main(["report", "--root", str(runs), "--out", str(res / "xval")]) == 0
    shutil.rmtree(runs)  # the runs are lost; the report is what survives
    return res


def test_restore_then_report_gives_back_every_cell(stored, tmp_path) -> None:
    before = json.loads((stored / "xval.json").read_text())
    assert before["cells"]["ood_xval_mlm_s1"] == "unfinished (step 300)"
    runs = tmp_path / "restored"
    assert bench.main(["restore", "--from", str(stored / "xval.json"), "--root", str(runs)]) == 0
    status = json.loads((runs / "ood_xval_mlm_s1" / "status.json").read_text())
    assert status["done"] is False and "restored" in status
    assert bench.main(["report", "--root", str(runs), "--out", str(stored / "xval")]) == 0
    after = json.loads((stored / "xval.json").read_text())
    for key in ("cells", "groups", "findings", "curves", "lengths", "dead_zone", "memory"):
        assert after[key] == before[key], key
    md = (stored / "xval.md").read_text()
    assert "| ood_xval_mlm_s1 | unfinished (step 300) |" in md
    assert "| ood_p10_mlm_s0 | budget |" in md
    assert "## Sequence length" in md and "## The scaler's dead zone" in md


def test_restore_keeps_an_existing_cell(stored, tmp_path) -> None:
    runs = tmp_path / "restored"
    (runs / "ood_p10_mlm_s0").mkdir(parents=True)
    (runs / "ood_p10_mlm_s0" / "curve.jsonl").write_text("mine\n")
    done = bench.restore_cells(json.loads((stored / "xval.json").read_text()), runs)
    assert done["ood_p10_mlm_s0"] == "kept (exists)"
    assert (runs / "ood_p10_mlm_s0" / "curve.jsonl").read_text() == "mine\n"
    assert done["ood_xval_mlm_s1"].endswith("reruns from step 0")


def test_a_restored_unfinished_cell_trains_again_from_step_0(stored, tmp_path) -> None:
    """No checkpoint came back: the run starts over (and says so) instead of going on from the
    stored curve's step 300 with fresh weights; its curve is that of a run from scratch."""
    torch.set_num_threads(1)
    runs = tmp_path / "restored"
    bench.restore_cells(json.loads((stored / "xval.json").read_text()), runs)
    study = task_study(TaskConfig(task="ood", n_train=256, n_test=16), 1, n_val=16)
    cfg = model_config_for(study.spec, "xval", "tiny")
    cc = ConvergeConfig.preset("tiny", max_steps=20, min_steps=1000)
    said: list[str] = []
    status = converge(study, cfg, cc, runs / "ood_xval_mlm_s1", seed=1, log=said.append)
    assert "there is no checkpoint: restarting from step 0" in said[0]
    fresh = converge(study, cfg, cc, tmp_path / "fresh", seed=1)
    assert status["step"] == fresh["step"] == 20 and "restored" not in status
    curves = [
        [json.loads(x) for x in (d / "curve.jsonl").read_text().splitlines()]
        for d in (runs / "ood_xval_mlm_s1", tmp_path / "fresh")
    ]
    assert [r["step"] for r in curves[0]] == [10, 20]
    assert [r["val_loss"] for r in curves[0]] == [r["val_loss"] for r in curves[1]]
