"""Metrics over all test samples (invalid answers scored by a fallback) and held-out test sets."""

import numpy as np
import pytest

from scifm.xval import Predictions, TaskConfig, ValueScaler, generate, held_out, metrics


def test_invalid_answers_count_as_the_fallback_prediction() -> None:
    true = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.0, 2.0, np.nan, 4.0])
    m = metrics(Predictions(true, pred, ("r",) * 4, np.full(4, 10.0)))
    # all samples: the invalid one predicts 10 -> squared error 49 over 4 samples
    assert m["mse"] == pytest.approx(49 / 4)
    assert m["r2"] == pytest.approx(1 - (49 / 4) / np.var(true))
    assert m["mse_valid"] == 0.0 and m["r2_valid"] == 1.0  # the valid-only figure beside it
    assert m["invalid_rate"] == 0.25 and m["exact"] == 0.75 and m["outlier_rate"] == 0.25
    assert m["n"] == 4


def test_all_invalid_scores_like_the_mean_predictor() -> None:
    true = np.array([1.0, 2.0, 3.0])
    m = metrics(Predictions(true, np.full(3, np.nan), ("r",) * 3))  # fallback: mean of true
    assert m["r2"] == pytest.approx(0.0) and m["invalid_rate"] == 1.0
    assert np.isnan(m["r2_valid"]) and m["exact"] == 0.0


def test_scaler_keeps_the_raw_training_mean() -> None:
    s = ValueScaler.fit([1.0, 3.0, 100.0, 300.0], ["a", "a", "b", "b"], {"b": "asinh"})
    np.testing.assert_allclose(s.mean(["a", "b", "a"]), [2.0, 200.0, 2.0])
    again = ValueScaler.from_dict(s.to_dict())
    np.testing.assert_allclose(again.mean(["b"]), [200.0])
    old = {k: {kk: v for kk, v in d.items() if kk != "mean"} for k, d in s.to_dict().items()}
    assert ValueScaler.from_dict(old).mean(["a"])[0] == pytest.approx(2.0)  # old checkpoints


@pytest.mark.parametrize("task", ["ood", "multiplication"])
def test_test_texts_never_occur_in_training(task: str) -> None:
    cfg = TaskConfig(task=task, n_train=4000, n_test=300)
    train = generate(cfg, cfg.n_train, 0)
    plain = generate(cfg, 300, 12345, "test")
    test = held_out(cfg, 300, 12345, "test", train)
    texts = {s.text for s in train}
    assert len(test) == 300 and not any(s.text in texts for s in test)
    kept = [s for s in plain if s.text not in texts]
    assert [s.text for s in test[: len(kept)]] == [s.text for s in kept]  # same stream, deduped
    if task == "ood":  # the grid is coarse: a plain draw does collide (what issue 15 saw)
        assert len(kept) < 300
