"""Data preparation, the toy survey and batch sources are deterministic and shaped right."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scifm.astroclip.augment import augment_images
from scifm.astroclip.config import ImageEncoderConfig, SpecFormerConfig
from scifm.astroclip.data import (
    Galaxies,
    prepare_images,
    prepare_spectra,
    split_indices,
    toy_survey,
)
from scifm.core import DatasetBatches


def test_toy_survey_is_deterministic_in_seed():
    a, b, c = toy_survey(8, seed=1), toy_survey(8, seed=1), toy_survey(8, seed=2)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.spectra, b.spectra)
    assert not np.allclose(a.redshift, c.redshift)
    assert a.images.shape == (8, 152, 152, 3) and a.spectra.shape == (8, 7781)
    assert len(set(a.targetid) & set(c.targetid)) == 0


def test_galaxies_rejects_wrong_shapes():
    g = toy_survey(2)
    with pytest.raises(ValueError, match="spectra"):
        Galaxies(g.images, g.spectra[:, :100], g.redshift, g.targetid)


def test_prepare_images_centre_crop_and_pool():
    cfg = ImageEncoderConfig(crop=32, downsample=2, widths=(8, 16))
    img = np.zeros((1, 152, 152, 3), np.float32)
    img[0, 60:92, 60:92, 1] = 1.0  # exactly the centre 32 x 32 crop
    x = prepare_images(img, cfg)
    assert x.shape == (1, 3, 16, 16)
    torch.testing.assert_close(x[0, 1], torch.ones(16, 16))
    assert float(x[0, 0].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="expected"):
        prepare_images(img[..., :2], cfg)


def test_prepare_spectra_bins_by_mean():
    cfg = SpecFormerConfig.preset("tiny")
    s = np.arange(7781, dtype=np.float32)[None]
    x = prepare_spectra(s, cfg)
    assert x.shape == (1, cfg.n_bins)
    assert float(x[0, 0]) == pytest.approx(np.mean(np.arange(cfg.downsample)))
    with pytest.raises(ValueError, match="7781"):
        prepare_spectra(s[:, :7000], cfg)


def test_split_is_disjoint_complete_and_repeatable():
    tr, te = split_indices(100, 0.2, seed=3)
    assert len(te) == 20 and len(np.intersect1d(tr, te)) == 0
    assert sorted(np.concatenate([tr, te])) == list(range(100))
    np.testing.assert_array_equal(te, split_indices(100, 0.2, seed=3)[1])


def test_batches_are_a_pure_function_of_position():
    cfg = ImageEncoderConfig.preset("tiny")
    x = torch.randn(40, 3, cfg.input_size, cfg.input_size)

    def make(idx, gen):
        return {"v": augment_images(x[torch.from_numpy(idx)], cfg, gen)}

    b1, b2 = (DatasetBatches(range(40), 8, 5, make=make) for _ in range(2))
    torch.testing.assert_close(b1.get(7, 0, 0, 1)["v"], b2.get(7, 0, 0, 1)["v"])
    assert not torch.allclose(b1.get(7, 0, 0, 1)["v"], b1.get(8, 0, 0, 1)["v"])


def test_augmentations_preserve_total_flux_without_noise():
    cfg = ImageEncoderConfig.preset("tiny").geometric
    x = torch.rand(6, 3, 16, 16)
    y = augment_images(x, cfg, torch.Generator().manual_seed(0))
    torch.testing.assert_close(y.sum((2, 3)), x.sum((2, 3)))
