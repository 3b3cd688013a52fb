"""The image encoder's self-supervision: native 64 px input, astronomy views, MoCo and VICReg."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from scifm.astroclip.augment import FWHM_PER_SIGMA, augment_images, noise_level
from scifm.astroclip.config import AstroClipConfig, ImageEncoderConfig
from scifm.astroclip.data import prepare_images, toy_survey
from scifm.astroclip.image_encoder import ImageEncoder, ImageSSL
from scifm.astroclip.losses import vicreg_loss
from scifm.astroclip.train import EVAL_FILE, pretrain_image
from scifm.cli import main
from scifm.core import TrainConfig, load_model
from scifm.core.checkpoint import read_record


def _cfg(**changes) -> ImageEncoderConfig:
    """The tiny preset with every augmentation off, then ``changes``."""
    off = {"psf_fwhm": (0.0, 0.0), "noise_scale": (0.0, 0.0), "shift_max": 0}
    return ImageEncoderConfig.preset("tiny").replace(**{**off, **changes})


def _blob(b: int = 4, s: int = 32, sigma: float = 2.0) -> torch.Tensor:
    """(b, 3, s, s) centred round Gaussians of pixel sigma ``sigma``, unit flux per band x k."""
    yy, xx = torch.meshgrid(torch.arange(s) - (s - 1) / 2, torch.arange(s) - (s - 1) / 2,
                            indexing="ij")  # fmt: skip
    g = torch.exp(-0.5 * (yy**2 + xx**2) / sigma**2)
    g = g / g.sum()
    return g.expand(b, 3, s, s) * torch.tensor([1.0, 2.0, 4.0]).view(1, 3, 1, 1)


def _second_moment(x: torch.Tensor) -> torch.Tensor:
    """<r^2>/2 of each image plane (B, C): the sigma^2 of a round Gaussian."""
    s = x.shape[-1]
    c = torch.arange(s) - (s - 1) / 2
    r2 = c[:, None] ** 2 + c[None, :] ** 2
    return (x * r2).sum((-2, -1)) / x.sum((-2, -1)) / 2


def test_evidence_preset_sees_the_native_64px_crop():
    cfg = AstroClipConfig.preset("evidence").image
    assert (cfg.crop, cfg.downsample, cfg.input_size) == (64, 1, 64)
    assert cfg.pixel_scale == pytest.approx(0.262)
    assert AstroClipConfig.preset("small").image.input_size == 32  # the demo model's size
    g = toy_survey(2, seed=4)
    x = prepare_images(g.images, cfg)
    assert x.shape == (2, 3, 64, 64)
    np.testing.assert_array_equal(x.permute(0, 2, 3, 1).numpy(), g.images[:, 44:108, 44:108])
    enc = ImageEncoder(cfg).eval()
    assert enc(x).shape == (2, cfg.n_tokens, cfg.d_model) and cfg.n_tokens == 64


def test_wrong_image_size_is_an_error_naming_the_shape(tmp_path):
    cfg = ImageEncoderConfig.preset("evidence")
    with pytest.raises(ValueError, match=r"\(2, 3, 32, 32\).*\(B, 3, 64, 64\)"):
        ImageEncoder(cfg)(torch.zeros(2, 3, 32, 32))
    tc = TrainConfig(steps=1, progress=False)
    with pytest.raises(ValueError, match=r"\(8, 3, 32, 32\).*\(N, 3, 64, 64\)"):
        pretrain_image(torch.zeros(8, 3, 32, 32), cfg, tc, batch_size=4, out_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()  # nothing written on failure


def test_config_validates_method_and_augmentations_and_reads_old_checkpoints():
    with pytest.raises(ValueError, match="method='simclr'"):
        ImageEncoderConfig(method="simclr")
    with pytest.raises(ValueError, match="psf_fwhm"):
        ImageEncoderConfig(psf_fwhm=(1.0, 0.5))
    with pytest.raises(ValueError, match="shift_max"):
        ImageEncoderConfig.preset("tiny", shift_max=8)
    # a checkpoint written before the explicit augmentation set (the shipped demo model's)
    old = {**ImageEncoderConfig().to_dict(), "noise_sigma": 0.005, "gain_jitter": 0.05}
    assert ImageEncoderConfig.from_dict(old) == ImageEncoderConfig()
    with pytest.raises(ValueError, match="unknown field"):
        ImageEncoderConfig.from_dict({"colour_jitter": 0.1})


def test_rotations_and_flips_are_exact():
    x = torch.rand(16, 3, 16, 16)
    y = augment_images(x, _cfg(), torch.Generator().manual_seed(1))
    seen = set()
    for xi, yi in zip(x, y):
        views = [torch.rot90(xi, k, (-2, -1)) for k in range(4)]
        views += [v.flip(-1) for v in views]
        hits = [i for i, v in enumerate(views) if torch.equal(v, yi)]
        assert hits, "an output is not a dihedral transform of its input"
        seen.add(hits[0])
    assert len(seen) > 3  # the group is sampled, not one fixed transform


def test_shifts_are_small_cyclic_and_keep_every_pixel():
    x = torch.rand(12, 3, 16, 16)
    cfg = _cfg(shift_max=2)
    y = augment_images(x, cfg, torch.Generator().manual_seed(2))
    shifts = set()
    for xi, yi in zip(x, y):
        found = [(dy, dx, k, m) for dy in range(-2, 3) for dx in range(-2, 3)
                 for k in range(4) for m in (False, True)
                 if torch.equal(torch.roll((lambda v: v.flip(-1) if m else v)(
                     torch.rot90(xi, k, (-2, -1))), (dy, dx), (-2, -1)), yi)]  # fmt: skip
        assert found
        shifts.add(found[0][:2])
    assert len(shifts) > 2
    torch.testing.assert_close(y.sum((2, 3)), x.sum((2, 3)))


def test_psf_blur_adds_its_width_in_quadrature_and_keeps_flux_and_colour():
    fwhm = 0.8  # arcsec, a fixed range so the expected width is exact
    cfg = _cfg(psf_fwhm=(fwhm, fwhm))
    x = _blob(sigma=2.0)
    y = augment_images(x, cfg, torch.Generator().manual_seed(3))
    sigma_psf = fwhm / FWHM_PER_SIGMA / cfg.pixel_scale  # pixels (tiny: 0.524" each)
    expected = 2.0**2 + sigma_psf**2
    torch.testing.assert_close(_second_moment(y), torch.full((4, 3), expected), rtol=0.02, atol=0)
    torch.testing.assert_close(y.sum((2, 3)), x.sum((2, 3)), rtol=1e-4, atol=0)
    ratios = y.sum((2, 3)) / y.sum((2, 3))[:, :1]
    torch.testing.assert_close(ratios, torch.tensor([1.0, 2.0, 4.0]).expand(4, 3))
    # a range: each image gets its own width, inside the range
    lo, hi = (f / FWHM_PER_SIGMA / cfg.pixel_scale for f in (1.0, 2.0))
    yr = augment_images(x, _cfg(psf_fwhm=(1.0, 2.0)), torch.Generator().manual_seed(3))
    m = _second_moment(yr)[:, 0] - 4.0  # the added sigma^2
    assert (m > 0.98 * lo**2).all() and (m < 1.02 * hi**2).all() and m.max() - m.min() > 0.1


def test_noise_level_is_estimated_from_the_image_despite_the_galaxy():
    g = torch.Generator().manual_seed(4)
    sigma = torch.tensor([0.01, 0.02, 0.05])
    noise = torch.randn(6, 3, 64, 64, generator=g) * sigma.view(1, 3, 1, 1)
    est = noise_level(noise + 30 * _blob(6, 64, sigma=4.0))  # a bright smooth galaxy on top
    torch.testing.assert_close(est, sigma.expand(6, 3), rtol=0.06, atol=0)


def test_added_noise_scales_with_the_images_own_noise_and_keeps_flux():
    g = torch.Generator().manual_seed(5)
    sigma = torch.tensor([0.01, 0.02, 0.05])
    noise = torch.randn(8, 3, 64, 64, generator=g) * sigma.view(1, 3, 1, 1)
    x = 5 * _blob(8, 64, sigma=3.0) + noise
    y = augment_images(x, _cfg(noise_scale=(1.0, 1.0)), torch.Generator().manual_seed(6))
    # rotations/flips do not change a noise level; independent noise of the same sigma adds
    torch.testing.assert_close(noise_level(y), math.sqrt(2) * noise_level(x), rtol=0.08, atol=0)
    flux_err = (y.sum((2, 3)) - x.sum((2, 3))).abs() / (sigma * 64)  # in sigmas of the sum
    assert (flux_err < 5).all()
    clean = augment_images(x, _cfg(noise_scale=(0.0, 0.0)), torch.Generator().manual_seed(6))
    torch.testing.assert_close(clean.sum((2, 3)), x.sum((2, 3)))


def test_views_are_a_pure_function_of_the_generator():
    x = torch.rand(4, 3, 16, 16)
    cfg = ImageEncoderConfig.preset("tiny")  # every augmentation on
    a = augment_images(x, cfg, torch.Generator().manual_seed(7))
    b = augment_images(x, cfg, torch.Generator().manual_seed(7))
    c = augment_images(x, cfg, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_vicreg_loss_matches_an_elementwise_reference():
    g = torch.Generator().manual_seed(9)
    z1, z2 = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g) * 0.5
    loss, terms = vicreg_loss(z1, z2, (25.0, 25.0, 1.0))
    b, d = z1.shape
    inv = sum((z1[i, j] - z2[i, j]) ** 2 for i in range(b) for j in range(d)) / (b * d)
    var, cov = 0.0, 0.0
    for z in (z1, z2):
        mu = [sum(z[i, j] for i in range(b)) / b for j in range(d)]
        c = [[sum((z[i, j] - mu[j]) * (z[i, k] - mu[k]) for i in range(b)) / (b - 1)
              for k in range(d)] for j in range(d)]  # fmt: skip
        var += sum(max(0.0, 1 - math.sqrt(c[j][j] + 1e-4)) for j in range(d)) / d / 2
        cov += sum(c[j][k] ** 2 for j in range(d) for k in range(d) if j != k) / d
    assert float(terms["invariance"]) == pytest.approx(float(inv), rel=1e-5)
    assert float(terms["variance"]) == pytest.approx(float(var), rel=1e-5)
    assert float(terms["covariance"]) == pytest.approx(float(cov), rel=1e-5)
    assert float(loss) == pytest.approx(float(25 * inv + 25 * var + cov), rel=1e-5)


def test_vicreg_penalises_collapse_and_not_a_whitened_pair():
    same = torch.ones(8, 4)
    loss, terms = vicreg_loss(same, same)
    assert float(terms["invariance"]) == 0 and float(terms["covariance"]) == 0
    assert float(terms["variance"]) == pytest.approx(1 - math.sqrt(1e-4))  # collapse is seen
    assert float(loss) == pytest.approx(25 * (1 - math.sqrt(1e-4)))
    z = torch.tensor([[1.0, 1], [1, -1], [-1, 1], [-1, -1]]) * math.sqrt(3 / 4) * 1.01
    _, t = vicreg_loss(z, z)  # unit-variance, uncorrelated, identical views: nothing to pay
    assert all(float(v) == pytest.approx(0.0, abs=1e-6) for v in t.values())
    with pytest.raises(ValueError, match="vicreg_loss"):
        vicreg_loss(torch.zeros(4, 3), torch.zeros(4, 2))


def test_vicreg_ssl_learns_invariance_on_one_batch():
    torch.manual_seed(0)
    cfg = ImageEncoderConfig.preset("tiny", method="vicreg")
    model = ImageSSL(cfg).train()
    assert not hasattr(model, "key_encoder")  # no momentum encoder, no queue
    x = torch.rand(16, 3, cfg.input_size, cfg.input_size)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        out = model(x, x.flip(3))
        first = first or {k: float(v.detach()) for k, v in out.items()}
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    out = model(x, x.flip(3))
    assert float(out["loss"].detach()) < 0.5 * first["loss"]
    assert float(out["variance"]) < first["variance"]  # spread out, not collapsed


@pytest.mark.parametrize("method", ["moco", "vicreg"])
def test_cli_pretrain_image_checkpoints_resumes_and_scores_held_out_galaxies(
    method, tmp_path, capsys
):
    out = tmp_path / method
    args = ["astroclip", "pretrain-image", "--survey", "toy:80", "--preset", "tiny", "--quiet",
            "--method", method, "--batch-size", "16", "--out", str(out)]  # fmt: skip
    assert main([*args, "--steps", "6", "--stop-at", "4", "--eval-every", "2"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["method"] == method and res["input_size"] == 16
    assert res["split"]["n_train"] == 64 and res["split"]["n_test"] == 16
    assert -1 <= res["image_ssl_knn"]["knn_r2_redshift"] <= 1
    evals = [json.loads(line) for line in (out / EVAL_FILE).read_text().splitlines()]
    assert [e["step"] for e in evals] == [2, 4]
    rec = read_record(out / "checkpoint")
    assert rec["extra"]["split"]["n_test"] == 16
    cfg, ssl = load_model(out / "checkpoint", expect_config=ImageEncoderConfig)
    assert cfg.method == method and isinstance(ssl, ImageSSL)
    assert main([*args, "--steps", "6"]) == 0  # resumes at step 4
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["final"]["step"] == 6 and res["image_ssl_knn"]["step"] == 6


def test_cli_align_prepares_images_as_the_image_encoder_was_trained(tmp_path, capsys):
    """An encoder's own input size wins over --preset (a 64 px encoder gets 64 px images)."""
    common = ["--survey", "toy:48", "--quiet", "--batch-size", "16", "--steps", "1"]
    assert main(["astroclip", "pretrain-image", *common, "--preset", "tiny",
                 "--out", str(tmp_path / "img")]) == 0  # fmt: skip
    assert main(["astroclip", "pretrain-spectrum", *common, "--preset", "tiny",
                 "--out", str(tmp_path / "spec")]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["astroclip", "align", *common, "--preset", "small",  # small: 32 px images
                 "--image", str(tmp_path / "img"), "--spectrum", str(tmp_path / "spec"),
                 "--out", str(tmp_path / "clip")]) == 0  # fmt: skip
    cfg, _ = load_model(tmp_path / "clip" / "checkpoint", expect_config=AstroClipConfig)
    assert cfg.image.input_size == 16 and cfg.embed_dim == 128  # tiny encoder, small heads


