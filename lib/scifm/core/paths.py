"""Where the shipped assets and benchmark results live.

scifm is installed editable from its repository (``pip install -e .``), so the
repository root is two levels above the package. ``SCIFM_ASSETS`` points the app
and the loaders at another assets folder (e.g. one holding bigger checkpoints).
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def assets_dir() -> Path:
    env = os.environ.get("SCIFM_ASSETS")
    return Path(env) if env else repo_root() / "assets"


def results_dir() -> Path:
    return repo_root() / "benchmarks" / "results"


def app_dir() -> Path:
    path = repo_root() / "app"
    if not (path / "serve.py").is_file():
        raise FileNotFoundError(
            f"{path}: the web app is not here; `scifm serve` runs from a checkout of the "
            "scifm repository installed with `pip install -e .`"
        )
    return path
