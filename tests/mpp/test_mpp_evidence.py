"""benchmarks/mpp_evidence.py (issue 13): frozen-processor transfer beside full fine-tuning,
tagged pretraining runs whose cells do not collide, and a report that still reads the cells
written before either existed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def ev(benchmark_script):
    """The script, imported the way it runs: its report half is a sibling module."""
    return benchmark_script("mpp_evidence")


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
    assert "model" not in main  # a pretrained run's curve is its "avit"
    assert _cell(study, "onestep_paper_cns_m1.0_step1")["recipe"] == "paper"
    assert _cell(study, "onestep_paper_cns_m1.0_step1")["seed"] == 0  # the checkpoint's
    with pytest.raises(ValueError, match="--tag 'a_b'"):
        _run(ev, "rollout", study, "--tag", "a_b")
    assert not list(study["root"].glob("*a_b*"))


def _rollout(variant, avit, pers, step=3200, **extra):
    return {"variant": variant, "ckpt_step": step, "trained_on": True, "n_traj": 10, "context": 4,
            "steps": len(avit), "avit": avit, "persistence": pers, **extra}  # fmt: skip


def _write(root: Path, name: str, rec: dict) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "result.json").write_text(json.dumps(rec))


def test_a_float16_checkpoint_without_trainer_state_transfers(ev, study, tmp_path):
    """As the shipped asset: fp16 weights train as float32, the step comes from the card."""
    from scifm.core import load_checkpoint, load_model, save_checkpoint

    config, model = load_model(study["ckpt"])
    extra = {**load_checkpoint(study["ckpt"])["record"]["extra"], "card": {"steps": 7}}
    asset = tmp_path / "asset"
    save_checkpoint(asset, model.half(), config, extra=extra)
    assert "trainer_state" not in load_checkpoint(asset)
    args = ("--variant", "cns_m1.0", "--ns", "1", "--steps", "2", "--batch-size", "2")
    assert _run(ev, "transfer", {**study, "ckpt": asset}, *args, "--tag", "fp16") == 0
    cell = _cell(study, "cns_m1.0_fp16_pretrained_n1_s0")
    assert cell["ckpt_step"] == 7 and cell["tag"] == "fp16"
    assert math.isfinite(cell["one_step_nrmse"]) and math.isfinite(cell["final_loss"])
    assert _run(ev, "onestep", {**study, "ckpt": asset}, "--tag", "fp16") == 0
    assert _cell(study, "onestep_fp16_cns_m1.0_step7")["recipe"] == "paper"


def _fabricate(root: Path) -> None:
    """Cells of every kind the report reads: old transfer cells (no trainable, no tag) and
    frozen-processor ones, a main and a tagged rollout, a one-step cell."""
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
    held_out = {**one, "variant": "cns_m0.1", "trained_on": False, "avit": 0.43,
                "persistence": 0.43}  # fmt: skip
    _write(root, "onestep_cns_m0.1_step3200", held_out)


def test_report_reads_old_cells_and_puts_runs_side_by_side(tmp_path):
    from benchmarks import mpp_evidence_report as rep

    root = tmp_path / "cells"
    _fabricate(root)
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
    assert "| 1 | 2/2 | 0.4500 ± 0.0707 | 0.5000 ± 0.0000 | 0.9000 |" in md  # sample sd
    assert "| swe | main (stable) @ 3200 | True |" in md and "| swe | paper (paper) @ 3200 |" in md
    assert "- main (stable), step 3200: below persistence at k=20 on 1 of 1 (swe);" in md
    assert "| swe | main (stable) | True | 3200 | 0.0100 | 0.0200 | 0.5000 |" in md
    assert "equal to persistence by construction: cns_m0.1." in md  # untrained slots
    assert "; 200 fine-tuning steps; persistence 0.4300)" in md  # each table its own
    assert "construction: swe" not in md


def test_report_shows_the_shipped_runs_figures_on_the_page(tmp_path):
    """``report --tag T``: the rollouts and one-step figures the physics page reads are run
    T's (the shipped model's), not the untagged run's; the tables still hold both."""
    from benchmarks import mpp_evidence_report as rep

    root = tmp_path / "cells"
    _fabricate(root)
    _write(
        root,
        "rollout_long14k_swe_step14000",
        _rollout("swe", [0.04] * 50, [0.1] * 50, step=14000, tag="long14k", recipe="stable_random"),
    )
    _write(root, "onestep_long14k_swe_step14000", {
        "variant": "swe", "ckpt_step": 14000, "trained_on": True, "windows": 340, "avit": 0.008,
        "persistence": 0.02, "tag": "long14k", "recipe": "stable_random"})  # fmt: skip
    out = tmp_path / "out"
    rep.report(root, str(tmp_path / "no_ckpt"), str(tmp_path), str(out), "stable", "long14k")
    data = json.loads((out / "mpp_evidence.json").read_text())
    assert [(r["tag"], r["ckpt_step"]) for r in data["rollouts"]] == [("long14k", 14000)]
    assert [(r["variant"], r["avit"]) for r in data["one_step"]] == [("swe", 0.008)]
    assert data["main_tag"] == "long14k"
    assert {r.get("tag") for r in data["rollout_runs"]} == {None, "paper", "long14k"}


