"""Shared fixtures of the AstroCLIP tests: a toy survey and a tiny trained pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scifm.astroclip.config import AstroClipConfig
from scifm.astroclip.pipeline import (
    StagePlan,
    default_split,
    make_catalog,
    prepare,
    run_pipeline,
    survey_fetcher,
)
from scifm.core import save_checkpoint


@pytest.fixture(scope="session")
def tiny_cfg() -> AstroClipConfig:
    return AstroClipConfig.preset("tiny")


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_cfg):
    """The whole pipeline, tiny, on 192 toy galaxies: (model, prepared data, assets dir)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches: one thread is faster on the shared CPU
    out = tmp_path_factory.mktemp("astroclip_assets")
    fetch, _ = survey_fetcher("toy:192")
    data = prepare(fetch, 192, tiny_cfg, chunk=96, progress=False)
    train_idx, test_idx = default_split(len(data))
    plan = StagePlan(image_steps=15, image_batch=32, spectrum_steps=15, spectrum_batch=32,
                     align_steps=40, align_batch=32, align_lr=2e-3)  # fmt: skip
    model, history = run_pipeline(data, tiny_cfg, plan, out / "work", train_idx=train_idx,
                                  device="cpu", progress=False)  # fmt: skip
    save_checkpoint(out / "model", model, tiny_cfg)
    make_catalog(model, data, test_idx=test_idx).save(out / "catalog.h5")
    torch.set_num_threads(threads)
    return {"model": model, "data": data, "dir": out, "history": history,
            "train_idx": train_idx, "test_idx": test_idx}  # fmt: skip


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
