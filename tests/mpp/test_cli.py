"""``scifm mpp ...`` in-process on tiny presets, and the simulated-data helpers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from scifm.mpp.experiment import DataConfig, make_fields, variant_seed


def test_data_config_validates_and_fields_are_deterministic_and_cached(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        DataConfig(systems=("plasma",))
    cfg = DataConfig(systems=("diffreact",), res=16, n_traj=2, n_test=1, sim_frames=6)
    a = make_fields(cfg, "train", cache_dir=tmp_path)["diffreact"]
    assert a.shape == (2, 6, 2, 16, 16)
    assert len(list(tmp_path.iterdir())) == 1
    torch.testing.assert_close(make_fields(cfg, "train", cache_dir=tmp_path)["diffreact"], a)
    torch.testing.assert_close(make_fields(cfg, "train")["diffreact"], a)  # cache == fresh run
    assert not torch.equal(make_fields(cfg, "test")["diffreact"][0], a[0])
    assert variant_seed(0, "swe", "train") != variant_seed(0, "swe", "test")


def test_cli_pretrain_finetune_evaluate_rollout(tmp_path, capsys, monkeypatch):
    from scifm.cli import main

    common = ["--res", "16", "--sim-frames", "8"]
    main(
        [
            "mpp",
            "pretrain",
            "--model",
            "tiny",
            "--data",
            "tiny",
            "--train",
            "tiny",
            "--train-set",
            "progress=false",
            "--batch-size",
            "2",
            "--out",
            str(tmp_path / "pre"),
            "--data-dir",
            str(tmp_path / "data"),
        ]
    )
    generated = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert generated == ["diffreact_r16_f8_n2_s0_pdebench", "swe_r16_f8_n2_s0_pdebench"]
    import scifm.pde.generate
    from scifm.mpp.data import generate_files

    with monkeypatch.context() as m:  # a second run reuses the files: nothing is simulated
        m.setattr(scifm.pde.generate, "generate", lambda *a, **k: pytest.fail("regenerated"))
        again = generate_files(["swe"], tmp_path / "data", n=2, res=16, frames=8, seed=0)
    assert again["swe"] == [tmp_path / "data" / generated[1] / "2D_rdb_NA_NA.h5"]
    main(
        [
            "mpp",
            "finetune",
            "--ckpt",
            str(tmp_path / "pre" / "checkpoint"),
            "--system",
            "ins",
            "--n-traj",
            "1",
            "--new-fields",
            "--trainable",
            "io",
            "--train",
            "tiny",
            "--train-set",
            "steps=4",
            "progress=false",
            "--batch-size",
            "2",
            "--out",
            str(tmp_path / "ft"),
            "--data-dir",
            str(tmp_path / "data"),
            *common,
        ]
    )
    capsys.readouterr()
    ck = str(tmp_path / "ft" / "checkpoint")
    main(["mpp", "evaluate", "--ckpt", ck, "--n-test", "1", *common])
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"swe", "diffreact", "ins"}  # pretrained systems + the new one
    assert all(0 <= v["avit"] < 10 and v["persistence"] >= 0 for v in scores.values())
    main(
        [
            "mpp",
            "rollout",
            "--ckpt",
            ck,
            "--systems",
            "ins",
            "--n-test",
            "1",
            "--steps",
            "6",
            *common,
        ]
    )
    curve = json.loads(capsys.readouterr().out)["ins"]
    assert len(curve) == 6


def test_a_pretraining_replica_seeds_init_and_order_and_keeps_the_paper_loss(tmp_path):
    """``SEED`` of scripts/mpp_pretrain.sh: a replica of the paper-loss run gives its recipe a
    seed, which that loss cannot use, so it stays on the one-step loss path (no recipe in the
    record), with the seeded initialisation and batch order recorded."""
    from scifm.cli import main
    from scifm.core.checkpoint import load_checkpoint

    def run(name: str, seed: int) -> dict:
        main(["mpp", "pretrain", "--model", "tiny", "--data", "tiny", "--data-set", "res=16",
              "sim_frames=8", f"seed={seed}", "--train", "tiny", "--train-set", "progress=false",
              "steps=1", f"seed={seed}", "--recipe", "paper", "--recipe-set", f"seed={seed}",
              "--batch-size", "2", "--out", str(tmp_path / name),
              "--data-dir", str(tmp_path / "data")])  # fmt: skip
        return load_checkpoint(tmp_path / name / "checkpoint")

    base, rep = run("s0", 0), run("s1", 1)
    for ck, seed in ((base, 0), (rep, 1)):
        extra = ck["record"]["extra"]
        assert "recipe" not in extra  # the paper's one-step NMSE path
        assert extra["train"]["seed"] == seed and extra["data"]["seed"] == seed


def test_noise_chain_refuses_a_seed_without_its_starting_run(tmp_path):
    """scripts/mpp_noise_chain.sh names the missing paper-loss checkpoint of a seed that has
    none and starts nothing (no run folder, no package)."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "SEED": "97", "PY": sys.executable}
    done = subprocess.run(["bash", str(root / "scripts" / "mpp_noise_chain.sh")], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "benchmarks/checkpoints/mpp_paper20k_s97/checkpoint: no such run" in done.stderr
    assert not (root / "runs" / "pkg_s97").exists()


def test_pretrain_script_adds_the_extra_training_folders(tmp_path):
    """``EXTRA`` of scripts/mpp_pretrain.sh appends its NAME=PATH folders to ``--files``,
    after DATA's and LONG's, in the order given (the long-span SWE ablation of stop 44)."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    fake = tmp_path / "python"  # prints the command line the script would run
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PY": str(fake), "DATA": "/d", "LONG": "/l",
           "EXTRA": "swe=/x/swe  ins=/y/ins", "OUT": str(tmp_path / "run")}  # fmt: skip
    done = subprocess.run(["bash", str(root / "scripts" / "mpp_pretrain.sh")], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    args = done.stdout.splitlines()
    files = args[args.index("--files") + 1 : args.index("--out")]
    base = [f"{v}={d}/{v}" for d in ("/d", "/l") for v in ("swe", "diffreact", "ins")]
    assert files == [*base, "swe=/x/swe", "ins=/y/ins"]
