"""Convergence runs: the plateau rule, learning curves, exact resume, disjoint splits."""

import itertools
import json

import pytest
import torch

from scifm.xval import TaskConfig
from scifm.xval.converge import ConvergeConfig, converge, lines_study, plateaued, task_study
from scifm.xval.tabular import lines
from scifm.xval.train import load_trained, model_config_for


def _curve(losses, every=100):
    return [{"step": every * (i + 1), "val_loss": v} for i, v in enumerate(losses)]


def test_plateau_rule() -> None:
    # 10 points; the last 20 % of the steps are points 9 and 10
    assert not plateaued(_curve([10, 8, 6, 5, 4, 3.5, 3.2, 3.1, 3.0, 2.9]), 0.2, 0.01)
    assert plateaued(_curve([10, 8, 6, 5, 4, 3.5, 3.2, 3.0, 2.99, 2.985]), 0.2, 0.01)
    assert plateaued(_curve([10, 8, 6, 5, 4, 3.5, 3.2, 3.0, 3.5, 3.6]), 0.2, 0.01)  # got worse
    assert not plateaued(_curve([1.0]), 0.2, 0.01) and not plateaued([], 0.2, 0.01)
    # a window of one point (step 1000 of 200-step chunks) is no trend with points=3
    flat5 = _curve([1.4, 1.1, 1.09, 1.03, 1.021], every=200)
    assert plateaued(flat5, 0.2, 0.01) and not plateaued(flat5, 0.2, 0.01, points=3)
    flat = _curve([1.4, 1.1, 1.09, 1.03, 1.021, 1.02, 1.02, 1.02, 1.02, 1.02, 1.02, 1.02,
                   1.02, 1.02, 1.02], every=100)  # fmt: skip
    assert plateaued(flat, 0.2, 0.01, points=3)


def test_study_splits_share_no_text() -> None:
    study = task_study(TaskConfig(task="ood", n_train=3000, n_test=200), 0, n_val=200)
    sets = [{s.text for s in study.train}, {s.text for s in study.val}]
    sets += [{s.text for s in v} for v in study.tests.values()]
    assert set(study.tests) == {"test", "interp", "extrap"}
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            assert not sets[i] & sets[j], (i, j)
    real = lines_study(lines("iris"), fmt="jsonl", seed=0)
    rows = [{s.text for s in part} for part in (real.train, real.val, real.tests["test"])]
    assert not (rows[0] & rows[1] or rows[0] & rows[2] or rows[1] & rows[2])


@pytest.fixture(scope="module")
def tiny_study():
    return task_study(TaskConfig(task="ood", n_train=512, n_test=32), 0, n_val=32)


def test_converge_writes_curves_and_resumes_exactly(tiny_study, tmp_path) -> None:
    torch.set_num_threads(1)
    cfg = model_config_for(tiny_study.spec, "xval", "tiny")
    cc = ConvergeConfig.preset("tiny", min_steps=1000)  # budget stop at 30 steps
    full = converge(tiny_study, cfg, cc, tmp_path / "full", seed=0)
    assert full["done"] and full["reason"] == "budget" and full["step"] == 30
    curve = [json.loads(x) for x in (tmp_path / "full" / "curve.jsonl").read_text().splitlines()]
    assert [r["step"] for r in curve] == [10, 20, 30]
    assert all(a["tokens"] < b["tokens"] for a, b in itertools.pairwise(curve))
    assert curve[0]["tokens"] == 10 * 16 * 5  # ood xVal texts: 5 tokens, batch 16
    assert {"val_loss", "test.r2", "test.r2_valid", "interp.invalid_rate"} <= set(curve[0])
    # stop at 20, then continue to 30: same weights and curve as the straight run
    converge(tiny_study, cfg, cc.replace(max_steps=20), tmp_path / "cut", seed=0)
    (tmp_path / "cut" / "status.json").unlink()
    converge(tiny_study, cfg, cc, tmp_path / "cut", seed=0)
    a = load_trained(tmp_path / "full" / "checkpoint").model.state_dict()
    b = load_trained(tmp_path / "cut" / "checkpoint").model.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    cut = [json.loads(x) for x in (tmp_path / "cut" / "curve.jsonl").read_text().splitlines()]
    assert [r["val_loss"] for r in cut] == [r["val_loss"] for r in curve]


def test_converge_stops_on_plateau(tiny_study, tmp_path) -> None:
    cfg = model_config_for(tiny_study.spec, "xval", "tiny")
    cc = ConvergeConfig.preset("tiny", max_steps=200, min_steps=20, lr=1e-6, warmup_steps=0)
    status = converge(tiny_study, cfg, cc, tmp_path / "flat", seed=0)  # lr too small to learn
    assert status["reason"] == "plateau" and status["step"] < 200