def test_the_full_set_never_changes_colours():
    cfg = ImageEncoderConfig.preset("tiny", noise_scale=(0.0, 0.0), psf_fwhm=(0.5, 2.0))
    x = _blob(6, 16, sigma=1.5)
    y = augment_images(x, cfg, torch.Generator().manual_seed(10))
    flux = y.sum((2, 3))
    torch.testing.assert_close(flux / flux[:, :1], torch.tensor([1.0, 2.0, 4.0]).expand(6, 3))


def test_cli_pretrain_image_ckpt_every_reaches_the_trainer(tmp_path, monkeypatch, capsys):
    """A long 64 px run (about 3 CPU-s a step) must checkpoint more often than steps/4."""
    import scifm.astroclip.train as train_mod

    seen = {}
    real = train_mod.pretrain_image

    def spy(images, cfg, tc, **kw):
        seen["ckpt_every"] = tc.ckpt_every
        return real(images, cfg, tc, **kw)

    monkeypatch.setattr(train_mod, "pretrain_image", spy)
    args = ["astroclip", "pretrain-image", "--survey", "toy:48", "--preset", "tiny", "--quiet",
            "--batch-size", "16", "--steps", "8", "--out", str(tmp_path / "a")]  # fmt: skip
    assert main([*args, "--ckpt-every", "3"]) == 0 and seen["ckpt_every"] == 3
    assert main([*args[:-1], str(tmp_path / "b")]) == 0 and seen["ckpt_every"] == 2  # 8 // 4
    capsys.readouterr()
