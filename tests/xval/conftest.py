"""Session fixtures: tiny trained models (trained once, a few seconds each); the CLI runner."""

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from scifm.core import TrainConfig, save_checkpoint
from scifm.xval.tasks import TaskConfig
from scifm.xval.train import Trained, fit, model_config_for


def _train(task: TaskConfig, scheme: str, steps: int, mode: str = "mlm") -> Trained:
    torch.set_num_threads(1)
    cfg = model_config_for(task, scheme, "tiny", mode=mode, max_len=128)
    tcfg = TrainConfig(steps=steps, lr=3e-3, warmup_steps=5, log_every=10, progress=False)
    return fit(task, cfg, tcfg, batch_size=32, seed=0, device="cpu")


@pytest.fixture(scope="session")
def ood_task() -> TaskConfig:
    return TaskConfig.preset("tiny", task="ood", n_train=512)


@pytest.fixture(scope="session")
def tiny_models(ood_task: TaskConfig) -> dict[str, Trained]:
    return {s: _train(ood_task, s, 60) for s in ("xval", "p10")}


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory: pytest.TempPathFactory, tiny_models, ood_task) -> Path:
    """An assets/xval-like folder with tiny ood models for all five encodings and orbits."""
    root = tmp_path_factory.mktemp("xval_assets")
    models = dict(tiny_models)
    for s in ("p1000", "b1999", "fp15"):
        models[s] = _train(ood_task, s, 10)
    for s, t in models.items():
        save_checkpoint(root / f"ood_{s}", t.model, t.config, extra=t.extra)
    orbit_task = TaskConfig.preset("tiny", task="orbits", n_train=64).replace(n_planets=(2, 2))
    for s in ("xval", "p1000"):
        t = _train(orbit_task, s, 5)
        save_checkpoint(root / f"orbits_{s}", t.model, t.config, extra=t.extra)
    return root


def _not_json(name: str) -> None:
    raise AssertionError(f"the CLI printed {name}, which is not JSON (an undefined figure is null)")


@pytest.fixture
def xval_cli(capsys: pytest.CaptureFixture) -> Callable[[list[str]], dict]:
    """``run(argv)``: the ``scifm xval`` subcommand in-process; asserts exit 0 and returns
    the last line it printed, as strict JSON (a bare NaN or Infinity fails the test)."""
    from scifm.xval.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())

    def run(argv: list[str]) -> dict:
        args = parser.parse_args(argv)
        assert args.func(args) == 0
        line = capsys.readouterr().out.strip().splitlines()[-1]
        return json.loads(line, parse_constant=_not_json)

    return run