def test_pretrained_replicas_are_one_row_with_their_spread(tmp_path):
    """A pretraining run and its replicas (SEED=N, evaluated under the run's tag: the seed is in
    the cell name) give one one-step row, mean ± sample sd, and the recipe table's pretrained
    column; another run stays apart; a restore puts each replica's cell back under its name."""
    from benchmarks import mpp_evidence_report as rep

    root = tmp_path / "cells"
    one = {"variant": "ins", "ckpt_step": 3200, "trained_on": True, "windows": 340,
           "persistence": 0.09, "recipe": "paper", "tag": "paper"}  # fmt: skip
    for seed, avit in ((0, 0.040), (1, 0.042), (2, 0.044)):
        cell = rep.step_cell(root, "onestep", "paper", "ins", 3200, seed)
        _write(root, cell.parent.name, {**one, "seed": seed, "avit": avit})
    assert rep.step_cell(root, "onestep", "paper", "ins", 3200, 1).parent.name == (
        "onestep_paper_ins_s1_step3200"
    )
    _write(root, "onestep_other_ins_step3200", {**one, "tag": "other", "seed": 0, "avit": 0.05})
    # seed 0 went on to a later step: its earlier step keeps its row with the replicas
    _write(root, "onestep_paper_ins_step10000", {**one, "ckpt_step": 10000, "seed": 0,
                                                 "avit": 0.03})  # fmt: skip
    _write(root, "baseline_fno_ins_paper_step3200", {
        "variant": "ins", "arch": "fno", "step": 3200, "tag": "paper", "recipe": "paper",
        "nrmse": 0.03, "persistence": 0.09})  # fmt: skip
    rep.report(root, str(tmp_path / "no_ckpt"), str(tmp_path), str(tmp_path / "out"), "stable")
    md = (tmp_path / "out" / "mpp_evidence.md").read_text()
    assert "| ins | paper (paper), seeds 0, 1, 2 | True | 3200 | 0.0420 ± 0.0020 (3) |" in md
    assert "| ins | other (paper) | True | 3200 | 0.0500 | 0.0900 | 0.5556 |" in md
    assert "| ins | paper (paper) | True | 10000 | 0.0300 | 0.0900 | 0.3333 |" in md
    assert "| 0.0300 | - | 0.0500 / 0.0420 ± 0.0020 (3) | 0.0900 |" in md  # runs by name
    rep.restore(tmp_path / "out" / "mpp_evidence.json", tmp_path / "back")
    back = {p.parent.name for p in (tmp_path / "back").glob("onestep_*/result.json")}
    assert back == {p.parent.name for p in root.glob("onestep_*/result.json")}


