"""AViT: published sizes, shapes, RevIN and periodic-shift invariants, field expansion."""

from __future__ import annotations

import pytest
import torch

from scifm.core import load_model, save_checkpoint
from scifm.mpp import AViT, AViTConfig
from scifm.mpp.position import t5_bucket, wrap_offsets

REFERENCE_PARAMS = {"Ti": 7.3e6, "S": 29e6, "B": 116e6, "L": 407e6}  # spec, n_states = 12


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_paper_presets_match_reference_parameter_counts(name):
    with torch.device("meta"):
        model = AViT(AViTConfig.preset(name))
    assert model.config.n_states == 12
    assert abs(model.n_params() / REFERENCE_PARAMS[name] - 1) < 0.02


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return AViT(AViTConfig.preset("tiny", predict_delta=False)).eval()  # the paper's head


@pytest.mark.parametrize(("t", "c", "res"), [(4, 2, 32), (2, 1, 16), (6, 4, 24)])
def test_output_shape(tiny, t, c, res):
    x = torch.randn(3, t, c, res, 2 * res)
    y = tiny(x, list(range(c)), periodic=False)
    assert y.shape == (3, c, res, 2 * res)
    assert torch.isfinite(y).all()


def test_patch16_stem_shapes():
    cfg = AViTConfig.preset("tiny", patch_size=16)
    model = AViT(cfg)
    assert model(torch.randn(1, 2, 3, 32, 64), [6, 7, 8]).shape == (1, 3, 32, 64)


def test_bad_inputs_name_the_problem(tiny):
    with pytest.raises(ValueError, match="multiples of patch 8"):
        tiny(torch.randn(1, 4, 2, 30, 32), [0, 1])
    with pytest.raises(ValueError, match="one slot per"):
        tiny(torch.randn(1, 4, 2, 32, 32), [0])
    with pytest.raises(ValueError, match="add_fields"):
        tiny(torch.randn(1, 4, 1, 32, 32), [12])
    with pytest.raises(ValueError, match="n_heads"):
        AViTConfig(d_model=32, n_heads=3)


