"""The model card packager and ``scifm mpp rollout/evaluate --file`` on a user's own files."""

from __future__ import annotations

import json
import math
import shutil

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from scifm.cli import main
from scifm.core import load_model
from scifm.core.resume import read_metrics
from scifm.mpp.assets import main as assets_main
from scifm.mpp.card import learning_curve, wall_time
from scifm.mpp.metrics import nmse_per_field
from scifm.mpp.package import FP16_TOLERANCE
from scifm.pde import parameter_ranges, read_any

COMMON = ["--n", "2", "--chunk", "2", "--no-progress", "--device", "cpu"]


def _generate(out, system, res, frames, *extra, fmt="pdebench"):
    assert main(["pde", "generate", "--system", system, "--format", fmt, "--res", str(res),
                 "--frames", str(frames), "--out", str(out), *COMMON, *extra]) == 0  # fmt: skip
    return out


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A tiny AViT pretrained on 16^2 SWE (PDEBench) and diffusion-reaction (Well) files,
    packaged next to a MANIFEST.json that already lists another model."""
    root = tmp_path_factory.mktemp("card")
    swe = _generate(root / "train" / "swe", "swe", 16, 8, "--seed", "5")
    dr = _generate(root / "train" / "dr", "diffreact", 16, 8, fmt="well")
    run = root / "run"
    assert main(["mpp", "pretrain", "--model", "tiny", "--data", "tiny", "--train", "tiny",
                 "--train-set", "steps=3", "log_every=1", "progress=false", "--batch-size", "2",
                 "--files", f"swe={swe}", f"diffreact={dr}", "--out", str(run)]) == 0  # fmt: skip
    assets = root / "assets"
    assets.mkdir()
    (assets / "MANIFEST.json").write_text(json.dumps({"files": {"old": "kept"}, "wall_s": 1}))
    out = assets / "avit_tiny"
    assert assets_main(["package", "--ckpt", str(run / "checkpoint"), "--metrics",
                        str(run / "metrics.jsonl"), "--train-command", "tiny test run",
                        "--out", str(out)]) == 0  # fmt: skip
    return {"root": root, "run": run, "ckpt": out, "swe": swe}


def test_package_round_trips_a_tiny_model_with_its_card(shipped):
    out, run = shipped["ckpt"], shipped["run"]
    assert {v.dtype for v in load_file(str(out / "model.safetensors")).values()} == {torch.float16}
    _, model = load_model(out)
    _, model32 = load_model(run / "checkpoint")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    x = torch.rand(2, 4, 2, 16, 16, generator=torch.Generator().manual_seed(0))  # u, v
    with torch.no_grad():
        a, b = model(x, [4, 5], False), model32(x, [4, 5], False)
    update = (b - x[:, -1]).norm()
    assert update > 0 and float((a - b).norm() / update) < FP16_TOLERANCE
    assert not torch.equal(a, b)  # the weights really were rounded
    for (k, p16), p32 in zip(model.state_dict().items(), model32.state_dict().values()):
        assert torch.equal(p16, p32.half().float()), k

    manifest = json.loads((out.parent / "MANIFEST.json").read_text())
    assert manifest["files"]["old"] == "kept" and manifest["wall_s"] == 1
    card = manifest["cards"]["avit_tiny"]
    assert json.loads((out / "config.json").read_text())["extra"]["card"] == card
    swe = card["data"]["swe"]
    assert (swe["system"], swe["trajectories"], swe["resolution"], swe["frames"]) == (
        "swe", 2, 16, 8
    )  # fmt: skip
    assert swe["seed"] == 5 and swe["time_span"] == [0.0, 1.0]
    assert swe["frame_spacing"] == pytest.approx(1 / 7)
    assert swe["parameter_ranges"] == {k: list(v) for k, v in parameter_ranges("swe").items()}
    assert card["data"]["diffreact"]["parameter_ranges"]["Du"] == [1e-3, 1e-3]
    assert (card["resolution"], card["patch_size"], card["tokens_per_frame"]) == (16, 8, 4)
    assert (card["steps"], card["batch_size"], card["samples_seen"]) == (3, 2, 6)
    records = read_metrics(run / "metrics.jsonl")
    assert card["learning_curve"]["step"] == [1, 2, 3]
    assert card["learning_curve"]["loss"] == [float(f"{r['loss']:.6g}") for r in records]
    assert card["wall_time"]["seconds"] == float(f"{wall_time(records, 2):.3g}") > 0
    assert "tiny test run" == card["made_by"]["training"]
    assert card["made_by"]["packaging"].startswith("python -m scifm.mpp.assets package --ckpt")


def test_metrics_keep_the_last_record_per_step_and_curve_has_at_most_100_points(tmp_path):
    recs = [{"step": s, "loss": 1.0 / s, "samples_per_s": 4.0} for s in range(10, 2510, 10)]
    resumed = [{"step": s, "loss": -1.0, "samples_per_s": 2.0} for s in (2010, 2020)]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs + resumed) + "\n")
    got = read_metrics(path, up_to=2400)
    assert [r["step"] for r in got] == list(range(10, 2410, 10))
    assert got[200]["loss"] == -1.0 and got[201]["loss"] == -1.0  # the resumed run's records
    # 10 steps x batch 8 per record: 80 samples at 4/s = 20 s, at 2/s (two records) = 40 s
    assert wall_time(got, 8) == pytest.approx(238 * 20 + 2 * 40)
    curve = learning_curve(got)
    assert len(curve["step"]) == 100 and curve["step"][0] == 10 and curve["step"][-1] == 2400
    path.write_text('{"loss": 1}\n')
    with pytest.raises(ValueError, match="metrics.jsonl:1: not a metrics record"):
        read_metrics(path)


def _run(capsys, command, ckpt, path, *extra):
    capsys.readouterr()
    code = main(["mpp", command, "--ckpt", str(ckpt), "--file", str(path), *extra])
    cap = capsys.readouterr()
    warnings = [ln for ln in cap.err.splitlines() if ln.startswith("WARNING: ")]
    if code == 0:
        assert len(warnings) == len(cap.err.splitlines())  # nothing else on stderr
    return code, (json.loads(cap.out) if code == 0 else None), warnings, cap.err


def test_rollout_and_evaluate_a_users_file_against_persistence(shipped, tmp_path, capsys):
    path = _generate(tmp_path / "mine", "swe", 16, 8, "--seed", "9") / "2D_rdb_NA_NA.h5"
    code, out, warnings, _ = _run(capsys, "rollout", shipped["ckpt"], path, "--steps", "3")
    assert code == 0 and warnings == []
    assert (out["variant"], out["res"], out["pool"], out["frame_stride"]) == ("swe", 16, 1, 1)
    assert out["steps"] == 3 and len(out["avit"]) == len(out["persistence"]) == 3
    assert all(math.isfinite(v) for v in out["avit"])
    f = read_any(path).fields  # (2, 8, 1, 16, 16): persistence computed independently
    want = [float(nmse_per_field(f[:, 3], f[:, 4 + k]).sqrt().mean()) for k in range(3)]
    assert out["persistence"] == pytest.approx(want, abs=1e-6)

    for command in ("rollout", "evaluate"):  # --systems picks simulated data, never a file's
        code, _, _, err = _run(capsys, command, shipped["ckpt"], path, "--systems", "bogus")
        assert code == 1 and "--systems bogus: not with --file" in err

    code, out, warnings, _ = _run(capsys, "evaluate", shipped["ckpt"], path, "--n-test", "1")
    assert code == 0 and warnings == []
    assert out["trajectories"] == 1 and out["windows"] == 4  # 8 frames, 4 of context
    assert out["persistence"] == pytest.approx(
        sum(float(nmse_per_field(f[0, 3 + k], f[0, 4 + k]).sqrt().mean()) for k in range(4)) / 4
    )
    # field by field (SWE has one: the height), the same figures
    assert list(out["fields"]) == ["h"]
    assert out["fields"]["h"] == pytest.approx(
        {"avit": out["avit"], "persistence": out["persistence"]}
    )
    # fewer frames than the asked rollout: all that exist, and a warning
    code, out, warnings, _ = _run(capsys, "rollout", shipped["ckpt"], path, "--steps", "9")
    assert out["steps"] == 4 and len(warnings) == 1 and "4 rollout steps, not 9" in warnings[0]


def test_files_unlike_the_card_are_run_with_one_warning_each(shipped, tmp_path, capsys):
    ckpt = shipped["ckpt"]
    big = _generate(tmp_path / "big", "swe", 32, 8, "--t-end", "2.0") / "2D_rdb_NA_NA.h5"
    code, out, warnings, _ = _run(capsys, "rollout", ckpt, big, "--steps", "2")
    assert code == 0 and out["pool"] == 2 and len(warnings) == 2
    assert "grid 32x32 differs from the model's 16x16: average-pooled by 2" in warnings[0]
    assert "frame spacing 0.2857 (frame stride 1" in warnings[1]
    assert "differs from the card's 0.1429 for swe" in warnings[1]

    dr = _generate(tmp_path / "dr", "diffreact", 16, 8, "--param", "Du=0.01", fmt="well")
    code, out, warnings, _ = _run(capsys, "evaluate", ckpt, next(dr.rglob("*.hdf5")))
    assert code == 0 and len(warnings) == 1
    assert (
        "parameters outside the model card's ranges: Du=0.01 (card diffreact: [0.001"
        in (warnings[0])
    )
    well = next(dr.rglob("*.hdf5"))
    with h5py.File(well, "r+") as f:  # a NaN parameter: in no range, so said, not skipped
        f["scalars/Du"][...] = np.nan
    code, out, warnings, _ = _run(capsys, "evaluate", ckpt, well)
    assert code == 0 and len(warnings) == 1
    assert "parameters holding NaN or inf, not checked against the model card: Du" in warnings[0]
    ins = _generate(tmp_path / "ins", "ins", 16, 8)
    code, out, warnings, _ = _run(capsys, "evaluate", ckpt, next(ins.glob("*.h5")))
    assert code == 0 and len(warnings) == 1 and math.isfinite(out["avit"])
    assert "the model was not trained on ins (trained: diffreact, swe)" in warnings[0]
    assert list(out["fields"]) == ["vx", "vy", "particles"]  # the file's own system's fields
    cns = _generate(tmp_path / "cns", "cns", 16, 8, "--param", "M=0.1")
    code, out, _, _ = _run(capsys, "evaluate", ckpt, next(cns.glob("*.h*5")))
    assert code == 0 and list(out["fields"]) == ["vx", "vy", "density", "pressure"]
    assert out["fields"]["density"]["avit"] == out["fields"]["density"]["persistence"]  # untrained
    assert f"fine-tune first: scifm mpp finetune --ckpt {ckpt} --system ins" in warnings[0]


def test_a_checkpoint_without_a_card_says_so_once(shipped, tmp_path, capsys):
    path = shipped["swe"] / "2D_rdb_NA_NA.h5"
    code, _, warnings, _ = _run(capsys, "rollout", shipped["run"] / "checkpoint", path)
    assert code == 0 and len(warnings) == 1 and "no model card" in warnings[0]
    # the same weights with their card only in MANIFEST.json: the card is found there
    bare = tmp_path / "assets" / "bare"
    shutil.copytree(shipped["run"] / "checkpoint", bare)
    card = json.loads((shipped["ckpt"].parent / "MANIFEST.json").read_text())["cards"]["avit_tiny"]
    (bare.parent / "MANIFEST.json").write_text(json.dumps({"cards": {"bare": card}}))
    big = _generate(tmp_path / "big", "swe", 32, 8) / "2D_rdb_NA_NA.h5"
    code, _, warnings, _ = _run(capsys, "evaluate", bare, big)
    assert code == 0 and len(warnings) == 1 and "average-pooled by 2" in warnings[0]


def test_a_corrupt_or_coarse_file_is_one_clean_error(shipped, tmp_path, capsys):
    good = shipped["swe"] / "2D_rdb_NA_NA.h5"
    bad = tmp_path / "cut.h5"
    bad.write_bytes(good.read_bytes()[:2000])
    for command in ("rollout", "evaluate"):
        code, out, _, err = _run(capsys, command, shipped["ckpt"], bad)
        assert code == 1 and out is None
        assert err.startswith("scifm: error: ") and err.count("\n") == 1
        assert "cut.h5: cannot open as HDF5" in err
    coarse = _generate(tmp_path / "coarse", "swe", 8, 8) / "2D_rdb_NA_NA.h5"
    code, _, _, err = _run(capsys, "rollout", shipped["ckpt"], coarse)
    assert code == 1 and "grid 8x8 cannot be average-pooled to 16x16" in err


def test_warm_start_continues_a_shipped_model_and_its_card(shipped, tmp_path, capsys):
    """`pretrain --warm-start ASSET` goes on from the card's step with its weights, curve and
    wall time; the continued run's own card records where it came from. A different batch
    is refused before anything is written."""
    swe, dr = shipped["swe"], shipped["root"] / "train" / "dr"
    args = ["mpp", "pretrain", "--model", "tiny", "--data", "tiny", "--train", "tiny",
            "--train-set", "steps=6", "log_every=1", "progress=false",
            "--files", f"swe={swe}", f"diffreact={dr}",
            "--warm-start", str(shipped["ckpt"])]  # fmt: skip
    assert main([*args, "--batch-size", "4", "--out", str(tmp_path / "bad")]) != 0
    assert "avit_tiny: batch 2, not 4" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    run = tmp_path / "more"
    assert main([*args, "--batch-size", "2", "--out", str(run)]) == 0
    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl")]
    assert steps == [1, 2, 3, 4, 5, 6]  # the card's three, then this run's
    out = tmp_path / "assets" / "avit_more"
    assert assets_main(["package", "--ckpt", str(run / "checkpoint"), "--metrics",
                        str(run / "metrics.jsonl"), "--train-command", "warm",
                        "--out", str(out)]) == 0  # fmt: skip
    card = json.loads((out.parent / "MANIFEST.json").read_text())["cards"]["avit_more"]
    old = json.loads((shipped["ckpt"].parent / "MANIFEST.json").read_text())["cards"]["avit_tiny"]
    assert card["steps"] == 6 and card["learning_curve"]["step"] == steps
    assert card["warm_start"]["step"] == 3 and card["warm_start"]["weights_dtype"] == "float16"
    assert card["wall_time"]["seconds"] > old["wall_time"]["seconds"] > 0


def test_a_card_lists_every_folder_a_variant_trained_on(tmp_path):
    """A variant trained on PDEBench-span files and on longer runs at the same frame spacing
    (issue 13's long-span ablation): the card describes the first folder and lists the other
    under ``more``, both at the spacing the model saw, and every folder's seeds count as seen."""
    from scifm.mpp.card import data_from_files
    from scifm.mpp.heldout import card_training_seeds, heldout_line

    short = _generate(tmp_path / "short", "swe", 16, 8, "--seed", "5")
    long = _generate(tmp_path / "long", "swe", 16, 15, "--seed", "9", "--t-end", "2.0")
    data = data_from_files([f"swe={short}", f"swe={long}"], res=16, frames=8)
    assert set(data) == {"swe"}
    first, (more,) = data["swe"], data["swe"]["more"]
    assert (first["seed"], first["frames"], first["time_span"]) == (5, 8, [0.0, 1.0])
    assert (more["seed"], more["frames"], more["time_span"]) == (9, 15, [0.0, 2.0])
    assert first["frame_spacing"] == pytest.approx(1 / 7) == more["frame_spacing"]
    assert more["source"] == str(long) and "more" not in more
    from scifm.pde.generate import GenerateRequest

    seeds = card_training_seeds({"data": data})
    assert len(seeds["swe"]) == 4 and sum(str(long) in w for w in seeds["swe"].values()) == 2
    long_seed = GenerateRequest(system="swe", n=2, seed=9, chunk_size=1).chunk_seed(1)
    assert heldout_line(seeds, "swe", long_seed)[0] == "seen"
    with pytest.raises(ValueError, match=r"data\['swe'\]\['more'\]\[0\].*'seed'"):
        card_training_seeds({"data": {"swe": {**first, "more": [{"trajectories": 2}]}}})


def test_a_parameter_inside_any_folder_a_variant_trained_on_is_not_flagged(tmp_path):
    """The user-file check reads the ranges of every folder of a variant (``more`` too): a
    value only the second folder covered is inside the card; one outside both is named with
    both folders' ranges."""
    from dataclasses import replace

    from scifm.mpp.userfile import _parameter_warnings
    from scifm.pde.filewindows import scan_file

    info = scan_file(_generate(tmp_path / "dr", "diffreact", 16, 8) / "2D_diff-react_NA_NA.h5")
    card = {"diffreact": {"system": "diffreact", "parameter_ranges": {"Du": [0.001, 0.001]},
                          "more": [{"parameter_ranges": {"Du": [0.005, 0.02]}}]}}  # fmt: skip
    inside = replace(info, ranges={"Du": (0.01, 0.01)})
    assert _parameter_warnings(tmp_path, inside, card) == []
    (line,) = _parameter_warnings(tmp_path, replace(info, ranges={"Du": (0.5, 0.5)}), card)
    assert "Du=0.5 (card diffreact: [0.001, 0.001]; diffreact: [0.005, 0.02])" in line