def test_baselines_tagged_with_the_pretrained_recipe_are_an_equal_budget_table(tmp_path):
    """Baselines run again under a tag with the pretrained model's own recipe, cut at its
    step, get their own "against single-task models" table at equal budget; a tag with
    another recipe stays a recipe ablation."""
    from benchmarks import mpp_evidence_report as rep

    root = tmp_path / "cells"
    _write(root, "onestep_ins_step8000", {
        "variant": "ins", "ckpt_step": 8000, "trained_on": True, "windows": 340, "tag": None,
        "recipe": "stable_random", "avit": 0.0786, "persistence": 0.0894})  # fmt: skip
    base = {"variant": "ins", "arch": "avit", "persistence": 0.0894, "parameters": 627460}
    for step, v in ((2667, 0.05), (8000, 0.04)):
        _write(
            root,
            f"baseline_avit_ins_eq8000_step{step}",
            {**base, "step": step, "tag": "eq8000", "recipe": "stable_random", "nrmse": v},
        )
    _write(
        root,
        "baseline_avit_ins_paper_step3200",
        {**base, "step": 3200, "tag": "paper", "recipe": "paper", "nrmse": 0.03},
    )
    rep.report(root, str(tmp_path / "no_ckpt"), str(tmp_path), str(tmp_path / "out"),
               "stable_random")  # fmt: skip
    md = (tmp_path / "out" / "mpp_evidence.md").read_text()
    table = md.split("### Against single-task models (run `eq8000`)")[1].split("###")[0]
    assert "recipe (stable_random)" in table and "(the issue's equal budget)" in table
    assert "| ins | 0.0786 (8000) | 0.0500 | 0.0400 | - | - | 0.0894 |" in table  # no FNO yet
    ablation = md.split("does the stability recipe explain their error?")[1]
    assert "| ins | single-task AViT | 3200 | paper | 0.0300 |" in ablation
    assert "eq8000" not in ablation and "| 8000 |" not in ablation


def test_rollout_criteria_need_the_steps():
    from benchmarks import mpp_evidence_report as rep

    short = {"avit": [0.1] * 10, "persistence": [0.2] * 10}
    assert rep.rollout_criteria(short) == {"below_persistence_k20": None,
                                           "finite_within_2x_k50": None}  # fmt: skip
    edge = {"avit": [0.2] * 50, "persistence": [0.1] * 50}  # exactly 2x at k = 50: allowed
    assert rep.rollout_criteria(edge) == {"below_persistence_k20": False,
                                          "finite_within_2x_k50": True}  # fmt: skip


def test_joint_rows_judge_one_model_on_both_items():
    from benchmarks import mpp_evidence_report as rep

    def one(variant, avit, pers, **extra):
        return {"variant": variant, "ckpt_step": 3200, "trained_on": True, "avit": avit,
                "persistence": pers, **extra}  # fmt: skip

    good = [0.05] * 50  # below persistence throughout
    ones = [
        one("swe", 0.004, 0.01, tag="a"),
        one("ins", 0.05, 0.09, tag="a"),  # 0.40x, 0.56x
        one("swe", 0.004, 0.01, tag="b"),
        one("ins", 0.04, 0.09, tag="b"),
        one("cns_m0.1", 0.4, 0.4, tag="b", trained_on=False),  # not trained on: ignored
        one("swe", 0.004, 0.01, tag="c"),
    ]  # no rollout cell: no verdict
    rolls = [_rollout("swe", good, [0.1] * 50, tag="a"), _rollout("ins", good, [0.1] * 50, tag="a"),
             _rollout("swe", good, [0.1] * 50, tag="b"),
             _rollout("ins", [0.05] * 49 + [float("nan")], [0.1] * 50, tag="b")]  # fmt: skip
    for r in rolls:
        r.update(rep.rollout_criteria(r))
    rows = {r["tag"]: r for r in rep.joint_rows(ones, rolls)}
    assert sorted(rows) == ["a", "b"]
    assert rows["a"]["systems"]["ins"]["one_step_ratio"] == pytest.approx(0.05 / 0.09)
    assert (rows["a"]["item1"], rows["a"]["item2"], rows["a"]["both"]) == (False, True, False)
    assert (rows["b"]["item1"], rows["b"]["item2"], rows["b"]["both"]) == (True, False, False)
    assert sorted(rows["b"]["systems"]) == ["ins", "swe"]
    short = [{**r, "avit": r["avit"][:30], "persistence": r["persistence"][:30]} for r in rolls]
    for r in short:
        r.update(rep.rollout_criteria(r))
    rows = {r["tag"]: r for r in rep.joint_rows(ones, short)}
    assert rows["b"]["item2"] is None and rows["b"]["both"] is None  # 30 steps: no k = 50
    md = "\n".join(rep._joint_md(list(rows.values()), "stable"))
    assert "| a (?) | 0 | 3200 |" in md and "0 of 2" in md


