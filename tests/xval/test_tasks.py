"""Task generators: determinism, correct answers, held-out ranges; the value scaler."""

import numpy as np
import pytest

from scifm.xval import ValueScaler, find_numbers, fit_scaler, generate
from scifm.xval.tasks import TaskConfig


@pytest.mark.parametrize("task", ["multiplication", "compound", "ood", "orbits"])
def test_generators_are_deterministic(task: str) -> None:
    cfg = TaskConfig.preset("tiny", task=task)
    assert generate(cfg, 5, 3) == generate(cfg, 5, 3)
    assert generate(cfg, 5, 3) != generate(cfg, 5, 4)
    for s in generate(cfg, 5, 3):
        assert len(find_numbers(s.text)) == len(s.fields)


@pytest.mark.parametrize("task", ["multiplication", "compound"])
def test_answers_are_right(task: str) -> None:
    for s in generate(TaskConfig(task=task), 50, 0):
        lhs, rhs = s.text.split("=")
        assert eval(lhs) == pytest.approx(float(rhs), rel=1e-9, abs=1e-6)  # plain arithmetic


def test_multiplication_operands_have_3_to_5_digits() -> None:
    for s in generate(TaskConfig(task="multiplication"), 200, 0):
        a, b, _ = find_numbers(s.text)
        assert 100 <= a < 100_000 and 100 <= b < 100_000


def test_ood_splits() -> None:
    cfg = TaskConfig(task="ood")
    a_train = np.array([find_numbers(s.text)[0] for s in generate(cfg, 2000, 0)])
    assert not ((a_train >= 4.0) & (a_train < 5.0)).any()
    assert a_train.min() >= 1.0 and a_train.max() <= 10.0  # 9.996 rounds to 10.0
    a_in = np.array([find_numbers(s.text)[0] for s in generate(cfg, 200, 0, "interp")])
    assert ((a_in >= 4.0) & (a_in <= 5.0)).all()
    a_out = np.array([find_numbers(s.text)[0] for s in generate(cfg, 200, 0, "extrap")])
    assert (a_out >= 10.0).all()


def test_bad_split_is_an_error() -> None:
    with pytest.raises(ValueError, match="interp"):
        generate(TaskConfig(task="compound"), 3, 0, "interp")


def test_scaler_maps_into_a_few_units_and_inverts() -> None:
    cfg = TaskConfig(task="multiplication")
    samples = generate(cfg, 500, 0)
    scaler = fit_scaler(samples, cfg.scaler_kinds)
    values = [v for s in samples for v in find_numbers(s.text)]
    fields = [f for s in samples for f in s.fields]
    y = scaler.transform(values, fields)
    assert np.abs(y).max() < 5.0
    np.testing.assert_allclose(scaler.inverse(y, fields), values, rtol=1e-9)
    again = ValueScaler.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(again.transform(values, fields), y)
    with pytest.raises(KeyError, match="planet"):
        scaler.transform([1.0], ["planet"])
