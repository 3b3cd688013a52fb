"""The plateau rule (issue 14: no 1 % gain over the last 20 % of steps) and evaluated runs."""

import json

import pytest
import torch
from safetensors.torch import load_file

from scifm.core import DatasetBatches, TrainConfig, plateaued
from scifm.core.plateau import PlateauRule, run_curve, train_evaluated
from scifm.core.testing import TinyConfig, TinyMLP, mse_loss, regression_data


def _curve(values, every=100, key="val_loss"):
    return [{"step": every * (i + 1), key: v} for i, v in enumerate(values)]


def test_flat_curve_stops_improving_curve_continues():
    improving = _curve([10, 8, 6, 5, 4, 3.5, 3.2, 3.1, 3.0, 2.9])  # last 20 %: -6 %
    assert not plateaued(improving, 0.2, 0.01)
    assert plateaued(_curve([10, 8, 6, 5, 4, 3.5, 3.2, 3.0, 2.99, 2.985]), 0.2, 0.01)
    assert plateaued(_curve([10, 8, 6, 5, 4, 3.5, 3.2, 3.0, 3.5, 3.6]), 0.2, 0.01)  # worse
    assert not plateaued([], 0.2, 0.01) and not plateaued(_curve([1.0]), 0.2, 0.01)
    flat5 = _curve([1.4, 1.1, 1.09, 1.03, 1.021], every=200)  # the window holds one point
    assert plateaued(flat5, 0.2, 0.01) and not plateaued(flat5, 0.2, 0.01, points=3)


def test_higher_is_better_variant_and_the_1_percent_edge():
    rising = _curve([0.1, 0.2, 0.3, 0.35, 0.4, 0.42, 0.44, 0.45, 0.47, 0.5], key="recall@10")
    kw = {"key": "recall@10", "higher_is_better": True}
    assert not plateaued(rising, 0.2, 0.01, **kw)
    assert plateaued(rising, 0.2, 0.01, key="recall@10")  # read as a loss it "got worse"
    flat = _curve([0.1, 0.2, 0.3, 0.35, 0.4, 0.42, 0.44, 0.45, 0.452, 0.451], key="recall@10")
    assert plateaued(flat, 0.2, 0.01, **kw)  # +0.4 % < 1 %
    edge = _curve([0.1, 0.2, 0.3, 0.35, 0.4, 0.42, 0.44, 0.45, 0.4546, 0.45], key="recall@10")
    assert not plateaued(edge, 0.2, 0.01, **kw)  # +1.02 %: still improving
    # R^2 may start negative: the 1 % is of the best value's size
    neg = _curve([-0.5, -0.3, -0.2, -0.199, -0.1985], every=200, key="r2")
    assert plateaued(neg, 0.2, 0.01, key="r2", higher_is_better=True)
    with pytest.raises(ValueError, match="window"):
        plateaued(rising, 1.5, 0.01)


def test_rule_waits_for_min_steps():
    flat = _curve([1.0] * 10)
    assert PlateauRule("val_loss", points=1).reached(flat)
    assert not PlateauRule("val_loss", points=1, min_steps=2000).reached(flat)


def _tiny_run(out, steps, stop_at=0, rule=None, every=4):
    cfg = TinyConfig(dropout=0.0, drop_path=0.0)
    torch.manual_seed(0)
    model = TinyMLP(cfg)
    data = regression_data(cfg, 64, seed=0)
    x_val, y_val = regression_data(cfg, 32, seed=1).tensors

    def evaluate(m):
        with torch.no_grad():
            return {"val_loss": float(((m(x_val) - y_val) ** 2).mean())}

    tc = TrainConfig(steps=steps, stop_at=stop_at, lr=1e-2, warmup_steps=1, log_every=2,
                     progress=False)  # fmt: skip
    return train_evaluated(model, mse_loss, DatasetBatches(data, 16, seed=0), tc, evaluate,
                           out_dir=out, eval_every=every, rule=rule, model_config=cfg)  # fmt: skip


def test_evaluated_run_records_each_chunk_and_resumes_bit_for_bit(tmp_path):
    whole = _tiny_run(tmp_path / "whole", 12)
    assert [r["step"] for r in whole.curve] == [4, 8, 12] and whole.reason == "steps"
    lines = (tmp_path / "whole" / "eval.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [4, 8, 12]
    cut = _tiny_run(tmp_path / "cut", 12, stop_at=8)
    assert cut.reason == "stop_at" and cut.result.step == 8
    with open(tmp_path / "cut" / "eval.jsonl", "a") as f:  # a record past the checkpoint
        f.write(json.dumps({"step": 10, "val_loss": 0.0}) + "\n")
    assert [r["step"] for r in run_curve(tmp_path / "cut")] == [4, 8]  # what a resume keeps
    resumed = _tiny_run(tmp_path / "cut", 12)
    assert resumed.result.resumed_from == 8
    assert resumed.curve == whole.curve  # the stray record is gone, the curve identical
    a = load_file(str(tmp_path / "whole" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "checkpoint" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluated_run_stops_at_the_plateau_and_stays_stopped(tmp_path):
    # any curve "plateaus" under an impossible 99 % gain requirement with a one-point window
    rule = PlateauRule("val_loss", rel=0.99, points=1, window=0.5)
    run = _tiny_run(tmp_path, 40, rule=rule)
    assert run.reason == "plateau" and run.result.step == 8  # decided at the 2nd evaluation
    again = _tiny_run(tmp_path, 40, rule=rule)
    assert again.reason == "plateau" and again.result.step == 8 and not again.result.history


def test_rerunning_a_finished_evaluated_run_returns_its_trained_weights(tmp_path):
    """Nothing is left to train, so the caller's model must end with the checkpoint's
    weights, not the fresh ones it was built with (the CLI reported a trained run with
    untrained weights)."""
    cfg = TinyConfig(dropout=0.0, drop_path=0.0)
    data = DatasetBatches(regression_data(cfg, 64, seed=0), 16, seed=0)
    tc = TrainConfig(steps=8, lr=1e-2, warmup_steps=1, log_every=2, progress=False)

    def run(seed):
        torch.manual_seed(seed)
        model = TinyMLP(cfg)
        out = train_evaluated(model, mse_loss, data, tc, lambda m: {"val_loss": 0.0},
                              out_dir=tmp_path, eval_every=4, model_config=cfg)  # fmt: skip
        return model, out

    first, _ = run(0)
    again, out = run(1)  # another initialisation: it must be replaced by the checkpoint
    assert out.reason == "steps" and not out.result.history
    a, b = first.state_dict(), again.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
