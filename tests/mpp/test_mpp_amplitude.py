"""benchmarks/mpp_amplitude.py (issue 13 item 2's diagnostic): the predicted field's spread
and mean against the solver's, step by step."""

from __future__ import annotations

import json
import shutil

import pytest
import torch


@pytest.fixture(scope="module")
def amp(benchmark_script):
    return benchmark_script("mpp_amplitude")


def test_rows_see_a_growing_pattern_and_a_drifting_mean(amp):
    g = torch.Generator().manual_seed(0)
    truth = 1.0 + 0.1 * torch.randn(3, 4, 1, 8, 8, generator=g)
    grow = torch.tensor([1.0, 2.0, 4.0, 8.0]).view(1, 4, 1, 1, 1)
    pred = 1.0 + (truth - 1.0) * grow  # the pattern doubles each step, the mean stays
    rows = amp.amplitude_rows(pred, truth, [1, 2, 4])
    assert [r["step"] for r in rows] == [1, 2, 4]
    assert rows[0]["nrmse"] == pytest.approx(0.0, abs=1e-12)
    for r, k in zip(rows, (1.0, 2.0, 8.0)):
        assert r["std_pred"] == pytest.approx(k * r["std_true"], rel=1e-9)
    assert rows[2]["mean_share"] < 0.05  # the error is the pattern's
    drift = amp.amplitude_rows(truth + 0.5, truth, [3])[0]  # only the mean is off
    assert drift["mean_share"] == pytest.approx(1.0)
    assert drift["mean_pred"] == pytest.approx(drift["mean_true"] + 0.5)


def test_rows_refuse_mismatched_shapes_and_steps_past_the_rollout(amp):
    x = torch.zeros(2, 3, 1, 4, 4)
    with pytest.raises(ValueError, match="expected the same"):
        amp.amplitude_rows(x, x[:, :2], [1])
    with pytest.raises(ValueError, match=r"step 4: the rollout has steps 1\.\.3"):
        amp.amplitude_rows(x, x, [4])


def test_report_on_a_tiny_model_and_a_solver_file(amp, tmp_path, make_toy_fields):
    from scifm.core import TrainConfig
    from scifm.mpp.config import AViTConfig
    from scifm.mpp.experiment import DataConfig, pretrain
    from scifm.pde.generate import GenerateRequest, generate

    req = GenerateRequest(system="swe", n=2, res=16, n_frames=16, t_end=0.2, chunk_size=2,
                          seed=3301)  # fmt: skip
    generate(req, tmp_path / "test_long" / "swe", progress=False)
    train = TrainConfig.preset("tiny").replace(steps=1, progress=False)
    toy = {"swe": make_toy_fields(2, 6, 1, 16, seed=0)}
    pretrain(AViTConfig.preset("tiny"), DataConfig.preset("tiny"), train, batch_size=2,
             out_dir=tmp_path / "pre", fields=toy)  # fmt: skip
    ckpt = tmp_path / "pre" / "checkpoint"
    common = ["--data", str(tmp_path / "test_long"), "--out-dir", str(tmp_path / "out")]
    assert amp.main(["--ckpt", f"tiny={ckpt}", "--steps", "11", *common]) == 0
    rep = json.loads((tmp_path / "out" / "mpp_amplitude.json").read_text())
    (run,) = rep["runs"]
    assert run["name"] == "tiny" and [r["step"] for r in run["rows"]] == [1, 10, 11]
    assert "| tiny | 10 |" in (tmp_path / "out" / "mpp_amplitude.md").read_text()
    shutil.copytree(tmp_path / "test_long" / "swe", tmp_path / "test_long" / "ins")
    with pytest.raises(SystemExit, match="not trained on 'ins'"):
        amp.main(["--ckpt", str(ckpt), "--system", "ins", *common])
