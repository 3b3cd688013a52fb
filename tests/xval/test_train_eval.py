"""Training, prediction, metrics and checkpoints of the xVal models; the CLI in-process."""

import json

import numpy as np
import pytest
import torch

from scifm.core import save_checkpoint
from scifm.xval import Predictions, generate, load_trained, metrics, predict
from scifm.xval.evaluate import evaluate
from scifm.xval.tasks import TaskConfig


def test_training_reduces_the_loss(tiny_models) -> None:
    for trained in tiny_models.values():
        hist = trained.result.history
        assert hist[-1]["loss"] < hist[0]["loss"]
    assert (
        tiny_models["xval"].info["tokens_per_sample"] < tiny_models["p10"].info["tokens_per_sample"]
    )


def test_predictions_have_one_value_per_target(tiny_models, ood_task) -> None:
    samples = generate(ood_task, 20, 7, "test")
    for trained in tiny_models.values():
        p = predict(trained, samples)
        assert p.true.shape == p.pred.shape == (20,)
        assert np.all(np.isfinite(p.true))
    xval = predict(tiny_models["xval"], samples)
    assert np.isfinite(xval.pred).all()  # the token head learned to put [NUM] there


def test_checkpoint_round_trip_gives_same_predictions(tiny_models, ood_task, tmp_path) -> None:
    trained = tiny_models["xval"]
    save_checkpoint(tmp_path / "m", trained.model, trained.config, extra=trained.extra)
    again = load_trained(tmp_path / "m")
    assert again.config == trained.config and again.task == trained.task
    assert again.scaler.to_dict() == trained.scaler.to_dict()
    samples = generate(ood_task, 10, 3, "test")
    np.testing.assert_allclose(predict(again, samples).pred, predict(trained, samples).pred)


def test_metrics_reference_values() -> None:
    p = Predictions(
        np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.5, np.nan, 4.0001]), ("r",) * 4
    )
    m = metrics(p)
    assert m["mse_valid"] == pytest.approx((0.25 + 1e-8) / 3)
    assert m["invalid_rate"] == 0.25
    assert m["outlier_rate"] == 0.5  # 2.5 vs 2 (25 % off) and the invalid one
    assert m["exact"] == 0.5  # 1.0 and 4.0001 -> "4"


def test_autoregressive_mode_trains_and_generates(ood_task) -> None:
    from scifm.core import TrainConfig
    from scifm.xval.train import fit, model_config_for

    cfg = model_config_for(ood_task, "xval", "tiny", mode="ar")
    tcfg = TrainConfig(steps=30, lr=3e-3, warmup_steps=3, log_every=10, progress=False)
    trained = fit(ood_task, cfg, tcfg, batch_size=32, seed=0, device="cpu")
    res = evaluate(trained, generate(ood_task, 5, 1, "test"))
    assert res["n"] == 5 and 0.0 <= res["invalid_rate"] <= 1.0


def test_cli_tokenize_train_evaluate(tmp_path, capsys, tiny_assets) -> None:
    import argparse

    from scifm.xval.cli import cmd_evaluate, cmd_tokenize, cmd_train, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())

    def run(argv):
        args = parser.parse_args(argv)
        assert args.func(args) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    out = run(["xval", "tokenize", "--scheme", "p1000", "3-2=1"])
    assert out["tokens"] == ["<+>", "<300>", "<E-2>", "-", "<+>", "<200>", "<E-2>", "=",
                             "<+>", "<100>", "<E-2>"]  # fmt: skip
    assert out["numbers"] == [3, 2, 1]
    out = run(["xval", "train", "--scheme", "xval", "--task", "ood", "--preset", "tiny",
               "--steps", "5", "--n-train", "128", "--batch", "16", "--out", str(tmp_path / "r"),
               "--device", "cpu"])  # fmt: skip
    assert (tmp_path / "r" / "checkpoint" / "config.json").exists() and "mse" in out["test"]
    out = run(["xval", "evaluate", "--scheme", "p10", "--task", "ood", "--seed", "1", "--n", "8",
               "--range", "10", "12", "--checkpoint", str(tiny_assets / "ood_p10")])  # fmt: skip
    assert out["n"] == 8 and "outlier_rate" in out
    assert cmd_tokenize and cmd_train and cmd_evaluate


def test_cli_through_main(capsys) -> None:
    main = pytest.importorskip("scifm.cli").main
    assert main(["xval", "tokenize", "--scheme", "xval", "x=.5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tokens"] == ["x", "=", "[NUM]"] and out["values"][2] == 0.5


def test_training_is_deterministic(ood_task) -> None:
    from scifm.core import TrainConfig
    from scifm.xval.train import fit, model_config_for

    cfg = model_config_for(ood_task, "xval", "tiny")
    tcfg = TrainConfig(steps=3, lr=1e-3, warmup_steps=1, log_every=1, progress=False)
    a = fit(ood_task, cfg, tcfg, batch_size=16, seed=5, device="cpu")
    b = fit(ood_task, cfg, tcfg, batch_size=16, seed=5, device="cpu")
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(pa, pb)
    assert TaskConfig.from_dict(a.extra["task"]) == ood_task
