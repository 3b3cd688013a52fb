"""The rollout-stability training recipe: noise, pushforward / unrolled loss, field norms."""

import pytest
import torch
from torch import nn

from scifm.core import TrainConfig
from scifm.mpp import AViT, AViTConfig
from scifm.mpp.recipe import SeededBatches, TrainRecipe, add_noise, field_error, recipe_loss
from scifm.mpp.train import fit, loss_fn
from scifm.pde.windows import system_batches


class Recorder(nn.Module):
    """Wraps a model and keeps every input window and output it produced."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.inputs, self.outputs = model, [], []

    def forward(self, x, field_index, periodic):
        out = self.model(x, field_index, periodic)
        self.inputs.append(x)
        self.outputs.append(out)
        if out.requires_grad:
            out.retain_grad()
        return out


@pytest.fixture
def tiny():
    torch.manual_seed(0)  # test-only: the model's init
    return AViT(AViTConfig.preset("tiny"))


def _batch(toy_sets, seed_source=True):
    src = system_batches(toy_sets[:1], batch_size=3, seed=1)
    return (SeededBatches(src, seed=4) if seed_source else src).get(0, 0)


@pytest.mark.parametrize("norm", ["rms", "std", "delta"])
@pytest.mark.parametrize("preset", ["paper", "stable", "stable_random", "unrolled"])
def test_recipe_loss_is_a_finite_scalar_with_the_one_step_metric(tiny, toy_sets, preset, norm):
    recipe = TrainRecipe.preset(preset, loss_norm=norm)
    loss, metrics = recipe_loss(recipe)(tiny, _batch(toy_sets))
    assert loss.shape == () and torch.isfinite(loss) and loss.requires_grad
    assert set(metrics) == {"nrmse"} and metrics["nrmse"] > 0


def test_paper_recipe_equals_the_plain_loss(tiny, toy_sets):
    batch = _batch(toy_sets)
    tiny.eval()
    plain, _ = loss_fn(tiny, batch)
    same, _ = recipe_loss(TrainRecipe.preset("paper"))(tiny, batch)
    torch.testing.assert_close(plain, same)


def test_noise_std_is_the_fraction_of_each_field_rms():
    x = torch.randn(2, 4, 3, 64, 64) * torch.tensor([0.1, 1.0, 10.0]).view(1, 1, 3, 1, 1) + 5
    gen = torch.Generator().manual_seed(0)
    noisy = add_noise(x, 0.02, gen)
    rms = x.pow(2).mean(dim=(1, 3, 4)).sqrt()  # (B, C)
    std = (noisy - x).std(dim=(1, 3, 4))
    torch.testing.assert_close(std / rms, torch.full_like(rms, 0.02), rtol=0.03, atol=0)
    assert torch.equal(add_noise(x, 0.0, gen), x)


def test_noise_is_a_function_of_the_batch_seed(toy_sets, tiny):
    rec = Recorder(tiny)
    loss = recipe_loss(TrainRecipe(noise=0.05))
    b0, b1 = _batch(toy_sets), SeededBatches(system_batches(toy_sets[:1], 3, seed=1), 4).get(1, 0)
    for b in (b0, b0, b1):
        loss(rec, b)
    assert torch.equal(rec.inputs[0], rec.inputs[1])  # same step: same noise
    assert not torch.equal(rec.inputs[0] - b0["x"], rec.inputs[2] - b1["x"])
    with pytest.raises(ValueError, match="noise_seed"):
        loss(rec, _batch(toy_sets, seed_source=False))


def test_pushforward_gradient_skips_the_first_step(tiny, toy_sets):
    rec = Recorder(tiny)
    batch = _batch(toy_sets)
    loss, _ = recipe_loss(TrainRecipe(rollout_steps=2, pushforward=True))(rec, batch)
    loss.backward()
    first, last = rec.outputs
    assert not first.requires_grad and last.grad is not None
    # The graded step saw the true frames 0..T-2 and the model's own frame T-1.
    torch.testing.assert_close(rec.inputs[1][:, :-1], batch["x"][:, :-1])
    torch.testing.assert_close(rec.inputs[1][:, -1], first)
    assert rec.inputs[0].shape[1] == batch["x"].shape[1] - 1
    grads = [p.grad for p in tiny.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_unrolled_loss_backpropagates_through_every_step(tiny, toy_sets):
    rec = Recorder(tiny)
    loss, _ = recipe_loss(TrainRecipe(rollout_steps=3, pushforward=False))(rec, _batch(toy_sets))
    loss.backward()
    assert len(rec.outputs) == 3
    assert all(o.grad is not None and float(o.grad.abs().sum()) > 0 for o in rec.outputs)
    with pytest.raises(ValueError, match="rollout_steps=9"):
        recipe_loss(TrainRecipe(rollout_steps=9))(tiny, _batch(toy_sets))


def test_field_norms():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(2, 3, 16, 16, generator=g)
    last = y + 0.1 * torch.randn(y.shape, generator=g)
    pred = y + 0.05 * torch.randn(y.shape, generator=g)
    # "std" ignores a constant offset of a field (e.g. a density around 5); "rms" does not.
    for norm, invariant in (("std", True), ("rms", False)):
        a, b = field_error(pred, y, last, norm), field_error(pred + 5, y + 5, last + 5, norm)
        assert torch.allclose(a, b, rtol=1e-4) == invariant
    assert field_error(pred, y, last, "std").shape == (2, 3)
    # "delta": persistence scores 1 on every field (up to the small floor).
    torch.testing.assert_close(
        field_error(last, y, last, "delta"), torch.ones(2, 3), rtol=1e-3, atol=0
    )
    with pytest.raises(ValueError, match="TrainRecipe.loss_norm"):
        TrainRecipe(loss_norm="l1")


def test_fit_with_the_stable_recipe_trains_and_records_it(tiny, toy_sets, tmp_path):
    cfg = TrainConfig(steps=3, lr=1e-3, warmup_steps=1, log_every=1, progress=False)
    recipe = TrainRecipe.preset("stable")
    result = fit(tiny, toy_sets, cfg, batch_size=2, recipe=recipe, out_dir=tmp_path)
    assert result.step == 3 and result.checkpoint is not None
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    records = [p.read_text() for p in result.checkpoint.rglob("*.json")]
    assert any('"rollout_steps": 2' in r for r in records)


class Oracle(nn.Module):
    """Returns the true next frame of the batch, whatever its (noisy) input window."""

    def __init__(self, frames: torch.Tensor) -> None:
        super().__init__()
        self.frames, self.w = frames, nn.Parameter(torch.zeros(()))

    def forward(self, x, field_index, periodic):
        return self.frames[:, x.shape[1]] + self.w


@pytest.mark.parametrize("pushforward", [True, False])
def test_targets_stay_clean_under_input_noise(toy_sets, pushforward):
    batch = _batch(toy_sets)
    frames = torch.cat([batch["x"], batch["y"][:, None]], dim=1)
    recipe = TrainRecipe(noise=0.1, rollout_steps=3, pushforward=pushforward, loss_norm="delta")
    loss, metrics = recipe_loss(recipe)(Oracle(frames), batch)
    assert float(loss.detach()) == 0.0 and metrics["nrmse"] == 0.0


def test_random_depth_mixes_one_step_windows_into_pushforward(tiny, toy_sets):
    """random_depth: each batch unrolls 1 or 2 steps, a pure function of its seed; a depth-1
    batch is the plain one-step loss on the true window (Brandstetter et al.'s unrolling
    list starts at 0 extra steps), and the fixed recipe always unrolls both."""
    src = SeededBatches(system_batches(toy_sets[:1], batch_size=3, seed=1), seed=4)
    batches = [src.get(step, 0) for step in range(24)]
    recipe = TrainRecipe(rollout_steps=2, pushforward=True, random_depth=True)
    depths = []
    for b in batches:
        rec = Recorder(tiny)
        recipe_loss(recipe)(rec, b)
        depths.append(len(rec.inputs))
        if len(rec.inputs) == 1:
            torch.testing.assert_close(rec.inputs[0], b["x"])  # every frame true
    assert set(depths) == {1, 2} and 6 <= depths.count(1) <= 18
    again = []
    for b in batches[:6]:
        rec = Recorder(tiny)
        recipe_loss(recipe)(rec, b)
        again.append(len(rec.inputs))
    assert again == depths[:6]  # resumed runs draw the same depths
    fixed = Recorder(tiny)
    for b in batches[:6]:
        recipe_loss(TrainRecipe(rollout_steps=2, pushforward=True))(fixed, b)
    assert len(fixed.inputs) == 12
    with pytest.raises(ValueError, match="noise_seed"):
        recipe_loss(recipe)(tiny, _batch(toy_sets, seed_source=False))