@pytest.mark.parametrize("delta", [False, True])
def test_revin_makes_prediction_equivariant_to_per_field_affine_maps(delta):
    torch.manual_seed(0)
    model = AViT(AViTConfig.preset("tiny", predict_delta=delta)).double().eval()  # float64
    torch.nn.init.normal_(model.decoder.out_weight, std=0.1)  # delta mode starts at zero
    x = torch.randn(2, 4, 2, 32, 32, dtype=torch.float64)
    scale = torch.tensor([30.0, 0.5], dtype=torch.float64).view(1, 1, 2, 1, 1)
    shift = torch.tensor([-5.0, 100.0], dtype=torch.float64).view(1, 1, 2, 1, 1)
    with torch.no_grad():
        y = model(x, [4, 5])
        y2 = model(x * scale + shift, [4, 5])
    # exact but for the 1e-7 added to each std: error ~ scale * 1e-7 / std
    torch.testing.assert_close(y2, y * scale[:, 0] + shift[:, 0], rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("delta", [False, True])
def test_a_fluid_at_rest_stays_finite_and_at_rest(delta):
    # the reference's RMS instance norm divides a flat map by eps (1e8 x) and returned NaN
    torch.manual_seed(0)
    model = AViT(AViTConfig.preset("tiny", predict_delta=delta)).eval()
    torch.nn.init.normal_(model.decoder.out_weight, std=0.1)
    with torch.no_grad():
        for x in (torch.full((1, 4, 2, 32, 32), 1.7), torch.zeros(1, 4, 2, 32, 32)):
            torch.testing.assert_close(model(x, [4, 5]), x[:, -1], atol=1e-5, rtol=1e-5)
        uniform = torch.ones(1, 4, 2, 32, 32) * torch.arange(4.0).view(1, 4, 1, 1, 1)
        assert torch.isfinite(model(uniform, [4, 5])).all()  # flat in space, not in time


def test_flat_maps_only_are_left_undivided():
    from scifm.mpp.stem import RMSInstanceNorm2d

    norm = RMSInstanceNorm2d(2)
    x = torch.randn(3, 2, 8, 8) * 1e-3 + 5.0  # small spread on a large mean: still divided
    x[1, 0] = 5.0  # flat
    y = norm(x)
    torch.testing.assert_close(y[0], x[0] / (x[0].std(dim=(-2, -1), keepdim=True) + 1e-8))
    torch.testing.assert_close(y[1, 0], x[1, 0])


def test_map_std_is_tensor_std_and_has_a_gradient_on_flat_maps():
    from scifm.mpp.stem import map_std

    x = torch.randn(3, 4, 8, 8, dtype=torch.float64) * 1e-3 + 5.0  # small spread, large mean
    torch.testing.assert_close(map_std(x), x.std(dim=(-2, -1), keepdim=True))
    torch.testing.assert_close(map_std(x.transpose(-2, -1)), x.std(dim=(-2, -1), keepdim=True))
    assert torch.isnan(map_std(torch.ones(2, 1, 1))).all()  # one pixel: no spread, as std
    flat = torch.full((1, 1, 8, 8), 2.5, requires_grad=True)
    map_std(flat).sum().backward()
    assert torch.isfinite(flat.grad).all()  # Tensor.std's gradient there is NaN


def test_pointwise_is_the_1x1_convolution():
    from scifm.mpp.blocks import pointwise

    for bias in (True, False):
        conv = torch.nn.Conv2d(6, 9, 1, bias=bias)
        x = torch.randn(5, 6, 4, 7).transpose(-2, -1)  # any layout
        torch.testing.assert_close(pointwise(conv, x), conv(x))


def test_stem_from_fields_is_the_embedding_then_the_stem(tiny):
    x = torch.randn(3, 2, 32, 16)  # (N, C, H, W): two fields in slots 4 and 5
    idx = torch.tensor([4, 5])
    with torch.no_grad():
        weight, bias = tiny.embed.affine(idx)
        fused = tiny.stem.from_fields(x, weight, bias)
        embedded = tiny.embed(x.permute(0, 2, 3, 1), idx).permute(0, 3, 1, 2)  # (N, D/4, H, W)
        torch.testing.assert_close(fused, tiny.stem(embedded), rtol=1e-5, atol=1e-5)


def test_inference_runs_the_last_block_on_the_last_frame_only(tiny):
    x = torch.randn(2, 4, 2, 32, 32)
    with torch.no_grad():
        full = tiny.encode(x, [4, 5], True)[0]
        last = tiny.encode(x, [4, 5], True, last_only=True)[0]
        assert full.shape[1] == 4 and last.shape[1] == 1
        torch.testing.assert_close(last, full[:, -1:], rtol=1e-5, atol=1e-6)
        y = tiny(x, [4, 5], periodic=True)  # eval mode: the pruned path
        _, idx, std, mean = tiny.encode(x, [4, 5], True)
        torch.testing.assert_close(y, tiny.decoder(full[:, -1], idx) * std[:, 0] + mean[:, 0])
    tiny.train()
    try:  # training runs every frame through every block (DropPath's masks are per frame)
        assert tiny(x, [4, 5], periodic=True).shape == y.shape
    finally:
        tiny.eval()


def test_periodic_model_commutes_with_shifts_by_whole_patches(tiny):
    x = torch.randn(1, 4, 2, 32, 32)
    shift = (8, 16)  # multiples of the patch (8): token grid rolls by (1, 2)
    with torch.no_grad():
        rolled_in = tiny(torch.roll(x, shift, dims=(-2, -1)), [4, 5], periodic=True)
        rolled_out = torch.roll(tiny(x, [4, 5], periodic=True), shift, dims=(-2, -1))
        open_in = tiny(torch.roll(x, shift, dims=(-2, -1)), [4, 5], periodic=False)
    torch.testing.assert_close(rolled_in, rolled_out, rtol=1e-4, atol=1e-4)
    # without wrapping the bias knows where the edges are (after training it would differ a
    # lot; at init the bias is small but nonzero)
    assert not torch.allclose(open_in, rolled_out, atol=1e-7)


def test_delta_head_starts_at_persistence():
    model = AViT(AViTConfig.preset("tiny", predict_delta=True)).eval()
    x = torch.randn(2, 4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x, [1, 2, 3]), x[:, -1])


def test_wrap_and_buckets():
    rel = torch.arange(-7, 8)
    wrapped = wrap_offsets(rel, 8)
    assert wrapped.min() >= -4 and wrapped.max() < 4
    assert torch.equal(torch.remainder(wrapped - rel, 8), torch.zeros_like(rel))
    b = t5_bucket(torch.arange(-200, 201), 32, 128)
    assert b.min() >= 0 and b.max() < 32
    assert t5_bucket(torch.tensor([3]), 32, 128) != t5_bucket(torch.tensor([-3]), 32, 128)


def test_add_fields_keeps_old_predictions_and_round_trips(tmp_path):
    torch.manual_seed(1)
    model = AViT(AViTConfig.preset("tiny", predict_delta=False)).eval()
    x = torch.randn(2, 4, 2, 32, 32)
    with torch.no_grad():
        before = model(x, [4, 5])
    slots = model.add_fields(2)
    assert slots == [12, 13] and model.config.n_states == 14
    with torch.no_grad():
        after = model(x, [4, 5])
        new = model(x, slots)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    assert new.shape == x[:, 0].shape
    save_checkpoint(tmp_path / "ck", model, model.config)
    cfg, loaded = load_model(tmp_path / "ck")
    assert cfg.n_states == 14
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, slots), new)


