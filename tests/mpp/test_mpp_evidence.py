"""benchmarks/mpp_evidence.py (issue 13): frozen-processor transfer beside full fine-tuning,
tagged pretraining runs whose cells do not collide, and a report that still reads the cells
written before either existed."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ev():
    """The script, imported the way it runs: its report half is a sibling module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(ROOT / "benchmarks"))
        yield importlib.import_module("mpp_evidence")


@pytest.fixture(scope="module")
def study(tmp_path_factory, make_toy_fields):
    """A tiny AViT pretrained on toy SWE (no recipe) and CNS M=1.0 files in the layout of
    scripts/mpp_data.sh: train/, test/ and test_long/ with seeds of their own."""
    from scifm.core import TrainConfig
    from scifm.mpp.config import AViTConfig
    from scifm.mpp.experiment import DataConfig, pretrain
    from scifm.pde.generate import GenerateRequest, generate

    base = tmp_path_factory.mktemp("evidence")
    for split, n, seed in (("train", 2, 1301), ("test", 1, 2301), ("test_long", 1, 3301)):
        req = GenerateRequest(system="cns", n=n, res=16, n_frames=7, t_end=0.03, chunk_size=2,
                              seed=seed, params={"M": 1.0})  # fmt: skip
        generate(req, base / "data" / split / "cns_m1.0", progress=False)
    train = TrainConfig.preset("tiny").replace(steps=1, progress=False)
    toy = {"swe": make_toy_fields(2, 6, 1, 16, seed=0)}
    pretrain(AViTConfig.preset("tiny"), DataConfig.preset("tiny"), train, batch_size=2,
             out_dir=base / "pre", fields=toy)  # fmt: skip
    return {"data": base / "data", "ckpt": base / "pre" / "checkpoint", "root": base / "cells"}


def _run(ev, what: str, study: dict, *extra: str) -> int:
    return ev.main([what, "--ckpt", str(study["ckpt"]), "--data", str(study["data"]),
                    "--root", str(study["root"]), *extra])  # fmt: skip


def _cell(study: dict, name: str) -> dict:
    return json.loads((study["root"] / name / "result.json").read_text())


def test_frozen_processor_cells_sit_beside_the_full_ones(ev, study):
    args = ("--variant", "cns_m1.0", "--ns", "1", "--steps", "2", "--batch-size", "2")
    assert _run(ev, "transfer", study, *args, "--trainable", "io") == 0
    assert _run(ev, "transfer", study, *args) == 0  # all weights: the names of old cells
    names = {p.parent.name for p in study["root"].glob("cns_m1.0_*/result.json")}
    assert names == {"cns_m1.0_pretrained_io_n1_s0", "cns_m1.0_scratch_io_n1_s0",
                     "cns_m1.0_pretrained_n1_s0", "cns_m1.0_scratch_n1_s0"}  # fmt: skip
    io = _cell(study, "cns_m1.0_pretrained_io_n1_s0")
    full = _cell(study, "cns_m1.0_pretrained_n1_s0")
    assert (io["trainable"], full["trainable"]) == ("io", "all") and io["tag"] is None
    assert _cell(study, "cns_m1.0_scratch_io_n1_s0")["trainable_params"] == io["trainable_params"]
    assert 0 < io["trainable_params"] < full["trainable_params"]  # the processor stayed frozen
    assert math.isfinite(io["one_step_nrmse"]) and io["test_windows"] == 3  # 7 frames, T = 4


def test_tagged_runs_write_their_own_cells(ev, study):
    for what in ("onestep", "rollout"):
        assert _run(ev, what, study) == 0
        assert _run(ev, what, study, "--tag", "paper") == 0
    main = _cell(study, "rollout_cns_m1.0_step1")
    paper = _cell(study, "rollout_paper_cns_m1.0_step1")
    assert main["tag"] is None and paper["tag"] == "paper" and paper["recipe"] == "paper"
    assert paper["steps"] == 3 and paper["avit"] == main["avit"]  # the same checkpoint
    assert _cell(study, "onestep_paper_cns_m1.0_step1")["recipe"] == "paper"
    with pytest.raises(ValueError, match="--tag 'a_b'"):
        _run(ev, "rollout", study, "--tag", "a_b")
    assert not list(study["root"].glob("*a_b*"))