def test_restore_writes_the_cells_back_and_the_report_comes_back_whole(tmp_path):
    """A lost runs/: the report's JSON alone restores every cell (and the thinned pretraining
    curve), and the report made from the restored cells is the one made from the originals."""
    from benchmarks import mpp_evidence_report as rep

    first = tmp_path / "cells"
    _fabricate(first)
    for init in ("pretrained", "scratch"):  # a tagged run's frozen-processor pair
        _write(first, f"cns_m0.1_asset_{init}_io_n2_s0", {
            **_cell({"root": first}, f"cns_m0.1_{init}_io_n1_s0"), "tag": "asset",
            "n_traj": 2, "ckpt_step": 3200})  # fmt: skip
    _write(first, "baseline_fno_swe_step3200", {
        "variant": "swe", "arch": "fno", "step": 3200, "batch_size": 8, "samples": 25600,
        "parameters": 140062, "windows": 340, "nrmse": 0.03, "persistence": 0.02})  # fmt: skip
    ckpt = tmp_path / "pre" / "checkpoint"  # the main run: its log beside the checkpoint
    ckpt.mkdir(parents=True)
    log = [{"step": 50 * (i + 1), "loss": 1.0 / (i + 1), "nrmse": 0.5, "lr": 1e-4}
           for i in range(9)]  # fmt: skip
    (ckpt.parent / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    rep.report(first, str(ckpt), "data/mpp64", str(tmp_path / "out1"), "stable")
    before = json.loads((tmp_path / "out1" / "mpp_evidence.json").read_text())
    assert [r["step"] for r in before["pretrain_curve"]] == [50, 250, 450]  # every 4th

    again = tmp_path / "restored"
    counts = rep.restore(tmp_path / "out1" / "mpp_evidence.json", again)
    assert counts == {"cells": 15, "written": 15, "kept": 0, "curve_points": 3}

    def names(root: Path) -> list[str]:
        return sorted(p.parent.name for p in root.glob("*/result.json"))

    assert names(again) == names(first)
    assert _cell({"root": again}, "rollout_swe_step3200") == _cell(
        {"root": first}, "rollout_swe_step3200"
    )
    rep.report(again, str(tmp_path / "gone"), "data/mpp64", str(tmp_path / "out2"), "stable")
    after = json.loads((tmp_path / "out2" / "mpp_evidence.json").read_text())
    for key in set(before) | set(after):
        if key not in ("run", "pretrain_curve_from"):
            assert after[key] == before[key], key
    assert after["pretrain_curve_from"].endswith("mpp_evidence.json (restored)")

    def body(out: str) -> list[str]:  # below the run header, the curve's source left out
        md = (tmp_path / out / "mpp_evidence.md").read_text().split("\n## ", 1)[1]
        return [line for line in md.splitlines() if "Pretraining curve" not in line]

    assert body("out2") == body("out1")
    assert "| 2 | -/1 | - | - | - | 0.2000 | 0.2500 | 0.8000 |" in "\n".join(
        body("out2")
    )  # the tagged run

    # never overwrite: a cell already under the root (a newer run) stays as it is
    (again / "onestep_swe_step3200" / "result.json").write_text('{"mine": 1}')
    counts = rep.restore(tmp_path / "out1" / "mpp_evidence.json", again)
    assert counts["written"] == 0 and counts["kept"] == 15 and counts["curve_points"] == 0
    assert _cell({"root": again}, "onestep_swe_step3200") == {"mine": 1}


def test_restore_refuses_two_records_for_one_cell(tmp_path):
    from benchmarks import mpp_evidence_report as rep

    one = {"variant": "swe", "ckpt_step": 1, "trained_on": True, "windows": 3, "avit": 0.1,
           "persistence": 0.2}  # fmt: skip
    src = tmp_path / "r.json"
    src.write_text(json.dumps({"one_step": [one], "one_step_runs": [{**one, "avit": 0.3}]}))
    with pytest.raises(ValueError, match="onestep_swe_step1"):
        rep.restore(src, tmp_path / "cells")


def _swe_asset(study: dict, tmp_path: Path) -> tuple[Path, Path, int]:
    """The study's model packaged as an asset (no TrainConfig, a card), and SWE files in the
    layout of scripts/mpp_data.sh for its one system: (asset, data, batch size)."""
    from scifm.core import load_checkpoint, load_model, save_checkpoint
    from scifm.pde.generate import GenerateRequest, generate

    config, model = load_model(study["ckpt"])
    extra = dict(load_checkpoint(study["ckpt"])["record"]["extra"])
    batch = extra.pop("batch_size")
    extra.pop("train")
    extra["card"] = {"steps": 2, "batch_size": batch,
                     "made_by": {"training": "scripts/mpp_pretrain.sh"}}  # fmt: skip
    asset = tmp_path / "asset"
    save_checkpoint(asset, model.half(), config, extra=extra)
    data = tmp_path / "data"
    for split, n, seed in (("train", 2, 1301), ("test", 1, 2301), ("test_long", 1, 3301)):
        req = GenerateRequest(system="swe", n=n, res=16, n_frames=7, t_end=0.05, chunk_size=2,
                              seed=seed)  # the asset's system  # fmt: skip
        generate(req, data / split / "swe", progress=False)
    return asset, data, batch


def test_baselines_recipe_set_is_a_named_one_component_ablation(ev, study, tmp_path):
    """``baselines --recipe-set`` changes fields of the recipe (here of ``--recipe stable``):
    refused without a tag; under one, the cell names the base and the change and keeps the
    whole recipe, and the report's recipe table lists it by that name."""
    from benchmarks import mpp_evidence_report as rep
    from scifm.mpp.recipe import TrainRecipe

    asset, data, _ = _swe_asset(study, tmp_path)
    args = ["baselines", "--ckpt", str(asset), "--data", str(data), "--root", str(tmp_path / "c"),
            "--systems", "swe", "--archs", "avit", "--train", "tiny", "--train-set", "steps=4",
            "--recipe", "stable", "--recipe-set", "noise=0"]  # fmt: skip
    with pytest.raises(ValueError, match="--recipe stable: give a --tag"):
        ev.main(args)
    assert not (tmp_path / "c").exists()
    with pytest.raises(ValueError, match="nois"):  # an unknown field, named
        ev.main([*args[:-1], "nois=0", "--tag", "x"])
    assert ev.main([*args, "--tag", "ab-nonoise"]) == 0
    cell = json.loads(
        (tmp_path / "c" / "baseline_avit_swe_ab-nonoise_step2" / "result.json").read_text()
    )
    assert cell["recipe"] == "stable noise=0" and cell["tag"] == "ab-nonoise"
    stable = TrainRecipe.preset("stable").to_dict()
    assert cell["recipe_config"] == {**stable, "noise": 0.0}
    assert math.isfinite(cell["nrmse"])
    rep.report(tmp_path / "c", str(asset), str(data), str(tmp_path / "out"), "stable_random")
    md = (tmp_path / "out" / "mpp_evidence.md").read_text()
    assert "| swe | single-task AViT | 2 | stable noise=0 |" in md


def test_baselines_from_an_asset_need_the_schedule_its_card_names(ev, study, tmp_path):
    """A packaged asset records no TrainConfig: baselines refuse it until the training
    command's schedule is given, and refuse a second schedule for a trainer checkpoint."""
    asset, data, batch = _swe_asset(study, tmp_path)
    args = ["baselines", "--ckpt", str(asset), "--data", str(data), "--root", str(tmp_path / "c"),
            "--systems", "swe", "--archs", "avit"]  # fmt: skip
    with pytest.raises(ValueError, match="scripts/mpp_pretrain.sh.*--train small"):
        ev.main(args)
    with pytest.raises(ValueError, match="records its own training schedule"):
        _run(ev, "baselines", study, "--train", "tiny")
    assert not (tmp_path / "c").exists()
    assert ev.main([*args, "--train", "tiny", "--train-set", "steps=4"]) == 0
    cell = json.loads((tmp_path / "c" / "baseline_avit_swe_step2" / "result.json").read_text())
    assert cell["step"] == 2 and cell["batch_size"] == batch and cell["samples"] == 2 * batch
    assert math.isfinite(cell["nrmse"])
    # gap: the pretrained model and the surviving baseline run, on train and held-out files
    gap_args = ["gap", "--ckpt", str(asset), "--data", str(data), "--root", str(tmp_path / "c")]
    assert ev.main(gap_args) == 0
    gaps = {p.parent.name: json.loads(p.read_text())
            for p in (tmp_path / "c").glob("gap_*/result.json")}  # fmt: skip
    assert set(gaps) == {"gap_mpp_swe_step2", "gap_avit_swe_step2"}
    assert gaps["gap_avit_swe_step2"]["test_nrmse"] == pytest.approx(cell["nrmse"])
    for g in gaps.values():
        assert g["train_windows"] == 2 * g["test_windows"] > 0
        assert all(math.isfinite(g[k]) and g[k] > 0
                   for k in ("train_nrmse", "test_nrmse", "test_nrmse_own_last"))  # fmt: skip
    assert gaps["gap_mpp_swe_step2"]["recipe"] == "paper"
    from mpp_evidence_report import _gap_table

    table = "\n".join(_gap_table(list(gaps.values())))
    assert "| MPP pretrained | swe | 2 | paper |" in table
    assert "| single-task AViT | swe | 2 | paper |" in table
    # a recipe ablation of the baseline: refused untagged, else its own cells and run folder,
    # reported beside the baseline trained with the pretraining's recipe
    with pytest.raises(ValueError, match="--recipe stable: give a --tag"):
        ev.main([*args, "--train", "tiny", "--train-set", "steps=4", "--recipe", "stable"])
    assert ev.main([*args, "--train", "tiny", "--train-set", "steps=4", "--recipe", "stable",
                    "--tag", "st"]) == 0  # fmt: skip
    abl = json.loads((tmp_path / "c" / "baseline_avit_swe_st_step2" / "result.json").read_text())
    assert abl["recipe"] == "stable" and abl["tag"] == "st" and (tmp_path / "c" /
        "baseline_avit_swe_st" / "checkpoint").is_dir()  # fmt: skip
    assert abl["nrmse"] != cell["nrmse"]  # trained anew, with the noise and the pushforward
    assert json.loads((tmp_path / "c" / "baseline_avit_swe_step2" / "result.json").read_text()) \
        == cell  # fmt: skip
    from mpp_evidence_report import _baseline_recipe_table, _baseline_table

    rows = _baseline_recipe_table([cell, abl], list(gaps.values()))
    assert (f"| swe | single-task AViT | 2 | stable | {abl['nrmse']:.4f} | "
            f"{cell['nrmse']:.4f} (paper) | - | {cell['persistence']:.4f} |") in rows  # fmt: skip
    mpp = {"variant": "swe", "recipe": "stable", "ckpt_step": 2, "avit": 0.125}
    rows = _baseline_recipe_table([cell, abl], list(gaps.values()), [mpp])
    assert any(r.endswith(f"| 0.1250 | {cell['persistence']:.4f} |") for r in rows)
    assert "stable" not in "\n".join(_baseline_table([cell], {}))
    # the tagged run folder (baseline_avit_swe_st) is a run of swe, tag st: gap and rollouts
    # find it by its checkpoint's system, and its cells do not replace the untagged run's
    assert ev.main(gap_args) == 0
    st_gap = json.loads((tmp_path / "c" / "gap_avit_swe_st_step2" / "result.json").read_text())
    assert st_gap["tag"] == "st" and st_gap["recipe"] == "stable"
    assert st_gap["test_nrmse"] == pytest.approx(abl["nrmse"])
    roll_args = ["baseline-rollout", "--data", str(data), "--root", str(tmp_path / "c")]
    assert ev.main(roll_args) == 0
    rolls = {p.parent.name: json.loads(p.read_text())
             for p in (tmp_path / "c").glob("baseline-rollout_*/result.json")}  # fmt: skip
    assert set(rolls) == {"baseline-rollout_avit_swe_step2", "baseline-rollout_avit_swe_st_step2"}
    for r in rolls.values():  # 7 frames, 4 of context: 3 steps, the first one the gap's
        assert r["steps"] == 3 == len(r["model"]) == len(r["persistence"])
        assert all(math.isfinite(v) and v > 0 for v in r["model"])
    assert rolls["baseline-rollout_avit_swe_st_step2"]["ckpt"].endswith(
        "baseline_avit_swe_st/checkpoint"
    )
    from mpp_evidence_report import _rollout_md, rollout_criteria

    for r in rolls.values():
        r.update(rollout_criteria(r))
    md = "\n".join(_rollout_md([], "paper", list(rolls.values())))
    assert "| swe | single-task AViT: st (stable) @ 2 | True |" in md
    assert "| swe | single-task AViT: baseline (paper) @ 2 | True |" in md
    assert "- single-task AViT: st (stable), step 2: below persistence at k=20 on 0 of 1" in md
    # a lost runs/: the report's JSON brings the baseline rollout and tagged gap cells back
    ev.main(["report", "--ckpt", str(asset), "--data", str(data), "--root", str(tmp_path / "c"),
             "--out", str(tmp_path / "out")])  # fmt: skip
    ev.main(["restore", "--from", str(tmp_path / "out" / "mpp_evidence.json"),
             "--root", str(tmp_path / "back")])  # fmt: skip
    back = {p.parent.name for p in (tmp_path / "back").glob("*/result.json")}
    assert set(rolls) | {"gap_avit_swe_st_step2", "gap_avit_swe_step2"} <= back
    # a second seed: its own run folder and cells (seed 0 keeps its names), another init and
    # data order; tables give mean ± sd over the seeds, gap and rollouts find it
    assert ev.main([*args, "--train", "tiny", "--train-set", "steps=4", "--seeds", "0", "1"]) == 0
    s1 = json.loads((tmp_path / "c" / "baseline_avit_swe_s1_step2" / "result.json").read_text())
    assert s1["seed"] == 1 and s1["nrmse"] != cell["nrmse"]
    assert (tmp_path / "c" / "baseline_avit_swe_s1" / "checkpoint").is_dir()
    table = "\n".join(_baseline_table([cell, s1], {}))
    mean, sd = (cell["nrmse"] + s1["nrmse"]) / 2, abs(cell["nrmse"] - s1["nrmse"]) / 2**0.5
    assert f"| {mean:.4f} ± {sd:.4f} (2) |" in table
    with pytest.raises(ValueError, match="non-negative"):
        ev.main([*args, "--train", "tiny", "--train-set", "steps=4", "--seeds", "-1"])
    assert ev.main(gap_args) == 0 and ev.main(roll_args) == 0
    g1 = json.loads((tmp_path / "c" / "gap_avit_swe_s1_step2" / "result.json").read_text())
    assert g1["seed"] == 1 and g1["tag"] is None and g1["recipe"] == "paper"
    assert g1["test_nrmse"] == pytest.approx(s1["nrmse"])
    r1 = json.loads((tmp_path / "c" / "baseline-rollout_avit_swe_s1_step2" / "result.json")
                    .read_text())  # fmt: skip
    assert r1["seed"] == 1 and r1["ckpt"].endswith("baseline_avit_swe_s1/checkpoint")
    # a run whose checkpoint is at no finished milestone (still training) is left alone
    (tmp_path / "c" / "baseline_avit_swe_s1_step2" / "result.json").unlink()
    (tmp_path / "c" / "baseline-rollout_avit_swe_s1_step2" / "result.json").unlink()
    assert ev.main(roll_args) == 0
    assert not (tmp_path / "c" / "baseline-rollout_avit_swe_s1_step2" / "result.json").exists()


def test_scratch_cells_are_reused_across_runs_only_when_they_match(ev, study):
    """--reuse-scratch copies another run's scratch cell of the same N, seed and schedule
    (naming its source), trains anew when the schedule differs, and never touches the
    pretrained cells."""
    args = ("--variant", "cns_m1.0", "--ns", "1", "--steps", "2", "--batch-size", "2")
    assert _run(ev, "transfer", study, *args) == 0  # the untagged run's cells (maybe kept)
    old = _cell(study, "cns_m1.0_scratch_n1_s0")
    assert _run(ev, "transfer", study, *args, "--tag", "b", "--reuse-scratch", "") == 0
    new = _cell(study, "cns_m1.0_b_scratch_n1_s0")
    assert new["reused_from"].endswith("cns_m1.0_scratch_n1_s0") and new["tag"] == "b"
    assert new["one_step_nrmse"] == old["one_step_nrmse"]
    assert "reused_from" not in _cell(study, "cns_m1.0_b_pretrained_n1_s0")
    steps3 = ("--variant", "cns_m1.0", "--ns", "1", "--steps", "3", "--batch-size", "2")
    assert _run(ev, "transfer", study, *steps3, "--tag", "c", "--reuse-scratch", "") == 0
    assert "reused_from" not in _cell(study, "cns_m1.0_c_scratch_n1_s0")  # trained anew


def test_a_replicas_shifted_seed_keeps_its_recipe_name(ev):
    """``baselines --seeds`` shifts the recipe's seed: still the same preset, by name."""
    from scifm.mpp.recipe import TrainRecipe

    stable = TrainRecipe.preset("stable").to_dict()
    assert ev._recipe_of({"recipe": stable | {"seed": stable["seed"] + 2}}) == "stable"
    assert ev._recipe_of({"recipe": stable | {"noise": 0.5}}) == "stable noise=0.5"
    rms = TrainRecipe.preset("stable_random").to_dict() | {"loss_norm": "rms", "seed": 3}
    assert ev._recipe_of({"recipe": rms}) == "stable_random loss_norm=rms"
    assert ev._recipe_of({}) == "paper"


def test_a_run_reused_with_other_slots_is_refused_by_name(ev, study):
    """A tag's finished cells are kept only for the slots they were made with: the same tag
    asked again with the reserved slots (or others) names the cell instead of reporting the
    old slots' numbers under the new request."""
    args = ("--variant", "cns_m1.0", "--ns", "1", "--steps", "2", "--batch-size", "2")
    assert _run(ev, "transfer", study, *args, "--tag", "sl", "--slots", "1", "2", "8", "9") == 0
    cell = _cell(study, "cns_m1.0_sl_pretrained_n1_s0")
    assert cell["field_index"] == [1, 2, 8, 9]
    assert _run(ev, "transfer", study, *args, "--tag", "sl", "--slots", "1", "2", "8", "9") == 0
    two = ("--variant", "cns_m1.0", "--ns", "2", "1", "--steps", "2", "--batch-size", "2")
    with pytest.raises(SystemExit, match=r"cns_m1.0_sl_pretrained_n1_s0.*\[1, 2, 8, 9\]"):
        _run(ev, "transfer", study, *two, "--tag", "sl")  # refused before N = 2 is trained
    assert not (study["root"] / "cns_m1.0_sl_pretrained_n2_s0").exists()
    with pytest.raises(SystemExit, match="asked for \\[2, 1, 8, 9\\]"):
        _run(ev, "transfer", study, *args, "--tag", "sl", "--slots", "2", "1", "8", "9")
    assert _cell(study, "cns_m1.0_sl_pretrained_n1_s0") == cell  # nothing rewritten


def test_report_refuses_a_main_run_no_cell_carries(tmp_path):
    """``report --tag`` with a name no rollout or one-step cell carries (a typo) is an error,
    not a report whose page figures are silently empty."""
    from benchmarks import mpp_evidence_report as rep

    root = tmp_path / "cells"
    _fabricate(root)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="'lnog14k'.*no rollout or one-step cell"):
        rep.report(root, str(tmp_path / "no_ckpt"), str(tmp_path), str(out), "stable", "lnog14k")
    assert not out.exists()


