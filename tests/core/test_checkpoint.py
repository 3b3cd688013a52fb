"""Checkpoints round-trip, and corrupt, truncated or mismatched ones fail clearly."""

import json

import pytest
import torch

from scifm.core import CheckpointError, load_model, save_checkpoint
from scifm.core import checkpoint as ckmod
from scifm.core.testing import TinyConfig, TinyMLP


@pytest.fixture
def saved(tmp_path):
    cfg = TinyConfig(d_in=4, d_hidden=8)
    model = TinyMLP(cfg)
    path = save_checkpoint(tmp_path / "ck", model, cfg, extra={"scaler": [1.0, 2.0]})
    return path, cfg, model


def test_roundtrip_rebuilds_config_and_weights(saved):
    path, cfg, model = saved
    cfg2, model2 = load_model(path)
    assert cfg2 == cfg
    for (k, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert torch.equal(a, b), k
    record = json.loads((path / "config.json").read_text())
    assert record["extra"] == {"scaler": [1.0, 2.0]}


def test_truncated_weights_named_in_error(saved):
    path, *_ = saved
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*(truncated|sha256)"):
        load_model(path)


def test_corrupt_bytes_detected(saved):
    path, *_ = saved
    f = path / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-5] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_model(path)


def test_wrong_config_gives_shape_error(saved):
    path, *_ = saved
    rec = json.loads((path / "config.json").read_text())
    rec["config"]["d_hidden"] = 16
    (path / "config.json").write_text(json.dumps(rec))
    with pytest.raises(CheckpointError, match="do not match the config"):
        load_model(path)


def test_invalid_config_value_is_reported(saved):
    path, *_ = saved
    rec = json.loads((path / "config.json").read_text())
    rec["config"]["d_in"] = -1
    (path / "config.json").write_text(json.dumps(rec))
    with pytest.raises(CheckpointError, match="does not validate"):
        load_model(path)


def test_expected_config_class_enforced(saved):
    path, *_ = saved

    class Other:
        pass

    with pytest.raises(CheckpointError, match="expected Other"):
        load_model(path, expect_config=Other)


def test_foreign_class_never_imported(saved):
    path, *_ = saved
    rec = json.loads((path / "config.json").read_text())
    rec["model"] = "os:system"
    (path / "config.json").write_text(json.dumps(rec))
    with pytest.raises(CheckpointError, match="not a scifm class"):
        load_model(path)


def test_not_json_and_missing_dir(tmp_path, saved):
    path, *_ = saved
    (path / "config.json").write_text("{nope")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(path)
    with pytest.raises(CheckpointError, match="no checkpoint directory"):
        load_model(tmp_path / "absent")


def test_crash_during_save_keeps_previous_checkpoint(saved, monkeypatch):
    path, cfg, model = saved
    before = (path / "model.safetensors").read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckmod, "save_file", boom)
    with torch.no_grad():
        model.inp[0].weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, cfg)
    assert (path / "model.safetensors").read_bytes() == before
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]
    load_model(path)


def test_interrupted_swap_recovers_old_copy(saved):
    path, cfg, _ = saved
    old = path.with_name(f".{path.name}.old")
    path.rename(old)  # state after the first rename of a save, before the second
    cfg2, _ = load_model(path)
    assert cfg2 == cfg
