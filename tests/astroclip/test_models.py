"""Shapes, invariants and overfit checks of the image encoder, SpecFormer, heads and loss."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from scifm.astroclip.config import AstroClipConfig, ImageEncoderConfig, SpecFormerConfig
from scifm.astroclip.data import prepare_images, toy_survey
from scifm.astroclip.embed import spectrum_features, spectrum_poolings
from scifm.astroclip.image_encoder import ImageEncoder, ImageSSL
from scifm.astroclip.losses import clip_loss
from scifm.astroclip.model import AstroClip, CrossAttentionHead, SegmentHead
from scifm.astroclip.specformer import (
    SpecFormer,
    binned_input,
    chunk_mask,
    pool_tokens,
    standardize,
)
from scifm.core import load_model, save_checkpoint


def test_presets_validate_and_round_trip():
    for name in ("tiny", "small", "paper"):
        cfg = AstroClipConfig.preset(name)
        assert AstroClipConfig.from_dict(json.loads(cfg.to_json())) == cfg
    with pytest.raises(ValueError, match="crop"):
        ImageEncoderConfig(crop=200)
    with pytest.raises(ValueError, match="n_heads"):
        SpecFormerConfig(d_model=30, n_heads=4)


def test_image_encoder_shapes():
    cfg = ImageEncoderConfig.preset("tiny")
    enc = ImageEncoder(cfg)
    x = torch.rand(3, 3, cfg.input_size, cfg.input_size)
    assert enc(x).shape == (3, cfg.n_tokens, cfg.d_model)
    with pytest.raises(ValueError, match="expected"):
        enc(torch.rand(3, 3, 8, 8))


def test_specformer_tokens_follow_the_paper():
    cfg = SpecFormerConfig.preset("tiny")
    model = SpecFormer(cfg)
    s = torch.randn(2, cfg.n_bins) * 3 + 5
    win, stats = model.windows(s)
    assert stats.shape == (2, 2)
    assert win.shape == (2, cfg.n_tokens, cfg.window)
    z, _ = standardize(s, cfg.std_floor)
    torch.testing.assert_close(win[:, 1], z[:, cfg.stride : cfg.stride + cfg.window])
    assert model(s).shape == (2, 1 + cfg.n_tokens, cfg.d_model)
    # A flat spectrum has std 0: the floor keeps it finite.
    assert torch.isfinite(model(torch.ones(1, cfg.n_bins))).all()


def test_poolings_keep_or_drop_where_a_feature_sits():
    """seg<K> tells apart two spectra whose tokens differ only in order; mean cannot."""
    tok = torch.randn(1, 1 + 8, 3)
    swapped = torch.cat([tok[:, :1], tok[:, 5:], tok[:, 1:5]], 1)  # halves exchanged
    torch.testing.assert_close(pool_tokens(tok), pool_tokens(swapped))
    assert not torch.allclose(pool_tokens(tok, "seg2"), pool_tokens(swapped, "seg2"))
    torch.testing.assert_close(pool_tokens(tok, "seg2")[0, :3], tok[0, 1:5].mean(0))
    assert pool_tokens(tok, "mean_std").shape == (1, 6)
    torch.testing.assert_close(pool_tokens(tok, "first"), tok[:, 0])
    torch.testing.assert_close(pool_tokens(tok, "seg8").reshape(8, 3), tok[0, 1:])
    for bad in ("median", "seg0", "seg9", "segx"):
        with pytest.raises(ValueError, match="pooling="):
            pool_tokens(tok, bad)
    cfg = SpecFormerConfig.preset("tiny")
    model = SpecFormer(cfg).eval()
    s = torch.randn(5, cfg.n_bins) + 3
    feats = spectrum_poolings(model, s, ["mean", "seg4"], batch_size=2)
    assert feats["seg4"].shape == (5, 4 * cfg.d_model)
    with torch.no_grad():
        ref = model.embed(s).numpy()
    assert abs(feats["mean"] - ref).max() < 1e-5
    assert abs(spectrum_features(model, s, pooling="seg4") - feats["seg4"]).max() < 1e-5
    with pytest.raises(ValueError, match="pooling='max'"):
        spectrum_poolings(model, s, ["mean", "max"])


def test_binned_input_averages_the_standardized_spectrum():
    s = torch.arange(10.0)[None].repeat(2, 1)
    z, _ = standardize(s, 0.2)
    b = binned_input(s, 0.2, 3)  # three segments of 3 pixels, the last pixel dropped
    torch.testing.assert_close(b, z[:, :9].reshape(2, 3, 3).mean(2))
    with pytest.raises(ValueError, match="n_bins=11"):
        binned_input(s, 0.2, 11)


def test_chunk_mask_masks_contiguous_chunks():
    cfg = SpecFormerConfig.preset("tiny")
    m = chunk_mask(cfg, 50, torch.Generator().manual_seed(0))
    assert m.shape == (50, cfg.n_tokens)
    counts = m.sum(1)
    assert (counts >= cfg.mask_chunk).all()
    assert (counts <= cfg.n_mask_chunks * cfg.mask_chunk).all()


def test_clip_loss_collapse_gives_log_batch_and_is_symmetric():
    b = 12
    same = torch.ones(b, 8)
    assert float(clip_loss(same, same, 15.5)) == pytest.approx(math.log(b), rel=1e-5)
    a, s = torch.randn(b, 8), torch.randn(b, 8)
    assert float(clip_loss(a, s, 15.5)) == pytest.approx(float(clip_loss(s, a, 15.5)), rel=1e-6)


def test_clip_loss_matches_a_loop_reference():
    a, s = torch.randn(5, 4), torch.randn(5, 4)
    an, sn = F.normalize(a, dim=1), F.normalize(s, dim=1)
    total = 0.0
    for i in range(5):
        row = torch.stack([10 * an[i] @ sn[j] for j in range(5)])
        col = torch.stack([10 * an[j] @ sn[i] for j in range(5)])
        total += -(row[i] - torch.logsumexp(row, 0)) - (col[i] - torch.logsumexp(col, 0))
    assert float(clip_loss(a, s, 10.0)) == pytest.approx(float(total) / 10, rel=1e-5)


def test_moco_key_encoder_is_an_ema_and_queue_advances():
    cfg = ImageEncoderConfig.preset("tiny").replace(momentum=0.9)
    m = ImageSSL(cfg)
    with torch.no_grad():
        for p in m.encoder.parameters():
            p.add_(1.0)
    q0 = next(m.encoder.parameters()).clone()
    k0 = next(m.key_encoder.parameters()).clone()
    x = torch.rand(4, 3, cfg.input_size, cfg.input_size)
    m.train()(x, x)
    torch.testing.assert_close(next(m.key_encoder.parameters()), 0.9 * k0 + 0.1 * q0)
    assert int(m.queue_ptr) == 4


def _overfit(model, loss_of, steps=60, lr=3e-3):
    torch.manual_seed(0)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    first = None
    for _ in range(steps):
        loss = loss_of()
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    return first, float(loss_of())


def test_specformer_overfits_one_batch():
    torch.manual_seed(0)
    cfg = SpecFormerConfig.preset("tiny")
    model = SpecFormer(cfg)
    s = torch.randn(4, cfg.n_bins).cumsum(1)
    mask = chunk_mask(cfg, 4, torch.Generator().manual_seed(1))
    first, last = _overfit(model, lambda: model.masked_loss(s, mask), steps=80)
    assert last < 0.3 * first


@pytest.mark.parametrize("head", ["attention", "seg4"])
def test_alignment_heads_overfit_one_batch_of_pairs(head):
    torch.manual_seed(0)
    cfg = AstroClipConfig.preset("tiny").replace(spectrum_head=head)
    model = AstroClip(cfg).train()
    x = prepare_images(toy_survey(8, seed=3).images, cfg.image)
    s = torch.randn(8, cfg.spectrum.n_bins)
    # An untrained encoder's BatchNorm statistics map all galaxies to nearly the same
    # tokens; calibrate them on the batch as pretraining would.
    model.image_encoder.train()
    with torch.no_grad():
        for _ in range(20):
            model.image_encoder(x)
    model.image_encoder.eval()
    first, last = _overfit(model, lambda: model(x, s)["loss"], steps=80)
    assert first > 1.5 and last < 0.3
    assert all(not p.requires_grad for p in model.image_encoder.parameters())


def test_image_ssl_query_encoder_overfits_one_batch():
    torch.manual_seed(0)
    cfg = ImageEncoderConfig.preset("tiny").replace(queue_size=16, momentum=0.5)
    # eval mode: no EMA update or enqueueing (a repeated batch would fill the queue with its
    # own keys); the query encoder must learn to pick its key among the queue's negatives.
    model = ImageSSL(cfg).eval()
    with torch.no_grad():  # a key encoder unlike the query encoder: something to learn
        for k in model.key_projector.parameters():
            k.copy_(torch.randn_like(k) * 0.5)
    x = torch.rand(16, 3, cfg.input_size, cfg.input_size)
    first, last = _overfit(model, lambda: model(x, x.flip(3))["loss"], steps=40)
    assert last < 0.5 * first


def test_segment_head_reads_where_a_token_sits_and_attention_does_not():
    torch.manual_seed(0)
    d, t = 8, 12
    seg = SegmentHead(d_in=d, n_segments=4, embed_dim=16, mlp_ratio=2).eval()
    att = CrossAttentionHead(d_in=d, embed_dim=16, n_heads=2, mlp_ratio=2).eval()
    tokens = torch.randn(3, 1 + t, d)
    swapped = tokens.clone()  # a window token of the first segment traded with one of the last
    swapped[:, [1, t]] = tokens[:, [t, 1]]
    with torch.no_grad():
        torch.testing.assert_close(att(tokens), att(swapped))  # a set: order is invisible
        assert (seg(tokens) - seg(swapped)).abs().max() > 1e-3
        shuffled = tokens.clone()  # order inside one segment (tokens 1-3) is averaged away
        shuffled[:, [1, 2, 3]] = tokens[:, [3, 1, 2]]
        torch.testing.assert_close(seg(tokens), seg(shuffled))


@pytest.mark.parametrize("head", ["seg0", "seg48", "segx", "mean", ""])
def test_spectrum_head_names_are_checked(head):
    with pytest.raises(ValueError, match="spectrum_head"):
        AstroClipConfig.preset("tiny").replace(spectrum_head=head)  # tiny: 47 window tokens


@pytest.mark.parametrize("head", ["attention", "seg4"])
def test_astroclip_checkpoint_round_trip(tmp_path, head):
    cfg = AstroClipConfig.preset("tiny").replace(spectrum_head=head)
    model = AstroClip(cfg).eval()
    save_checkpoint(tmp_path / "m", model, cfg)
    cfg2, model2 = load_model(tmp_path / "m")
    assert cfg2 == cfg
    s = torch.randn(2, cfg.spectrum.n_bins)
    torch.testing.assert_close(model.embed_spectra(s), model2.embed_spectra(s))


@pytest.mark.parametrize("blocks", [-1, 3, 1.5, True, "1"])  # tiny: 2 residual blocks
def test_image_finetune_blocks_are_checked(blocks):
    with pytest.raises(ValueError, match="image_finetune_blocks"):
        AstroClipConfig.preset("tiny").replace(image_finetune_blocks=blocks)


def test_image_finetune_trains_the_top_blocks_only():
    """With image_finetune_blocks=1 one step moves the image encoder's top block and token
    projection, never its lower block, its BatchNorm statistics or the SpecFormer."""
    torch.manual_seed(0)
    cfg = AstroClipConfig.preset("tiny").replace(image_finetune_blocks=1)
    model = AstroClip(cfg).train()
    enc = model.image_encoder
    assert not enc.training and not model.spectrum_encoder.training  # BatchNorm frozen
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("stages.1.", "to_tokens.", "norm.")) for n in trainable)
    assert not any(p.requires_grad for p in model.spectrum_encoder.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = prepare_images(toy_survey(8, seed=3).images, cfg.image)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(x, torch.randn(8, cfg.spectrum.n_bins))["loss"].backward()
    opt.step()
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("image_encoder.stages.1.") for k in moved)
    assert any(k.startswith("image_head.") for k in moved)
    assert not any(
        k.startswith(("image_encoder.stages.0.", "image_encoder.stem.", "spectrum_encoder."))
        or "running_" in k
        for k in moved
    )
    frozen = AstroClip(AstroClipConfig.preset("tiny"))  # the default: encoders all frozen
    assert not any(p.requires_grad for p in frozen.image_encoder.parameters())
