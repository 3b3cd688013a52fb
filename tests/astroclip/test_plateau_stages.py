"""SpecFormer binned by 2 (evidence preset) and the evaluated, resumable spectrum and
alignment stages (issue 14 item 2: trained until the held-out figure plateaus)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import scifm.astroclip.train as stages
from scifm.astroclip.config import AstroClipConfig, SpecFormerConfig
from scifm.astroclip.train import ALIGN_PLATEAU, EVAL_FILE, SPECTRUM_PLATEAU
from scifm.cli import main
from scifm.core import load_model
from scifm.core.checkpoint import read_record


def test_evidence_spectra_are_binned_by_two_and_small_is_unchanged():
    ev = SpecFormerConfig.preset("evidence")
    assert ev.downsample == 2 and ev.n_bins == 3890
    assert (ev.window, ev.stride, ev.n_tokens) == (40, 20, 193)  # windows overlap by half
    assert ev.n_mask_chunks * ev.mask_chunk * ev.stride * ev.downsample == 3 * 640  # 3 x 512 A
    assert AstroClipConfig.preset("evidence").spectrum == ev
    assert AstroClipConfig.preset("evidence").image.input_size == 64
    small = SpecFormerConfig.preset("small")
    assert (small.downsample, small.n_bins, small.n_tokens) == (8, 972, 96)


def test_the_rules_watch_the_issue_figures():
    assert (SPECTRUM_PLATEAU.key, SPECTRUM_PLATEAU.higher_is_better) == ("val_loss", False)
    assert (ALIGN_PLATEAU.key, ALIGN_PLATEAU.higher_is_better) == ("recall@10", True)
    assert (SPECTRUM_PLATEAU.window, SPECTRUM_PLATEAU.rel) == (0.2, 0.01)
    # the alignment's noisy recall gets no verdict before half its schedule: the dip that
    # stopped a 6,000-step run at step 2,200 (best 0.5065 at 1,600, then 0.4215-0.4755)
    dip = [{"step": s, "recall@10": r} for s, r in
           [(1200, 0.4385), (1400, 0.4375), (1600, 0.5065), (1800, 0.4215), (2000, 0.428),
            (2200, 0.4755)]]  # fmt: skip
    assert ALIGN_PLATEAU.reached(dip)
    assert not stages.align_plateau(6000).reached(dip)
    assert stages.align_plateau(4000).reached(dip)


def _evals(out):
    return [json.loads(ln) for ln in (out / EVAL_FILE).read_text().splitlines()]


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


COMMON = ["--survey", "toy:80", "--preset", "tiny", "--quiet", "--batch-size", "16"]


def test_pretrain_spectrum_evaluates_held_out_and_resumes(tmp_path, capsys):
    out = tmp_path / "spec"
    args = ["astroclip", "pretrain-spectrum", *COMMON, "--out", str(out), "--eval-every", "2"]
    assert main([*args, "--steps", "8", "--stop-at", "6", "--eval-rows", "12"]) == 0
    res = _last_json(capsys)
    assert res["stopped"] == "stop_at" and res["step"] == 6
    evals = _evals(out)
    assert [e["step"] for e in evals] == [2, 4, 6]
    assert all(e["val_loss"] > 0 and -1 <= e["knn_r2_redshift"] <= 1 for e in evals)
    assert evals[0]["n_eval"] == 12 and evals[0]["n_fit"] == 48
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]  # it learns on held-out spectra
    assert read_record(out / "checkpoint")["extra"]["split"]["n_test"] == 16
    assert main([*args, "--steps", "8", "--eval-rows", "12"]) == 0  # resumes at 6
    res = _last_json(capsys)
    assert res["step"] == 8 and res["stopped"] == "steps"
    assert [e["step"] for e in _evals(out)] == [2, 4, 6, 8]
    # a longer budget is another LR schedule: refused, the run left as it was
    assert main([*args, "--steps", "12", "--eval-rows", "12"]) != 0
    assert "another LR schedule (steps 8 -> 12" in capsys.readouterr().err
    assert [e["step"] for e in _evals(out)] == [2, 4, 6, 8]
    # --until-plateau without evaluations has no curve to watch: one clear line, no run
    assert main([*args[:-2], "--out", str(tmp_path / "none"), "--until-plateau"]) != 0
    assert "--until-plateau needs --eval-every" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_align_evaluates_recall_and_stops_at_its_plateau(tmp_path, capsys, monkeypatch):
    enc = ["--survey", "toy:80", "--quiet", "--batch-size", "16", "--steps", "2", "--preset",
           "tiny"]  # fmt: skip
    assert main(["astroclip", "pretrain-image", *enc, "--out", str(tmp_path / "img")]) == 0
    assert main(["astroclip", "pretrain-spectrum", *enc, "--out", str(tmp_path / "spec")]) == 0
    capsys.readouterr()
    out = tmp_path / "clip"
    args = ["astroclip", "align", *COMMON, "--image", str(tmp_path / "img"), "--spectrum",
            str(tmp_path / "spec"), "--out", str(out), "--eval-every", "2"]  # fmt: skip
    # a rule any curve meets at its second evaluation (and no verdict before half the
    # schedule, step 4 of 8): the run must stop there, not at 8
    rule = dataclasses.replace(stages.ALIGN_PLATEAU, window=0.5, rel=0.99, points=1)
    monkeypatch.setattr(stages, "ALIGN_PLATEAU", rule)
    assert stages.align_plateau(8).min_steps == 4
    assert main([*args, "--steps", "8", "--until-plateau"]) == 0
    res = _last_json(capsys)
    assert res["stopped"] == "plateau" and res["step"] == 4
    evals = _evals(out)
    assert [e["step"] for e in evals] == [2, 4]
    assert all(0 <= e["recall@10"] <= 1 and 0 <= e["s2i_recall@10"] <= 1 for e in evals)
    assert evals[0]["recall@1"] <= evals[0]["recall@10"] <= evals[0]["recall@100"] == 1.0
    cfg, _ = load_model(out / "checkpoint", expect_config=AstroClipConfig)
    assert cfg.spectrum == SpecFormerConfig.preset("tiny") and cfg.spectrum_head == "attention"
    assert main([*args, "--steps", "8", "--until-plateau"]) == 0  # rerun: stays stopped
    assert _last_json(capsys)["step"] == 4 and len(_evals(out)) == 2


def test_align_trains_the_head_it_is_asked_for(tmp_path, capsys):
    enc = ["--survey", "toy:80", "--quiet", "--batch-size", "16", "--steps", "2", "--preset",
           "tiny"]  # fmt: skip
    assert main(["astroclip", "pretrain-image", *enc, "--out", str(tmp_path / "img")]) == 0
    assert main(["astroclip", "pretrain-spectrum", *enc, "--out", str(tmp_path / "spec")]) == 0
    args = ["astroclip", "align", *COMMON, "--image", str(tmp_path / "img"), "--spectrum",
            str(tmp_path / "spec"), "--steps", "2"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "seg"), "--spectrum-head", "seg8"]) == 0
    cfg, model = load_model(tmp_path / "seg" / "checkpoint", expect_config=AstroClipConfig)
    assert cfg.spectrum_head == "seg8" and model.spectrum_head.pooling == "seg8"
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad"), "--spectrum-head", "seg999"]) != 0
    assert "spectrum_head='seg999'" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "checkpoint").exists()
    # the image encoder's top block trains with the heads; the lower one stays the SSL run's
    assert main([*args, "--out", str(tmp_path / "ft"), "--image-finetune-blocks", "1",
                 "--embed-dim", "24"]) == 0  # fmt: skip
    cfg, model = load_model(tmp_path / "ft" / "checkpoint", expect_config=AstroClipConfig)
    assert cfg.embed_dim == 24
    assert model.embed_spectra(torch.zeros(1, cfg.spectrum.n_bins)).shape == (1, 24)
    _, ssl = load_model(tmp_path / "img" / "checkpoint")
    assert cfg.image_finetune_blocks == 1
    ours, theirs = model.image_encoder.state_dict(), ssl.encoder.state_dict()
    top = ("stages.1.", "to_tokens.", "norm.")  # tiny: 2 blocks; and the token projection
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if not k.startswith(top))
    assert not all(torch.equal(ours[k], theirs[k]) for k in ours if k.startswith("stages.1."))
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad"), "--image-finetune-blocks", "5"]) != 0
    assert "image_finetune_blocks=5" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "checkpoint").exists()


def test_heads_benchmark_scores_each_model_on_the_same_split(tmp_path, capsys):
    """benchmarks/astroclip_heads.py: models that differ in their spectrum head, one table."""
    from benchmarks import astroclip_heads

    enc = ["--survey", "toy:80", "--quiet", "--batch-size", "16", "--steps", "2", "--preset",
           "tiny"]  # fmt: skip
    assert main(["astroclip", "pretrain-image", *enc, "--out", str(tmp_path / "img")]) == 0
    assert main(["astroclip", "pretrain-spectrum", *enc, "--out", str(tmp_path / "spec")]) == 0
    args = ["astroclip", "align", *COMMON, "--image", str(tmp_path / "img"), "--spectrum",
            str(tmp_path / "spec"), "--steps", "3"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "att")]) == 0
    assert main([*args, "--out", str(tmp_path / "seg"), "--spectrum-head", "seg4"]) == 0
    capsys.readouterr()
    out = tmp_path / "res"
    assert astroclip_heads.main(["--survey", "toy:80", "--run", f"att={tmp_path / 'att'}",
                                 "--run", f"seg={tmp_path / 'seg'}",
                                 "--out-dir", str(out)]) == 0  # fmt: skip
    res = json.loads((out / "astroclip_heads.json").read_text())
    assert [(r["label"], r["spectrum_head"], r["steps"]) for r in res["runs"]] == [
        ("att", "attention", 3), ("seg", "seg4", 3)]  # fmt: skip
    assert res["n_train"] + res["n_test"] == 80
    for r in res["runs"]:
        assert 0 <= r["image_to_spectrum"]["recall@10"] <= 1
        assert np.isfinite(r["knn_r2_spectrum"]["redshift"])
    assert "| seg | seg4 | 3 |" in (out / "astroclip_heads.md").read_text()
    with pytest.raises(SystemExit):
        astroclip_heads.main(["--survey", "toy:80", "--run", "no-label"])
    # a head aligned on other SpecFormer weights is not compared: the encoders must be the same
    assert main(["astroclip", "pretrain-spectrum", *enc, "--steps", "3",
                 "--out", str(tmp_path / "spec3")]) == 0  # fmt: skip
    other = [a if a != str(tmp_path / "spec") else str(tmp_path / "spec3") for a in args]
    assert main([*other, "--out", str(tmp_path / "other")]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        astroclip_heads.main(["--survey", "toy:80", "--run", f"att={tmp_path / 'att'}",
                              "--run", f"other={tmp_path / 'other'}"])  # fmt: skip
    assert "encoders differ (config or weights)" in capsys.readouterr().err
