"""The top-level command: info, serve, and the idea groups' help."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from scifm.cli import GROUPS, build_parser, main


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["device"] in ("cpu", "cuda", "mps")
    assert "torch" in info["packages"] and isinstance(info["assets"], dict)


def test_info_text(capsys):
    assert main(["info"]) == 0
    assert "device:" in capsys.readouterr().out


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "serve" in out and "info" in out


def test_groups_are_all_registered():
    """Every engine's and idea's group is present (a missing module fails the build)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(GROUPS) == {"xval", "pde", "mpp", "survey", "astroclip"}
    for name in GROUPS:
        assert name in sub.choices


def _not_hdf5(tmp_path):
    bad = tmp_path / "corrupt.h5"
    bad.write_bytes(b"not an HDF5 file at all")
    return bad


def _pde_gen(t):
    return ["pde", "generate", "--system", "swe", "--n", "1", "--preset", "tiny", "--out",
            str(t / "out")]  # fmt: skip


def _survey_gen(t):
    return ["survey", "generate", "--n", "2", "--preset", "tiny", "--out", str(t / "out")]


# (argv builder, words the one line must contain); every group on a bad input
BAD_INPUTS = {
    "pde-missing-file": (lambda t: ["pde", "info", str(t / "nope.h5")], "nope.h5"),
    "pde-corrupt-file": (lambda t: ["pde", "info", str(_not_hdf5(t))], "corrupt.h5"),
    "survey-corrupt-file": (lambda t: ["survey", "info", str(_not_hdf5(t))], "corrupt.h5"),
    "survey-not-fits": (lambda t: ["survey", "read-spectrum", str(_not_hdf5(t))], "FITS"),
    "survey-redshift-not-fits": (lambda t: ["survey", "redshift", str(_not_hdf5(t))], "FITS"),
    "mpp-not-a-checkpoint": (lambda t: ["mpp", "rollout", "--ckpt", str(t)], "checkpoint"),
    "xval-not-a-checkpoint": (
        lambda t: ["xval", "evaluate", "--scheme", "xval", "--task", "ood", "--checkpoint", str(t)],
        "checkpoint",
    ),
    "astroclip-unknown-id": (lambda t: ["astroclip", "search", "--id", "424242"], "424242"),
    # non-finite or mistyped numbers, refused before anything is written to --out
    "pde-nan-time": (lambda t: [*_pde_gen(t), "--t-end", "nan"], "t_end=nan"),
    "pde-inf-param": (lambda t: [*_pde_gen(t), "--param", "g=inf"], "g=inf"),
    "pde-unknown-param": (lambda t: [*_pde_gen(t), "--param", "bogus=1"], "bogus"),
    "survey-absurd-n": (
        lambda t: [
            "survey",
            "generate",
            "--n",
            "100000000000000",
            "--preset",
            "tiny",
            "--out",
            str(t / "out"),
        ],
        "out: n=100000000000000; expected 1 <= n <= 1e+08",
    ),
    "mpp-res-not-a-patch-multiple": (
        lambda t: [
            "mpp",
            "evaluate",
            "--ckpt",
            "assets/mpp/avit_small_64",
            "--systems",
            "swe",
            "--n-test",
            "1",
            "--res",
            "7",
        ],
        "--res 7: the model's patch is 8 cells",
    ),
    "survey-inf-noise": (lambda t: [*_survey_gen(t), "--set", "spec_noise=Infinity"], "spec_noise"),
    "survey-mistyped": (lambda t: [*_survey_gen(t), "--set", "z_max=abc"], "z_max=abc"),
    "astroclip-bad-toy": (
        lambda t: [
            "astroclip",
            "embed",
            "--survey",
            "toy:abc",
            "--model",
            "assets/astroclip/model",
            "--out",
            str(t / "out"),
        ],
        "toy:abc",
    ),
    "astroclip-absurd-toy": (
        lambda t: [
            "astroclip",
            "embed",
            "--survey",
            "toy:10000000000",
            "--model",
            "assets/astroclip/model",
            "--out",
            str(t / "out"),
        ],
        "toy:N",
    ),
    "astroclip-not-a-catalog": (
        lambda t: ["astroclip", "search", "--catalog", str(_not_hdf5(t)), "--id", "1"],
        "corrupt.h5",
    ),
    "survey-grid-off-the-optical": (
        lambda t: [*_survey_gen(t), "--set", "wave_min=10"],
        "expected an optical grid inside 1000-25000 A",
    ),
    "survey-out-is-a-folder": (
        lambda t: ["survey", "generate", "--n", "2", "--preset", "tiny", "--out", str(t)],
        "is a directory",
    ),
    "survey-impossible-cuts": (
        lambda t: [*_survey_gen(t), "--set", "r_mag_limit=-50"],
        "no galaxy passes the cuts",
    ),
    "survey-absurd-stamp": (
        lambda t: [*_survey_gen(t), "--set", "image_size=100000"],
        "image_size",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_prints_one_clean_line(case, tmp_path, capsys):
    argv, word = BAD_INPUTS[case]
    assert main(argv(tmp_path)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("scifm: error: ") and word in err[0], err
    assert "Traceback" not in err[0]
    assert not (tmp_path / "out").exists()  # a refused request leaves nothing behind


def test_a_failed_overwrite_leaves_the_old_survey_whole(tmp_path, capsys):
    out = tmp_path / "survey.h5"
    assert main(["survey", "generate", "--n", "2", "--preset", "tiny", "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip
    before = out.read_bytes()
    argv = ["survey", "generate", "--n", "2", "--preset", "tiny", "--out", str(out), "--quiet",
            "--overwrite", "--set", "r_mag_limit=-50"]  # fmt: skip
    assert main(argv) == 1
    assert "no galaxy passes the cuts" in capsys.readouterr().err
    assert out.read_bytes() == before


@pytest.mark.parametrize("group", ["survey", "astroclip"])
def test_redshift_json_never_overwrites_an_input_or_a_foreign_file(group, tmp_path, capsys):
    spectrum = _not_hdf5(tmp_path)  # refused before it is read: the --json check comes first
    before = spectrum.read_bytes()
    assert main([group, "redshift", str(spectrum), "--json", str(spectrum)]) == 1
    assert "is an input of this command" in capsys.readouterr().err
    other = tmp_path / "notes.txt"
    other.write_text("a user's file")
    assert main([group, "redshift", str(spectrum), "--json", str(other)]) == 1
    assert "not a redshift record" in capsys.readouterr().err
    assert spectrum.read_bytes() == before and other.read_text() == "a user's file"


@pytest.mark.parametrize(
    "argv",
    [["pde", "generate", "--system", "cns", "--n", "-3", "--out", "x"],
     ["survey", "generate", "--n", "0", "--out", "x.h5"],
     ["xval", "evaluate", "--scheme", "xval", "--task", "ood", "--n", "-3"],
     ["mpp", "rollout", "--ckpt", "x", "--steps", "many"],
     ["astroclip", "search", "--id", "1", "--k", "-1"],
     # counts far past any real data set: a terabyte allocation and a traceback before
     ["pde", "generate", "--system", "swe", "--n", "1", "--res", "100000", "--out", "x"],
     ["mpp", "rollout", "--ckpt", "x", "--steps", "1000000000000"],
     ["mpp", "evaluate", "--ckpt", "x", "--n-test", "1000000000"],
     ["mpp", "evaluate", "--ckpt", "x", "--res", "1000000"],
     ["mpp", "evaluate", "--ckpt", "x", "--sim-frames", "1000000000"],
     ["mpp", "finetune", "--ckpt", "x", "--system", "swe", "--n-traj", "1000000000", "--out", "x"],
     ["xval", "train", "--scheme", "xval", "--n-train", "1000000000000", "--out", "x"],
     ["xval", "evaluate", "--scheme", "xval", "--task", "ood", "--n", "1000000000000"]],
)  # fmt: skip
def test_absurd_numbers_are_refused_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scifm: error: argument --"), err
    assert "expected" in err[0] or "not an integer" in err[0], err


def test_debug_flag_shows_the_traceback(tmp_path):
    cmd = [sys.executable, "-m", "scifm", "pde", "info", str(tmp_path / "nope.h5")]
    plain = subprocess.run(cmd, capture_output=True, text=True)
    assert plain.returncode == 1 and plain.stderr.count("\n") == 1, plain.stderr
    debug = subprocess.run([*cmd[:3], "--debug", *cmd[3:]], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_scifm_serve_answers_on_loopback():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "scifm", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, body = time.time() + 120, ""
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
                    body = r.read().decode()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.3)
        assert "scifm" in body
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
