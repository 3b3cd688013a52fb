"""The benchmark run record: what it holds, what it writes, and that every benchmark uses it."""

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from scifm.core.paths import repo_root
from scifm.core.report import markdown_header, repo_args, repo_path, run_info, write_report


def test_run_info_names_command_date_machine_versions_and_data():
    info = run_info(argv=["--quick"], data={"survey": "data/s.h5", "split": "80/20"}, note="n")
    assert info["command"].endswith("--quick") and info["command"].startswith("python ")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", info["date_utc"])
    m = info["machine"]
    assert m["cpu"] and m["cores"] >= 1 and isinstance(m["gpus"], list)
    assert set(info["versions"]) >= {"python", "torch", "numpy", "scifm"}
    header = markdown_header("Title", info)
    assert header.startswith("# Title\n")
    for text in ("--quick", m["cpu"], "torch ", "numpy ", "survey: data/s.h5", "split: 80/20"):
        assert text in header, text


def test_command_quotes_words_but_leaves_a_recorded_variable_as_typed():
    argv = ["--out", "$OUT", "--name", "a b", "--x", "$(rm -rf /)", "--y", "$HOME"]
    cmd = run_info(argv=argv, unquoted=("$OUT",))["command"]
    assert cmd.endswith("--out $OUT --name 'a b' --x '$(rm -rf /)' --y '$HOME'")


def test_write_report_writes_json_and_markdown(tmp_path):
    info = run_info(data={"x": 1})
    j, md = write_report("demo", {"r2": 0.5}, "| a |\n", info=info, title="Demo", out_dir=tmp_path)
    record = json.loads(j.read_text())
    assert record["r2"] == 0.5 and record["run"]["data"] == {"x": 1}
    text = md.read_text()
    assert text.startswith("# Demo\n") and text.endswith("| a |\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.json", "demo.md"]


def test_bad_report_writes_nothing(tmp_path):
    info = run_info()
    with pytest.raises(ValueError, match="plain file stem"):
        write_report("../x", {}, "", info=info, title="t", out_dir=tmp_path)
    with pytest.raises(TypeError, match="object is not JSON"):
        write_report("bad", {"v": object()}, "", info=info, title="t", out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_every_benchmark_writes_through_the_report_helper():
    """Every script that writes results uses scifm.core.report; every entry script writes its
    report through it, itself or through a sibling module of benchmarks/ that does."""
    scripts = {p.stem: p.read_text() for p in sorted((repo_root() / "benchmarks").glob("*.py"))}
    assert scripts
    reporters = {n for n, src in scripts.items() if "write_report(" in src and "run_info(" in src}
    for name, src in scripts.items():
        writes = "write_text(" in src or "json.dump(" in src
        if writes or "__main__" in src:
            via = {m for m in reporters if f"import {m}" in src or f"from {m} import" in src}
            assert name in reporters or (via and not writes), (
                f"{name}.py: write results with scifm.core.report (run_info + write_report)"
            )
        assert "platform.machine()" not in src, f"{name}.py: machine notes come from run_info"
        assert "/work/" not in src, f"{name}.py: a path that exists on no other machine"


def _machine_roots() -> list[str]:
    """Paths only this machine has: every checkout of this repository here (``git worktree
    list``; this one alone outside git) and the home directory."""
    roots = {repo_root().resolve(), Path.home().resolve()}
    listed = subprocess.run(
        ["git", "worktree", "list", "--porcelain"],
        cwd=repo_root(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    roots |= {
        Path(ln[len("worktree ") :])
        for ln in listed.stdout.splitlines()
        if ln.startswith("worktree ")
    }
    return sorted(str(root) for root in roots if root != Path("/"))


def _machine_paths(folder: Path) -> list[str]:
    """``file: path`` for each path in ``folder``'s results that starts at this machine's
    checkouts or home directory (a repo-relative path is readable anywhere)."""
    pattern = re.compile("|".join(re.escape(r) + r"(?![\w.-])" for r in _machine_roots()))
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix in (".json", ".md"):
            found += [f"{path.name}: {m}" for m in sorted(set(pattern.findall(path.read_text())))]
    return found


def test_results_record_repo_relative_paths(tmp_path):
    """Stored results name files by repo-relative paths, never by this machine's folders."""
    assert _machine_paths(repo_root() / "benchmarks" / "results") == [], (
        "benchmarks/results: record paths with scifm.core.report.repo_path"
    )
    # The check itself can fail: absolute paths into this checkout or home are caught;
    # system paths, other folders and repo-relative paths are not.
    (tmp_path / "bad.json").write_text(json.dumps({"model": str(repo_root() / "assets")}))
    (tmp_path / "home.md").write_text(f"log: {Path.home() / 'x.log'}\n")
    (tmp_path / "good.md").write_text(
        f"assets/astroclip/model, /usr/bin/chromium, {Path.home()}-other/x, /tmp/old_checkout\n"
    )
    assert {p.split(":")[0] for p in _machine_paths(tmp_path)} == {"bad.json", "home.md"}


def test_repo_path_and_args_are_repo_relative(tmp_path):
    inside = str(repo_root() / "data" / "survey.h5")
    assert repo_path(inside) == "data/survey.h5"
    assert repo_path(repo_root()) == "."
    assert repo_path(tmp_path / "x.h5") == str(tmp_path / "x.h5")  # outside: kept as given
    assert repo_path(tmp_path / "x.h5", root=tmp_path) == "x.h5"
    assert repo_args(["--survey", inside, "--n", "3"]) == ["--survey", "data/survey.h5", "--n", "3"]


def test_cli_json_prints_an_undefined_figure_as_null_not_nan():
    from scifm.core.report import strict_json

    out = {"r2": float("nan"), "n": 0, "per_field": {"a": [np.float32("inf"), 1.5]}, "p": (2.0,),
           "curve": np.array([0.5, np.nan])}  # fmt: skip
    text = strict_json(out)
    assert json.loads(text) == {"r2": None, "n": 0, "per_field": {"a": [None, 1.5]}, "p": [2.0],
                                "curve": [0.5, None]}  # fmt: skip
    assert "NaN" not in text and "Infinity" not in text
    assert json.dumps({"r2": float("nan")}) == '{"r2": NaN}'  # what the CLI printed before
