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

from scifm.cli import GROUPS, _available, build_parser, main


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
    """Every idea's group is present once its module has landed."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, module in GROUPS.items():
        if _available(module):
            assert name in sub.choices


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
