"""Training, prediction, metrics and checkpoints of the xVal models; the CLI in-process."""

import copy
import json

import numpy as np
import pytest
import torch

from scifm.core import save_checkpoint
from scifm.xval import Predictions, generate, load_trained, metrics, predict
from scifm.xval.data import encode_sample
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


def _force_tokens(model: torch.nn.Module, choose) -> None:
    """Make ``model``'s token head pick ``choose(ids)`` at the last position (a forward hook)."""

    def hook(_module, inputs, output):
        logits, numbers = output
        forced = torch.full_like(logits, -1e4)
        forced[..., choose(inputs[0])] = 0.0
        return forced, numbers

    model.register_forward_hook(hook)


def test_autoregressive_mode_trains_and_generates(ood_task) -> None:
    from scifm.core import TrainConfig
    from scifm.xval.tokenizers import EOS, NUM
    from scifm.xval.train import fit, model_config_for

    cfg = model_config_for(ood_task, "xval", "tiny", mode="ar")
    tcfg = TrainConfig(steps=30, lr=3e-3, warmup_steps=3, log_every=10, progress=False)
    trained = fit(ood_task, cfg, tcfg, batch_size=32, seed=0, device="cpu")
    assert trained.result.history[-1]["loss"] < trained.result.history[0]["loss"]
    samples = generate(ood_task, 5, 1, "test")
    res = evaluate(trained, samples)
    pred = predict(trained, samples).pred
    assert res["n"] == 5 and res["invalid_rate"] == np.mean(np.isnan(pred))

    # Known answers: a model that ends every text at once predicts nothing (all invalid); one
    # that writes [NUM] right after "a*b=" and then stops predicts one value per text (none
    # invalid), and that value is the number head's output mapped back through the scaler.
    tok = trained.config.tokenizer
    eos, num = tok.token_to_id[EOS], tok.token_to_id[NUM]
    starts = {encode_sample(s, tok, trained.scaler, "mlm").target_spans[0][0] for s in samples}
    assert len(starts) == 1  # xVal: "a * b =" is the same number of tokens in every text
    start = starts.pop()
    stops = copy.deepcopy(trained)
    _force_tokens(stops.model, lambda ids: eos)
    assert evaluate(stops, samples)["invalid_rate"] == 1.0
    writes = copy.deepcopy(trained)
    _force_tokens(writes.model, lambda ids: num if ids.shape[1] == start else eos)
    got = predict(writes, samples)
    assert metrics(got)["invalid_rate"] == 0.0
    for s, value in zip(samples, got.pred):
        it = encode_sample(s, tok, trained.scaler, "ar")
        ids = torch.as_tensor(it.ids[:start])[None]
        x_num = torch.as_tensor(it.x_num[:start])[None]
        with torch.no_grad():
            raw = float(trained.model(ids, x_num)[1][0, -1])
        assert value == pytest.approx(trained.scaler.inverse([raw], ["result"])[0], rel=1e-6)


def test_cli_tokenize_train_evaluate(tmp_path, xval_cli, monkeypatch, tiny_assets) -> None:
    from scifm.xval.tasks import ood_text, three_sig
    from scifm.xval.train import load_trained

    monkeypatch.setenv("SCIFM_DEVICE", "cpu")  # evaluate picks its device; compare like for like
    out = xval_cli(["xval", "tokenize", "--scheme", "p1000", "3-2=1"])
    assert out["tokens"] == ["<+>", "<300>", "<E-2>", "-", "<+>", "<200>", "<E-2>", "=",
                             "<+>", "<100>", "<E-2>"]  # fmt: skip
    assert out["numbers"] == [3, 2, 1] and out["n_tokens"] == 11

    run_dir = tmp_path / "r"
    out = xval_cli(["xval", "train", "--scheme", "xval", "--task", "ood", "--preset", "tiny",
                    "--steps", "20", "--n-train", "128", "--batch", "16", "--out", str(run_dir),
                    "--device", "cpu"])  # fmt: skip
    ckpt = run_dir / "checkpoint"
    assert out["checkpoint"] == str(ckpt)
    assert {"config.json", "model.safetensors"} <= {p.name for p in ckpt.iterdir()}
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 21))
    assert out["info"]["final_loss"] == pytest.approx(log[-1]["loss"])
    again = load_trained(ckpt)
    assert again.config.scheme == "xval" and again.task == TaskConfig(task="ood", n_train=128)
    assert out["info"]["n_params"] == sum(p.numel() for p in again.model.parameters())
    direct = evaluate(again, generate(again.task, 300, 12345, "test"))  # what train reports
    assert out["test"] == pytest.approx(direct, rel=1e-6, nan_ok=True) and out["test"]["n"] == 300
    assert out["test"]["invalid_rate"] < 1  # 20 steps: [NUM] is predicted, so mse depends on data

    ckpt = tiny_assets / "ood_p10"
    out = xval_cli(["xval", "evaluate", "--scheme", "p10", "--task", "ood", "--seed", "1",
                    "--n", "8", "--range", "10", "12", "--checkpoint", str(ckpt)])  # fmt: skip
    rng = np.random.default_rng(1)
    a, b = three_sig(rng, 10.0, 12.0, 8), three_sig(rng, 1.0, 10.0, 8)
    direct = evaluate(load_trained(ckpt), [ood_text(float(x), float(y)) for x, y in zip(a, b)])
    assert out["n"] == 8 and (out["scheme"], out["task"]) == ("p10", "ood")
    assert {k: out[k] for k in direct} == pytest.approx(direct, rel=1e-6, nan_ok=True)


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
