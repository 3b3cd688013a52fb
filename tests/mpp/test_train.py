"""Windows, balanced sampler, NMSE, rollout, training on the core loop, fine-tuning, FNO."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scifm.core import TrainConfig, load_model
from scifm.mpp import AViT, AViTConfig, nmse, nrmse, persistence_step, rollout
from scifm.mpp.baselines import FNOBaseline, FNOConfig
from scifm.mpp.evaluate import one_step_nrmse, one_step_nrmse_fields, rollout_nrmse
from scifm.mpp.metrics import NMSE_EPS
from scifm.mpp.recipe import TrainRecipe
from scifm.mpp.train import fit, prepare_finetune, set_trainable
from scifm.pde.windows import TrajectoryWindows, collate_windows, system_batches


def test_toy_data_and_windows_are_deterministic(toy_sets, make_toy_fields):
    toy_fields = make_toy_fields
    torch.testing.assert_close(toy_fields(2, 6, 2, 16, 7), toy_fields(2, 6, 2, 16, 7))
    assert not torch.equal(toy_fields(2, 6, 2, 16, 7), toy_fields(2, 6, 2, 16, 8))
    a = toy_sets[0]
    assert len(a) == 3 * (10 - 4)
    b = collate_windows([a[0], a[7]])  # window 7 = trajectory 1, start frame 1
    torch.testing.assert_close(b["x"][1], a.fields[1, 1:5])
    torch.testing.assert_close(b["y"][1], a.fields[1, 5])


def test_balanced_batches_are_one_system_reproducible_and_balanced(toy_sets):
    src = system_batches(toy_sets, batch_size=4, seed=3)
    b1, b2 = src.get(5, 0, 0, 1), src.get(5, 0, 0, 1)
    torch.testing.assert_close(b1["x"], b2["x"])
    assert b1["x"].shape[2] == len(b1["field_index"])  # one system per micro-batch
    picks = [src.choice(s)[0] for s in range(400)]
    assert 0.4 < np.mean(picks) < 0.6  # uniform over the two systems
    shards = [src.get(5, 0, r, 2)["x"] for r in range(2)]
    torch.testing.assert_close(torch.cat([shards[0][:1], shards[1][:1]]), b1["x"][:2])


def test_nmse_and_nrmse_definitions():
    y = torch.ones(2, 1, 4, 4)
    pred = y.clone()
    pred[0] += 0.5
    assert float(nmse(pred, y)) == pytest.approx((0.25 / 1.0) / 2, rel=1e-5)
    assert float(nrmse(pred, y)) == pytest.approx(0.5 / 2, rel=1e-5)


def test_rollout_of_persistence_on_static_fields_is_exact():
    ctx = torch.rand(2, 4, 3, 8, 8)
    truth = ctx[:, -1:].expand(-1, 25, -1, -1, -1)
    preds, err = rollout(persistence_step, ctx, 25, truth=truth)
    assert preds.shape == (2, 25, 3, 8, 8) and err.shape == (25,)
    assert float(err.max()) == 0.0


def test_overfit_one_batch(make_toy_fields):
    from scifm.core import train
    from scifm.mpp.train import loss_fn

    torch.manual_seed(0)
    model = AViT(AViTConfig.preset("tiny"))
    fields = make_toy_fields(2, 6, 2, 16, seed=1) - 2.0
    ws = TrajectoryWindows(fields, system="a", n_ctx=4, field_index=(4, 5), periodic=True)
    fixed = system_batches([ws], batch_size=2).get(0, 0)

    class Same:
        def get(self, step, micro, rank, world_size):
            return fixed

    with torch.no_grad():
        start = float(loss_fn(model, fixed)[0])  # ~1 for zero-mean fields
    cfg = TrainConfig(steps=150, lr=1e-2, warmup_steps=5, progress=False, log_every=10)
    hist = train(model, loss_fn, Same(), cfg, device="cpu").history
    assert hist[-1]["loss"] < 0.05 * start


def test_fit_checkpoints_and_finetune_freezes_the_processor(toy_sets, tmp_path):
    torch.manual_seed(0)
    model = AViT(AViTConfig.preset("tiny"))
    cfg = TrainConfig(steps=4, warmup_steps=1, progress=False, log_every=2)
    res = fit(model, toy_sets, cfg, batch_size=2, out_dir=tmp_path / "pre")
    assert res.step == 4
    _, model = load_model(tmp_path / "pre" / "checkpoint")
    slots = prepare_finetune(model, new_fields=2, trainable="io")
    assert slots == [12, 13]
    frozen = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("blocks.")}
    new_sys = TrajectoryWindows(
        toy_sets[0].fields, system="new", n_ctx=4, field_index=slots, periodic=True
    )
    fit(model, [new_sys], cfg, batch_size=2)
    for k, v in model.state_dict().items():
        if k.startswith("blocks."):
            torch.testing.assert_close(v, frozen[k])
    assert not torch.equal(model.decoder.out_bias[12:], torch.zeros(2))
    assert set_trainable(model, "all") == model.n_params()
    with pytest.raises(ValueError, match="trainable"):
        set_trainable(model, "middle")


def test_fno_baseline_trains_and_evaluates(toy_sets, tmp_path):
    pytest.importorskip("neuralop", reason="the FNO baseline needs the pde extra")
    torch.manual_seed(0)
    ws = toy_sets[0]
    fno = FNOBaseline(FNOConfig.preset("tiny", n_fields=2, n_frames=4))
    before = one_step_nrmse(fno, ws)
    fit(fno, [ws], TrainConfig(steps=30, lr=3e-3, warmup_steps=2, progress=False), batch_size=4)
    after = one_step_nrmse(fno, ws)
    assert after < before
    curve = rollout_nrmse(fno, ws.fields, 4, 5)
    assert curve.shape == (5,) and np.isfinite(curve).all()
    with pytest.raises(ValueError, match="T=4, C=2"):
        fno(torch.randn(1, 5, 2, 32, 32))
    with pytest.raises(ValueError, match="T=4, C=2"):
        fno(torch.randn(1, 4, 3, 32, 32))
    short = torch.randn(1, 3, 2, 32, 32)  # the first step of an unrolled loss: padded
    with torch.no_grad():
        padded = torch.cat([short[:, :1], short], dim=1)
        torch.testing.assert_close(fno(short), fno(padded))
    recipe = TrainRecipe.preset("stable")  # the AViT's stability recipe trains an FNO too
    fit(
        fno,
        [ws],
        TrainConfig(steps=3, progress=False),
        batch_size=4,
        recipe=recipe,
        out_dir=tmp_path,
    )  # a resumable checkpoint of an FNO (neuraloperator's metadata dropped)
    _, back = load_model(tmp_path / "checkpoint")
    with torch.no_grad():
        torch.testing.assert_close(back(short), fno.eval()(short))


def test_one_step_nrmse_fields_are_each_fields_figure_and_average_to_the_total(toy_sets):
    """Each field's next-frame NRMSE, computed directly; their mean is ``one_step_nrmse``; a
    predictor that moves one field only leaves the other exactly at persistence; no windows
    is an error, not a zero."""
    ws = toy_sets[0]
    per = one_step_nrmse_fields(persistence_step, ws, batch_size=3)
    b = collate_windows([ws[i] for i in range(len(ws))])
    direct = [
        float(
            ((b["x"][:, -1, c] - b["y"][:, c]).pow(2).mean(dim=(-2, -1))
             / (NMSE_EPS + b["y"][:, c].pow(2).mean(dim=(-2, -1)))).sqrt().mean()
        )
        for c in range(b["y"].shape[1])
    ]  # fmt: skip
    assert per == pytest.approx(direct, rel=1e-4)
    assert one_step_nrmse(persistence_step, ws) == pytest.approx(np.mean(per), rel=1e-6)

    def first_only(x):  # one batch of every window: the truth for field 0, else the last frame
        out = x[:, -1].clone()
        out[:, 0] = b["y"][:, 0]
        return out

    moved = one_step_nrmse_fields(first_only, ws, batch_size=len(ws))
    assert moved[0] == pytest.approx(0.0, abs=1e-6) and moved[1:] == pytest.approx(per[1:])
    with pytest.raises(ValueError, match="no windows"):
        one_step_nrmse_fields(persistence_step, ws, max_windows=0)
