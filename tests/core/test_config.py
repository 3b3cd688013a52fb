"""Config helpers: JSON round trip, presets, command-line overrides, validation."""

import pytest

from scifm.core import TrainConfig
from scifm.core.testing import TinyConfig


def test_json_roundtrip_preserves_tuples_and_floats(tmp_path):
    cfg = TrainConfig(steps=7, betas=(0.8, 0.9), lr=1)
    path = tmp_path / "c.json"
    cfg.to_json(path)
    back = TrainConfig.from_json(path)
    assert back == cfg
    assert isinstance(back.betas, tuple) and isinstance(back.lr, float)


def test_presets_and_unknown_preset():
    assert TrainConfig.preset("tiny").steps == 20
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        TrainConfig.preset("huge")


def test_overrides_typed_and_validated():
    cfg = TrainConfig().with_overrides(["steps=12", "lr=1e-3", "bf16=false", "betas=[0.5,0.6]"])
    assert (cfg.steps, cfg.lr, cfg.bf16, cfg.betas) == (12, 1e-3, False, (0.5, 0.6))
    with pytest.raises(ValueError, match="has no field 'stepz'"):
        TrainConfig().with_overrides(["stepz=3"])
    with pytest.raises(ValueError, match="expected key=value"):
        TrainConfig().with_overrides(["steps"])
    with pytest.raises(ValueError, match="steps=0"):
        TrainConfig().with_overrides(["steps=0"])


def test_unknown_field_in_dict_is_named():
    with pytest.raises(ValueError, match="unknown field.*'width'"):
        TinyConfig.from_dict({"width": 3})


def test_from_json_accepts_long_text():
    text = TrainConfig(steps=3).to_json()
    assert TrainConfig.from_json(text + " " * 5000).steps == 3
