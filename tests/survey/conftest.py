"""Shared fixtures of the survey tests: one tiny simulated survey file per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from scifm.survey import SurveyConfig, generate_survey

TINY_N, TINY_SEED = 10, 5


@pytest.fixture(scope="session")
def tiny_config() -> SurveyConfig:
    return SurveyConfig.preset("tiny")


@pytest.fixture(scope="session")
def tiny_spec() -> tuple[int, int]:
    """(n, seed) of ``tiny_survey``."""
    return TINY_N, TINY_SEED


@pytest.fixture(scope="session")
def tiny_survey(tmp_path_factory: pytest.TempPathFactory, tiny_config: SurveyConfig) -> Path:
    """A complete 10-galaxy survey file (3 chunks of 4, 4, 2 rows)."""
    path = tmp_path_factory.mktemp("survey") / "tiny.h5"
    return generate_survey(path, TINY_N, config=tiny_config, seed=TINY_SEED, progress=False)
