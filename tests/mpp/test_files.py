"""MPP trains from PDEBench and The Well files written by ``scifm pde generate``; bad input."""

from __future__ import annotations

import json

import h5py
import pytest

from scifm.cli import main


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A PDEBench SWE file at 32^2 and a Well diffusion-reaction tree at 16^2, 6 frames."""
    root = tmp_path_factory.mktemp("pde")
    common = ["--n", "2", "--frames", "6", "--chunk", "2", "--no-progress", "--device", "cpu"]
    for system, fmt, res in (("swe", "pdebench", "32"), ("diffreact", "well", "16")):
        out = root / fmt
        assert main(["pde", "generate", "--system", system, "--format", fmt, "--res", res,
                     "--out", str(out), *common]) == 0  # fmt: skip
    return {"pdebench": root / "pdebench" / "2D_rdb_NA_NA.h5", "well": root / "well"}


def _pretrain(out, *files, steps=3, extra=()):
    return main(
        ["mpp", "pretrain", "--model", "tiny", "--data", "tiny", "--train", "tiny",
         "--train-set", f"steps={steps}", "log_every=1", "progress=false", *extra,
         "--batch-size", "2", "--out", str(out), "--files", *map(str, files)]
    )  # fmt: skip


def test_pretrain_from_a_pdebench_file_and_a_well_directory(generated, tmp_path, capsys):
    capsys.readouterr()
    assert _pretrain(tmp_path / "run", generated["pdebench"], generated["well"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["step"] == 3
    record = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert set(record["extra"]["systems"]) == {"swe", "diffreact"}
    log = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in log] == [1, 2, 3]


def test_pretrain_from_files_with_loader_workers_matches_in_process(generated, tmp_path):
    from safetensors.torch import load_file

    files = (generated["pdebench"], generated["well"])
    assert _pretrain(tmp_path / "a", *files) == 0
    assert _pretrain(tmp_path / "b", *files, extra=("loader_workers=2",)) == 0
    a, b = (load_file(str(tmp_path / r / "checkpoint" / "model.safetensors")) for r in "ab")
    assert all((a[k] == b[k]).all() for k in a)


def test_finetune_from_a_well_file(generated, tmp_path, capsys):
    assert _pretrain(tmp_path / "pre", generated["pdebench"], steps=2) == 0
    capsys.readouterr()
    code = main(
        ["mpp", "finetune", "--ckpt", str(tmp_path / "pre" / "checkpoint"), "--system",
         "diffreact", "--files", str(generated["well"]), "--res", "16", "--sim-frames", "6",
         "--train", "tiny", "--train-set", "steps=2", "progress=false", "--batch-size", "2",
         "--out", str(tmp_path / "ft")]
    )  # fmt: skip
    assert code == 0 and json.loads(capsys.readouterr().out)["step"] == 2


def test_finetune_checks_every_value_first(generated, tmp_path, capsys):
    import shutil

    assert _pretrain(tmp_path / "pre", generated["pdebench"], steps=2) == 0
    bad = tmp_path / "2D_rdb_NA_NA.h5"
    shutil.copy(generated["pdebench"], bad)
    with h5py.File(bad, "r+") as f:  # the last frame of the last trajectory: 1 step draws 2
        last = sorted(k for k in f if k.isdigit())[-1]
        f[last]["data"][-1, 0, 0, 0] = float("inf")
    capsys.readouterr()
    code = main(
        ["mpp", "finetune", "--ckpt", str(tmp_path / "pre" / "checkpoint"), "--system", "swe",
         "--files", str(bad), "--res", "32", "--train", "tiny", "--train-set", "steps=1",
         "progress=false", "--batch-size", "2", "--out", str(tmp_path / "ft")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "trajectory 1, frames 0:6:1: 1 non-finite values" in err, err
    assert not (tmp_path / "ft").exists()


def _error(capsys, out, *files) -> str:
    capsys.readouterr()
    assert _pretrain(out, *files) == 1
    assert not out.exists()  # nothing written on failure
    err = capsys.readouterr().err.strip()
    assert err.startswith("scifm: error:") and "\n" not in err
    return err


def test_bad_input_is_one_clear_error_and_writes_nothing(generated, tmp_path, capsys):
    wrong = tmp_path / "wrong.h5"
    with h5py.File(wrong, "w") as f:
        f["0000/grid/x"] = [0.0]
    assert "wrong.h5: missing key 'data'" in _error(capsys, tmp_path / "r1", wrong)
    (tmp_path / "empty").mkdir()
    assert "empty: empty directory" in _error(capsys, tmp_path / "r2", tmp_path / "empty")
    named = f"cns_m0.1={generated['pdebench']}"
    assert "holds swe data; expected cns data for 'cns_m0.1'" in _error(
        capsys, tmp_path / "r3", named
    )
    # the same file twice (here once in a folder, once by name) would train twice as often
    pdebench = generated["pdebench"]
    twice = _error(capsys, tmp_path / "r4", pdebench.parent, f"swe={pdebench}")
    assert "2D_rdb_NA_NA.h5: given twice" in twice and "each training file is read once" in twice


def test_a_system_whose_files_disagree_is_refused(generated, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["pde", "generate", "--system", "swe", "--n", "1", "--frames", "7", "--res",
                 "32", "--out", str(other), "--no-progress", "--device", "cpu"]) == 0  # fmt: skip
    err = _error(capsys, tmp_path / "r", generated["pdebench"], other / "2D_rdb_NA_NA.h5")
    assert "other/2D_rdb_NA_NA.h5: swe data of (frames, x, y) (7, 16, 16) with frames" in err
    assert "apart at res=16" in err and "expected swe (6, 16, 16), frames 0.2 apart" in err


def test_finetune_puts_the_fields_in_chosen_slots(generated, tmp_path, capsys):
    """``--field-index``: a new system's fields in slots a pretraining system trained (e.g.
    CNS's velocities where INS's trained); a wrong count, a repeat or a slot outside the
    table is refused before anything is written."""
    from scifm.mpp.experiment import load_surrogate

    assert _pretrain(tmp_path / "pre", generated["pdebench"], steps=2) == 0
    args = [
        "mpp",
        "finetune",
        "--ckpt",
        str(tmp_path / "pre" / "checkpoint"),
        "--system",
        "diffreact",
        "--files",
        str(generated["well"]),
        "--res",
        "16",
        "--sim-frames",
        "6",
        "--train",
        "tiny",
        "--train-set",
        "steps=2",
        "progress=false",
        "--batch-size",
        "2",
    ]
    want = "expected 2 distinct slots in [0, 12), one per field of diffreact (u, v)"
    for bad in ("0", "0 0", "0 12"):  # too few, a repeat, beyond the table's 12 slots
        capsys.readouterr()
        out = tmp_path / f"bad_{bad.replace(' ', '_')}"
        assert main([*args, "--field-index", *bad.split(), "--out", str(out)]) != 0
        err = capsys.readouterr().err
        assert f"field_index [{bad.replace(' ', ', ')}]: {want}" in err
        assert not out.exists()
    capsys.readouterr()
    assert main([*args, "--field-index", "0", "6", "--out", str(tmp_path / "ft")]) == 0
    _, systems = load_surrogate(tmp_path / "ft" / "checkpoint")
    assert systems["diffreact"]["field_index"] == [0, 6]
    import torch

    from scifm.core import TrainConfig
    from scifm.mpp.experiment import finetune

    model, _ = load_surrogate(tmp_path / "pre" / "checkpoint")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for bad in ([0, 6.5], [0, float("nan")], [0, float("inf")], [True, 6], ["0", 6]):
        with pytest.raises(ValueError, match=r"field_index \[.*\]: slots are whole numbers"):
            finetune(model, "diffreact", torch.zeros(1, 6, 2, 16, 16),
                     TrainConfig.preset("tiny"), field_index=bad)  # fmt: skip
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