def test_the_report_shows_a_field_left_at_persistence(tmp_path):
    """A one-step cell's ``fields`` and a baseline cell's ``nrmse_fields`` give one row a
    field, with its ratio to that field's persistence: a model better than persistence on
    the mean can leave a field exactly at persistence, and the table says so."""
    from benchmarks import mpp_evidence_report as rep

    root = tmp_path / "cells"
    fields = {"vx": {"avit": 0.1036, "persistence": 0.1036},
              "particles": {"avit": 0.0225, "persistence": 0.0557}}  # fmt: skip
    _write(root, "onestep_long14k_ins_step14000", {
        "variant": "ins", "ckpt_step": 14000, "trained_on": True, "windows": 340,
        "tag": "long14k", "recipe": "stable_random", "avit": 0.063, "persistence": 0.0797,
        "fields": fields})  # fmt: skip
    _write(root, "baseline_avit_ins_ab-rmsloss_step1067", {
        "variant": "ins", "arch": "avit", "step": 1067, "tag": "ab-rmsloss",
        "recipe": "stable loss_norm=rms", "nrmse": 0.069, "persistence": 0.0797,
        "parameters": 1, "nrmse_fields": {"vx": 0.0962, "particles": 0.0416}})  # fmt: skip
    rep.report(root, str(tmp_path / "no_ckpt"), str(tmp_path), str(tmp_path / "out"), None)
    md = (tmp_path / "out" / "mpp_evidence.md").read_text()
    table = md.split("### One field at a time")[1].split("###")[0]
    assert "| ins | MPP long14k (stable_random) @ 14000 | vx | 0.1036 (1.00x) | 0.1036 |" in table
    assert "| particles | 0.0225 (0.40x) | 0.0557 |" in table
    row = "| single-task AViT (ab-rmsloss), stable loss_norm=rms @ 1067 | vx | 0.0962 (0.93x) |"
    assert row in table
