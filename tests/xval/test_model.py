"""The xVal transformer: shapes, parameter count, embedding order, masks, loss guards."""

import pytest
import torch

from scifm.xval import XvalConfig, collate, encode_sample, fit_scaler, generate
from scifm.xval.model import Model
from scifm.xval.tasks import TaskConfig
from scifm.xval.train import build_model, model_config_for, xval_loss


def _batch(scheme: str = "xval", mode: str = "mlm", n: int = 8) -> tuple[XvalConfig, dict]:
    task = TaskConfig.preset("tiny", task="compound")
    samples = generate(task, n, 0)
    cfg = model_config_for(task, scheme, "tiny", mode=mode)
    scaler = fit_scaler(samples, task.scaler_kinds)
    return cfg, collate([encode_sample(s, cfg.tokenizer, scaler, mode) for s in samples])


@pytest.mark.parametrize("scheme", ["xval", "p10", "fp15"])
def test_shapes_tiny(scheme: str) -> None:
    cfg, batch = _batch(scheme)
    logits, numbers = build_model(cfg, 0)(batch["ids"], batch["x_num"])
    b, t = batch["ids"].shape
    assert logits.shape == (b, t, cfg.vocab_size)
    assert numbers.shape == (b, t)


def test_parameter_count_matches_reference() -> None:
    """Paper preset, 100-token vocabulary: 48,422,401 parameters (the reference model)."""
    cfg = XvalConfig.preset("paper")
    with torch.device("meta"):
        n = sum(p.numel() for p in Model(cfg).parameters())
    vocab_dependent = cfg.vocab_size * (cfg.d_model + cfg.d_ffn)  # embedding + head output
    assert n - vocab_dependent + 100 * (cfg.d_model + cfg.d_ffn) == 48_422_401


def test_value_multiplies_before_position_is_added() -> None:
    model = build_model(XvalConfig.preset("tiny", num_bias=False), 0)
    ids = torch.tensor([[5, 6, model.config.num_id]])
    pos = model.position_embedding.weight[:3]
    h0 = model.embed(ids, torch.tensor([[1.0, 1.0, 0.0]]))
    torch.testing.assert_close(h0[0, 2], pos[2])  # the dead zone: value 0 leaves the position
    h2 = model.embed(ids, torch.tensor([[1.0, 1.0, 2.0]]))
    tok = model.token_embedding.weight[model.config.num_id]
    torch.testing.assert_close(h2[0, 2], 2 * tok + pos[2])


def test_number_bias_removes_the_dead_zone() -> None:
    model = build_model(XvalConfig.preset("tiny"), 0)  # presets have num_bias on
    num = model.config.num_id
    ids = torch.tensor([[5, num, num]])
    h = model.embed(ids, torch.tensor([[1.0, 0.0, 2.0]]))
    pos = model.position_embedding.weight[:3]
    tok, bias = model.token_embedding.weight[num], model.number_bias
    torch.testing.assert_close(h[0, 1], bias + pos[1])  # value 0 is no longer a zero vector
    torch.testing.assert_close(h[0, 2], 2 * tok + bias + pos[2])
    torch.testing.assert_close(h[0, 0], model.token_embedding.weight[5] + pos[0])  # text: no bias
    assert bias.abs().sum() > 0
    digit = build_model(XvalConfig.preset("tiny", scheme="p10"), 0)
    assert not hasattr(digit, "number_bias")  # digit schemes have no [NUM]


def test_causal_mask_in_ar_mode() -> None:
    model = build_model(XvalConfig.preset("tiny", mode="ar"), 0).eval()
    ids = torch.randint(5, 90, (1, 10))
    x = torch.ones(1, 10)
    a, _ = model(ids, x)
    ids2 = ids.clone()
    ids2[0, 7:] = 40
    b, _ = model(ids2, x)
    torch.testing.assert_close(a[0, :7], b[0, :7])  # past does not see the future
    assert not torch.allclose(a[0, 7:], b[0, 7:])


def test_mlm_mode_is_bidirectional() -> None:
    model = build_model(XvalConfig.preset("tiny"), 0).eval()
    ids = torch.randint(5, 90, (1, 10))
    ids2 = ids.clone()
    ids2[0, 9] = 40 if ids[0, 9] != 40 else 41
    a, _ = model(ids, torch.ones(1, 10))
    b, _ = model(ids2, torch.ones(1, 10))
    assert not torch.allclose(a[0, 0], b[0, 0])


@pytest.mark.parametrize("mode", ["mlm", "ar"])
def test_padding_does_not_change_outputs(mode: str) -> None:
    model = build_model(XvalConfig.preset("tiny", mode=mode), 0).eval()
    ids = torch.randint(5, 90, (1, 6))
    x = torch.rand(1, 6) + 0.5
    a, na = model(ids, x)
    pad_ids = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], 1)
    b, nb = model(pad_ids, torch.cat([x, torch.ones(1, 4)], 1))
    torch.testing.assert_close(a, b[:, :6])
    torch.testing.assert_close(na, nb[:, :6])


def test_loss_without_number_targets_is_finite() -> None:
    cfg, batch = _batch("xval")
    batch["num_mask"][:] = False  # a batch with no [NUM] target
    loss, m = xval_loss(build_model(cfg, 0), batch)
    assert torch.isfinite(loss) and m["mse"] == 0.0
    loss.backward()
    batch["labels"][:] = -100  # and none at all
    loss, m = xval_loss(build_model(cfg, 0), batch)
    assert torch.isfinite(loss) and loss.item() == 0.0


@pytest.mark.parametrize("scheme", ["xval", "p1000"])
def test_overfits_one_batch(scheme: str) -> None:
    cfg, batch = _batch(scheme, n=4)
    model = build_model(cfg, 0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss, _ = xval_loss(model, batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="n_heads"):
        XvalConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="scheme"):
        XvalConfig(scheme="p7")
