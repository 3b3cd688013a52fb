"""benchmarks/mpp_speed.py --accuracy-only: the stored speed rows carried over to new weights
of the same architecture, refused for another, and said so in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def speed(benchmark_script):
    return benchmark_script("mpp_speed")


@pytest.fixture()
def tiny():
    from scifm.mpp.config import AViTConfig
    from scifm.mpp.model import AViT

    return AViT(AViTConfig.preset("tiny"))


def _stored(tmp_path: Path, model, **change) -> Path:
    row = {"system": "swe", "in_pretraining": True, "res": 32, "tokens_per_frame": 16,
           "batch": 1, "solver_s_per_traj": 0.5, "surrogate_s_per_traj": 0.25, "speedup": 2.0,
           "solver_trajectories_timed": 16}  # fmt: skip
    rec = {"command": "python benchmarks/mpp_speed.py", "date": "2026-12-03T03:48:08+00:00",
           "machine": "device cpu, torch 2", "timing": "CPU seconds of the one-thread process",
           "model": "assets/mpp/avit_small_64", "model_params": model.n_params(),
           "patch_size": model.config.patch_size, "n_frames": model.config.n_frames,
           "speed": [row], **change}  # fmt: skip
    path = tmp_path / "mpp_speed.json"
    path.write_text(json.dumps(rec))
    return path


def test_stored_rows_carry_over_with_where_they_were_timed(speed, tiny, tmp_path):
    rows, run, timing = speed.stored_speed(_stored(tmp_path, tiny), tiny)
    assert rows[0]["speedup"] == 2.0 and timing.startswith("CPU seconds")
    assert run == {"command": "python benchmarks/mpp_speed.py",
                   "date": "2026-12-03T03:48:08+00:00", "machine": "device cpu, torch 2",
                   "model": "assets/mpp/avit_small_64"}  # fmt: skip
    report = {"model": "m", "model_params": tiny.n_params(), "patch_size": 4, "n_frames": 4,
              "timing": timing, "speed": rows, "speed_run": run, "accuracy_128": None}  # fmt: skip
    text = speed.markdown(report, header=False)
    assert "Speed rows: timed by `python benchmarks/mpp_speed.py` on 2026-12-03" in text
    assert "| swe | yes | 32 | 16 | 1 |" in text


def test_rows_of_another_architecture_or_no_file_are_refused(speed, tiny, tmp_path):
    with pytest.raises(SystemExit, match=r"parameters, patch, frames.*do not apply"):
        speed.stored_speed(_stored(tmp_path, tiny, model_params=627460), tiny)
    with pytest.raises(SystemExit, match="run the full benchmark first"):
        speed.stored_speed(tmp_path / "none.json", tiny)