def _rollout(variant, avit, pers, step=3200, **extra):
    return {"variant": variant, "ckpt_step": step, "trained_on": True, "n_traj": 10, "context": 4,
            "steps": len(avit), "avit": avit, "persistence": pers, **extra}  # fmt: skip


def _write(root: Path, name: str, rec: dict) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "result.json").write_text(json.dumps(rec))


def test_report_reads_old_cells_and_puts_runs_side_by_side(tmp_path):
    from benchmarks import mpp_evidence_report as rep

    root = tmp_path / "cells"
    for seed, (pre, scr) in enumerate([(0.4, 0.5), (0.5, 0.5)]):  # old cells: no trainable, tag
        for init, v in (("pretrained", pre), ("scratch", scr)):
            _write(root, f"cns_m0.1_{init}_n1_s{seed}", {
                "variant": "cns_m0.1", "init": init, "n_traj": 1, "seed": seed, "steps": 200,
                "lr": 5e-4, "batch_size": 8, "test_windows": 340, "one_step_nrmse": v,
                "persistence_nrmse": 0.43, "ckpt": "runs/x"})  # fmt: skip
            _write(root, f"cns_m0.1_{init}_io_n1_s{seed}", {
                **json.loads((root / f"cns_m0.1_{init}_n1_s{seed}" / "result.json").read_text()),
                "trainable": "io", "tag": None, "trainable_params": 27012,
                "one_step_nrmse": v / 2})  # fmt: skip
    flat = [0.1] * 50
    _write(root, "rollout_swe_step3200", _rollout("swe", [0.05] * 20 + [1.0] * 30, flat))
    _write(root, "rollout_paper_swe_step3200", _rollout(
        "swe", [0.2] * 49 + [math.nan], flat, tag="paper", recipe="paper"))  # fmt: skip
    one = {"variant": "swe", "ckpt_step": 3200, "trained_on": True, "windows": 340,
           "avit": 0.01, "persistence": 0.02}  # fmt: skip
    _write(root, "onestep_swe_step3200", one)

    rep.report(root, str(tmp_path / "no_ckpt"), str(tmp_path), str(tmp_path / "out"), "stable")
    data = json.loads((tmp_path / "out" / "mpp_evidence.json").read_text())
    rows = {r["trainable"]: r for r in data["transfer"]}
    assert set(rows) == {"all", "io"} and rows["all"]["seeds"] == 2
    assert rows["all"]["pretrained"] == pytest.approx(0.45)
    assert rows["all"]["ratio"] == pytest.approx(0.9) and rows["io"]["ratio"] == pytest.approx(0.9)
    assert [r.get("tag") for r in data["rollouts"]] == [None]  # the physics page's main run
    runs = {r.get("tag"): r for r in data["rollout_runs"]}
    crit = {t: (r["below_persistence_k20"], r["finite_within_2x_k50"]) for t, r in runs.items()}
    assert crit == {None: (True, False), "paper": (False, False)}  # NaN at k = 50 is not finite
    md = (tmp_path / "out" / "mpp_evidence.md").read_text()
    assert "| 1 | 2/2 | 0.4500 ± 0.0500 | 0.5000 ± 0.0000 | 0.9000 |" in md
    assert "| swe | main (stable) @ 3200 | True |" in md and "| swe | paper (paper) @ 3200 |" in md
    assert "- main (stable), step 3200: below persistence at k=20 on 1 of 1 (swe);" in md
    assert "| swe | main (stable) | True | 3200 | 0.0100 | 0.0200 | 0.5000 |" in md


def test_rollout_criteria_need_the_steps():
    from benchmarks import mpp_evidence_report as rep

    short = {"avit": [0.1] * 10, "persistence": [0.2] * 10}
    assert rep.rollout_criteria(short) == {"below_persistence_k20": None,
                                           "finite_within_2x_k50": None}  # fmt: skip
    edge = {"avit": [0.2] * 50, "persistence": [0.1] * 50}  # exactly 2x at k = 50: allowed
    assert rep.rollout_criteria(edge) == {"below_persistence_k20": False,
                                          "finite_within_2x_k50": True}  # fmt: skip
