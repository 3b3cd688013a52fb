"""Preprocessing: Legacy Surveys RGB, spectrum standardization, SSL augmentations, Dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scifm.core import torch_generator
from scifm.survey import read_survey
from scifm.survey.datasets import SurveyDataset
from scifm.survey.transforms import (
    AugmentConfig,
    augment_images,
    gaussian_blur,
    legacy_rgb,
    standardize_spectrum,
)


def test_legacy_rgb_matches_dr2_rgb_by_hand():
    img = np.zeros((2, 2, 3), np.float32)
    img[0, 0] = [0.1, 0.2, 0.3]  # g, r, z nanomaggies
    rgb = legacy_rgb(img)
    assert rgb.shape == (2, 2, 3) and rgb.min() >= 0 and rgb.max() <= 1
    scaled = np.array([0.1 * 6.0, 0.2 * 3.4, 0.3 * 2.2]) + 0.03  # g, r, z
    i = scaled.mean()
    expected = scaled * np.arcsinh(20 * i) / np.sqrt(20) / i
    np.testing.assert_allclose(rgb[0, 0], np.clip(expected[::-1], 0, 1), rtol=1e-5)  # z->R
    assert np.allclose(rgb[1, 1], rgb[1, 1, 0])  # empty sky is grey
    with pytest.raises(ValueError, match="bands"):
        legacy_rgb(np.zeros((4, 4, 2)))


def test_standardize_spectrum_clips_the_std():
    x = torch.randn(3, 7781, generator=torch_generator(0)) * 5 + 2
    z, mean, std = standardize_spectrum(x)
    assert torch.allclose(z.mean(-1), torch.zeros(3), atol=1e-4)
    assert torch.allclose(z.std(-1), torch.ones(3), atol=1e-4)
    torch.testing.assert_close(z * std + mean, x)
    flat = np.full((1, 100), 3.0, np.float32)
    z, _, std = standardize_spectrum(flat)
    assert std.item() == pytest.approx(0.2) and torch.all(z == 0)


def test_augmentations_preserve_flux_and_are_seeded():
    x = torch.rand(4, 3, 32, 32, generator=torch_generator(1))
    geo = AugmentConfig(noise_max=0.0, blur_max=0.0, crop=32)
    y = augment_images(x, geo, torch_generator(2))
    torch.testing.assert_close(y.sum(dim=(2, 3)), x.sum(dim=(2, 3)))
    sorted_x = x.flatten(1).sort(dim=1).values
    torch.testing.assert_close(y.flatten(1).sort(dim=1).values, sorted_x)  # a permutation
    blurred = gaussian_blur(torch.nn.functional.pad(x, (8, 8, 8, 8)), torch.full((4,), 1.5))
    torch.testing.assert_close(blurred.sum(dim=(2, 3)), x.sum(dim=(2, 3)), rtol=1e-4, atol=1e-4)
    full = AugmentConfig(crop=24)
    a = augment_images(x, full, torch_generator(3))
    b = augment_images(x, full, torch_generator(3))
    assert a.shape == (4, 3, 24, 24) and torch.equal(a, b)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        augment_images(x[:, :2], full)


def test_dataset_from_file_and_memory_agree(tiny_survey):
    mem = SurveyDataset(read_survey(tiny_survey), crop=96)
    lazy = SurveyDataset(tiny_survey, crop=96)
    assert len(mem) == len(lazy) == 10
    a, b = mem[3], lazy[3]
    for key in ("image", "spectrum", "spec_mean", "props", "targetid"):
        assert torch.equal(a[key], b[key])
    assert a["image"].shape == (3, 96, 96) and a["spectrum"].shape == (7781,)
    ssl = SurveyDataset(tiny_survey, start=2, stop=6, augment=AugmentConfig(), views=2)
    item = ssl[0]
    assert item["image"].shape == item["image2"].shape == (3, 144, 144)
    assert not torch.equal(item["image"], item["image2"])
    assert torch.equal(ssl[0]["image"], item["image"])  # pure in (seed, epoch, index)
    ssl.set_epoch(1)
    assert not torch.equal(ssl[0]["image"], item["image"])
    with pytest.raises(IndexError):
        ssl[4]


def test_augment_noise_level_matches_the_survey_sky():
    from scifm.survey import SurveyConfig

    np.testing.assert_allclose(AugmentConfig().sky_sigma, SurveyConfig().pixel_sigma, rtol=0.05)


def test_lazy_dataset_is_a_deterministic_batch_source_with_loader_workers(tiny_survey):
    from scifm.core import DatasetBatches
    from scifm.core.batches import iter_batches

    ds = SurveyDataset(tiny_survey, crop=32, augment=AugmentConfig(crop=32), seed=1)
    src = DatasetBatches(ds, batch_size=4, seed=2)
    got = list(iter_batches(src, start=0, stop=4, num_workers=2))
    for step, batch in enumerate(got):
        want = src.get(step, 0)
        assert batch["image"].shape == (4, 3, 32, 32)
        assert torch.equal(batch["image"], want["image"])
        assert torch.equal(batch["targetid"], want["targetid"])


def test_lazy_dataset_refuses_rows_not_yet_generated(tiny_survey, tmp_path):
    import shutil

    import h5py

    path = tmp_path / "partial.h5"
    shutil.copy(tiny_survey, path)
    with h5py.File(path, "r+") as f:
        f["chunk_done"][1] = False  # rows 4:8 pending, as after an interruption
    assert len(SurveyDataset(path, stop=4)) == 4
    with pytest.raises(ValueError, match=r"partial.h5: rows 0:10 are not all generated"):
        SurveyDataset(path)
