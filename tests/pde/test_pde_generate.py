"""`scifm pde generate`: chunked, atomic, resumable; no NaN frames ever written."""

import json

import pytest
import torch

import scifm.pde.generate as gen_module
from scifm.cli import main
from scifm.pde import SimulationError
from scifm.pde.files import read_any
from scifm.pde.generate import GenerateRequest, generate


class Killed(Exception):
    """Stands in for a process killed mid-run."""


ARGS = ["--res", "16", "--frames", "3", "--t-end", "0.05", "--chunk", "2", "--no-progress"]


def test_cli_generates_pdebench_file(tmp_path, capsys):
    out = tmp_path / "dr"
    assert (
        main(["pde", "generate", "--system", "diffreact", "--n", "3", "--out", str(out), *ARGS])
        == 0
    )
    final = out / "2D_diff-react_NA_NA.h5"
    assert str(final) in capsys.readouterr().out
    traj = read_any(final)
    assert traj.fields.shape == (3, 3, 2, 16, 16)
    assert not (out / "chunks").exists()
    assert json.loads((out / "generate.json").read_text())["n"] == 3
    assert main(["pde", "info", str(final)]) == 0
    assert "diffreact" in capsys.readouterr().out


def test_cli_generates_well_dataset_with_stats(tmp_path):
    out = tmp_path / "swe"
    assert (
        main(
            [
                "pde",
                "generate",
                "--system",
                "swe",
                "--n",
                "3",
                "--out",
                str(out),
                "--format",
                "well",
                *ARGS,
            ]
        )
        == 0
    )
    files = sorted((out / "scifm_swe" / "data" / "train").glob("*.hdf5"))
    assert len(files) == 2
    assert (out / "scifm_swe" / "stats.yaml").exists()
    assert sum(len(read_any(f)) for f in files) == 3


def test_interrupted_run_resumes_without_redoing_finished_chunks(tmp_path, monkeypatch):
    req = GenerateRequest(system="cns", n=5, res=16, n_frames=2, t_end=0.005, chunk_size=2)
    clean = read_any(generate(req, tmp_path / "clean", progress=False)[0])

    calls = []
    real = gen_module.simulate
    kill = [True]

    def flaky(*args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 2 and kill and kill.pop():
            raise Killed  # the run dies while simulating chunk 1
        return real(*args, **kwargs)

    monkeypatch.setattr(gen_module, "simulate", flaky)
    with pytest.raises(Killed):
        generate(req, tmp_path / "resumed", progress=False)
    done = sorted(p.name for p in (tmp_path / "resumed" / "chunks").iterdir())
    assert done == ["chunk00000.h5"]  # only complete chunks, no temporary files
    calls.clear()
    files = generate(req, tmp_path / "resumed", progress=False)
    assert len(calls) == 2  # chunks 1 and 2 only
    resumed = read_any(files[0])
    torch.testing.assert_close(resumed.fields, clean.fields, rtol=0, atol=0)
    assert files[0].name == "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_16_Train.hdf5"
    torch.testing.assert_close(resumed.params["d0"], clean.params["d0"])


def test_rerun_of_a_finished_pdebench_request_simulates_nothing(tmp_path, monkeypatch):
    """The merge deletes the chunks; a rerun (scripts/mpp_data.sh after an interruption in a
    later folder) returns the merged file instead of simulating every chunk again."""
    req = GenerateRequest(system="swe", n=3, res=16, n_frames=2, t_end=0.05, chunk_size=2)
    first = generate(req, tmp_path, progress=False)
    before = first[0].stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("simulated again")

    monkeypatch.setattr(gen_module, "simulate", refuse)
    assert generate(req, tmp_path, progress=False) == first
    assert first[0].stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="different generation request"):
        generate(req.replace(n=4), tmp_path, progress=False)  # the manifest still guards


def test_a_folder_of_other_files_is_never_taken_for_the_output(tmp_path):
    """A user's folder (another HDF5 file, their own PDEBench file) is refused before any
    simulation: its one .h5 was once returned as the finished output, and a merge onto a
    taken name deleted the new chunks."""
    req = GenerateRequest(system="swe", n=2, res=16, n_frames=2, t_end=0.05, chunk_size=2)
    theirs = tmp_path / "mine" / "my_survey.h5"
    theirs.parent.mkdir()
    theirs.write_bytes(b"someone's data")
    with pytest.raises(ValueError, match=r"not empty \(my_survey.h5\) and holds no generate"):
        generate(req, theirs.parent, progress=False)
    assert sorted(p.name for p in theirs.parent.iterdir()) == ["my_survey.h5"]
    assert theirs.read_bytes() == b"someone's data"
    # a finished folder names its file: another .h5 put there later is not taken for it
    files = generate(req, tmp_path / "ours", progress=False)
    (tmp_path / "ours" / "a_later_file.h5").write_bytes(b"x")
    assert generate(req, tmp_path / "ours", progress=False) == files


def test_resume_with_other_settings_is_refused(tmp_path):
    req = GenerateRequest(system="swe", n=2, res=16, n_frames=2, t_end=0.05, chunk_size=2)
    generate(req, tmp_path, progress=False)
    with pytest.raises(ValueError, match="different generation request"):
        generate(req.replace(seed=1), tmp_path, progress=False)


def test_failed_chunk_raises_and_writes_nothing(tmp_path):
    req = GenerateRequest(
        system="swe", n=2, res=32, n_frames=3, t_end=1.0, chunk_size=2, params={"cfl": 3.0}
    )
    with pytest.raises(SimulationError, match="swe: simulation failed at step"):
        generate(req, tmp_path, progress=False)
    assert not any(tmp_path.rglob("*.h5"))


def test_bad_cli_param_is_named(tmp_path, capsys):
    argv = ["pde", "generate", "--system", "cns", "--n", "1", "--out", str(tmp_path)]
    assert main([*argv, "--param", "M", *ARGS]) == 1
    assert "scifm: error: --param 'M': expected KEY=VALUE" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written on failure


def test_presets_and_pdebench_defaults():
    small = GenerateRequest.preset("small", system="cns", n=4)
    assert (small.res, small.frames, small.span) == (64, 21, 1.0)
    assert GenerateRequest.preset("pdebench", system="swe", n=1).res == 128
    again = GenerateRequest.from_json(small.to_json())
    assert again == small
    with pytest.raises(ValueError, match="format 'zarr'"):
        GenerateRequest(system="swe", n=1, fmt="zarr")


def test_cli_preset(tmp_path):
    out = tmp_path / "tiny"
    assert (
        main(
            [
                "pde",
                "generate",
                "--system",
                "swe",
                "--n",
                "2",
                "--preset",
                "tiny",
                "--t-end",
                "0.05",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert read_any(out / "2D_rdb_NA_NA.h5").fields.shape == (2, 4, 1, 16, 16)