@pytest.mark.parametrize("delta", [False, True])
def test_every_parameter_gets_a_gradient(delta):
    """DDP (torchrun) fails on parameters that never receive a gradient."""
    model = AViT(AViTConfig.preset("tiny", predict_delta=delta))
    x = torch.randn(2, 4, 2, 16, 16)
    (model(x, [4, 5], periodic=True) - x[:, -1]).pow(2).mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_autocast_matches_fp32():
    from scifm.core import autocast

    torch.manual_seed(0)
    model = AViT(AViTConfig.preset("tiny", predict_delta=False)).eval()
    x = torch.randn(2, 4, 2, 32, 32)
    with torch.no_grad():
        ref = model(x, [4, 5], True)
        dev = torch.device("cuda")
        model, xd = model.to(dev), x.to(dev)
        with autocast(dev):
            y = model(xd, [4, 5], True).float().cpu()
    assert torch.isfinite(y).all()
    assert float((y - ref).norm() / ref.norm()) < 0.05


def test_field_slots_are_checked_once_per_list_and_every_time_as_a_tensor():
    tiny = AViT(AViTConfig.preset("tiny")).eval()
    x = torch.randn(1, 4, 2, 16, 16)
    with torch.no_grad():
        a = tiny(x, [4, 5], True)
        b = tiny(x, (4, 5), True)  # the same slots as a tuple: one remembered entry
    torch.testing.assert_close(a, b)
    assert len(tiny._slots) == 1
    with pytest.raises(ValueError, match="field_index"):
        tiny(x, [4, 999], True)  # a bad list is refused, and not remembered
    with pytest.raises(ValueError, match="field_index"):
        tiny(x, torch.tensor([4, 999]), True)
    assert len(tiny._slots) == 1
    with torch.no_grad():  # a collated (B, C) list is checked as before, not remembered
        torch.testing.assert_close(tiny(x, [[4, 5]], True), a)
    assert len(tiny._slots) == 1


def test_slots_first_seen_in_inference_mode_still_train():
    model = AViT(AViTConfig.preset("tiny"))
    x = torch.randn(1, 4, 2, 16, 16)
    with torch.inference_mode():
        model(x, [4, 5], True)
    model(x, [4, 5], True).pow(2).mean().backward()  # the remembered slots are normal tensors
    assert all(p.grad is not None for p in model.parameters())


def test_a_captured_step_needs_a_cuda_example(tiny):
    from scifm.mpp import cuda_graph_step

    with pytest.raises(ValueError, match="CUDA"):
        cuda_graph_step(tiny, [4, 5], True, torch.randn(1, 4, 2, 16, 16))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_rollout_matches_the_eager_rollout():
    from scifm.mpp import cuda_graph_step, model_step, rollout

    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = AViT(AViTConfig.preset("tiny")).eval().to(dev)
    ctx = torch.randn(2, 4, 2, 32, 32, device=dev)
    eager, _ = rollout(model_step(model, [4, 5], True), ctx, 5)
    step = cuda_graph_step(model, [4, 5], True, ctx)
    graphed, _ = rollout(step, ctx, 5)
    torch.testing.assert_close(graphed, eager)
    with pytest.raises(ValueError, match="captured step takes"):
        step(ctx[:1])
    with pytest.raises(ValueError, match="warmup"):
        cuda_graph_step(model, [4, 5], True, ctx, warmup=0)
    model.half()  # replaced tensors: the old graph must not replay them
    with pytest.raises(RuntimeError, match="capture a new step"):
        step(ctx)


def test_fast_model_step_is_the_eager_step_off_cuda(tiny):
    from scifm.mpp import fast_model_step, model_step, rollout

    torch.manual_seed(0)
    ctx = torch.randn(2, 4, 2, 16, 16)
    step = fast_model_step(tiny.eval(), [4, 5], True, ctx)
    assert not hasattr(step, "holds")  # no capture on the CPU
    fast, _ = rollout(step, ctx, 3)
    eager, _ = rollout(model_step(tiny, [4, 5], True), ctx, 3)
    torch.testing.assert_close(fast, eager)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fast_model_step_captures_on_cuda_and_falls_back_with_a_warning(monkeypatch):
    import scifm.mpp.rollout as ro

    torch.manual_seed(0)
    model = AViT(AViTConfig.preset("tiny")).eval().to("cuda")
    ctx = torch.randn(1, 4, 2, 32, 32, device="cuda")
    step = ro.fast_model_step(model, torch.tensor([4, 5]), True, ctx)  # slots as a tensor too
    assert hasattr(step, "holds")
    torch.testing.assert_close(
        ro.rollout(step, ctx, 4)[0], ro.rollout(ro.model_step(model, [4, 5], True), ctx, 4)[0]
    )

    def broken(*a, **k):
        raise RuntimeError("capture not supported")

    monkeypatch.setattr(ro, "cuda_graph_step", broken)
    with pytest.warns(UserWarning, match="stepping eagerly"):
        eager = ro.fast_model_step(model, [4, 5], True, ctx)
    assert not hasattr(eager, "holds")
