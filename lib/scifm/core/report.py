"""The run record every benchmark writes: command, date, machine, versions, data used.

One helper so that each ``benchmarks/*.py`` states the same facts the same way::

    info = run_info(data={"survey": "data/survey_12k.h5", "split": "80/20, seed 0"})
    write_report("astroclip", {**results}, markdown_body, info=info, title="AstroCLIP")

writes ``benchmarks/results/astroclip.json`` (the results plus ``"run": info``) and
``astroclip.md`` (a header made from ``info``, then the body), atomically.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scifm.core.paths import repo_root, results_dir

__all__ = ["machine_info", "markdown_header", "repo_args", "repo_path", "run_info", "write_report"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _gpus() -> list[str]:
    if torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        return ["Apple MPS"]
    return []


def machine_info() -> dict[str, Any]:
    """CPU model and cores, memory, GPUs, torch threads, OS."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "torch_threads": torch.get_num_threads(),
        "memory_gb": _memory_gb(),
        "gpus": _gpus(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
    }


def _git_commit() -> str | None:
    """Short commit of the checkout, ``+dirty`` when it has changes; None outside git."""
    try:
        run = {"cwd": repo_root(), "capture_output": True, "text": True, "timeout": 10}
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **run, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _versions() -> dict[str, str | None]:
    try:
        scifm_version: str | None = importlib.metadata.version("scifm")
    except importlib.metadata.PackageNotFoundError:
        scifm_version = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scifm": scifm_version,
        "git": _git_commit(),
    }


def repo_path(path: str | Path, root: Path | None = None) -> str:
    """``path`` relative to the repository when inside it (a record readable elsewhere).

    ``root``: the checkout to be relative to (default: the one scifm is imported from).
    """
    root = (root or repo_root()).resolve()
    p = Path(path).resolve()
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(path)


def repo_args(args: list[str]) -> list[str]:
    """Command-line ``args`` with each absolute path inside the checkout made repo-relative."""
    return [repo_path(a) if a.startswith("/") else a for a in args]


def _command(argv: list[str] | None, unquoted: tuple[str, ...] = ()) -> str:
    """The command line as a user would type it, each word shell-quoted except those in
    ``unquoted`` (a folder the caller recorded as the variable it came from, e.g. ``$OUT``)."""
    args = sys.argv[1:] if argv is None else argv
    words = ["python", repo_path(sys.argv[0]), *repo_args(args)]
    return " ".join(w if w in unquoted else shlex.quote(w) for w in words)


def run_info(
    *,
    data: dict[str, Any] | None = None,
    argv: list[str] | None = None,
    note: str | None = None,
    unquoted: tuple[str, ...] = (),
) -> dict[str, Any]:
    """What a result needs to be read: command, UTC date, machine, versions, data and split.

    ``data``: the inputs actually used (files, generated sets with their seeds, splits).
    ``argv``: the script's arguments when ``main(argv)`` was called with its own list.
    ``note``: anything else a reader must know (e.g. "2 cores shared with other jobs").
    ``unquoted``: words of ``argv`` recorded as typed, not shell-quoted (``"$OUT"``).
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "command": _command(argv, unquoted),
        "date_utc": now.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": _versions(),
        "data": data or {},
        "note": note,
    }


def machine_line(m: dict[str, Any]) -> str:
    cores = f"{m['cores']} cores" + (
        f" ({m['cores_usable']} usable)" if m.get("cores_usable") not in (None, m["cores"]) else ""
    )
    gpu = ", ".join(m["gpus"]) if m["gpus"] else "no GPU"
    mem = f", {m['memory_gb']} GB RAM" if m.get("memory_gb") else ""
    return f"{m['cpu']}, {cores}{mem}, {m['torch_threads']} torch thread(s); {gpu}"


def markdown_header(title: str, info: dict[str, Any]) -> str:
    """``# title`` and the run record as a few lines of Markdown."""
    v = info["versions"]
    versions = ", ".join(f"{k} {v[k]}" for k in ("python", "torch", "numpy", "scifm") if v[k])
    lines = [
        f"# {title}",
        "",
        f"Command: `{info['command']}`  ",
        f"Date: {info['date_utc']}  ",
        f"Machine: {machine_line(info['machine'])}  ",
        f"Versions: {versions}" + (f" (git {v['git']})" if v.get("git") else "") + "  ",
    ]
    data = info.get("data") or {}
    if data:
        lines.append("Data: " + "; ".join(f"{k}: {val}" for k, val in data.items()) + "  ")
    if info.get("note"):
        lines.append(f"Note: {info['note']}")
    return "\n".join(lines).rstrip() + "\n"


def atomic_write(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary sibling, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def write_report(
    name: str,
    results: dict[str, Any],
    body: str,
    *,
    info: dict[str, Any],
    title: str,
    out_dir: str | Path | None = None,
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` (results + ``"run": info``) and ``<name>.md``.

    ``body`` is the Markdown under the header. ``out_dir`` defaults to
    ``benchmarks/results``. Returns the two paths.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"write_report: name {name!r}; expected a plain file stem like 'mpp'")
    out = Path(out_dir) if out_dir is not None else results_dir()
    out.mkdir(parents=True, exist_ok=True)
    record = {"run": info, **{k: v for k, v in results.items() if k != "run"}}
    text = json.dumps(record, indent=2, default=_jsonable) + "\n"  # fails before any write
    md = markdown_header(title, info) + "\n" + body.strip("\n") + "\n"
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    atomic_write(json_path, text)
    atomic_write(md_path, md)
    return json_path, md_path


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (also inside dicts, lists, tuples) made ``None``.

    JSON has no NaN: ``json.dumps`` writes a bare ``NaN`` that strict readers (``jq``,
    JavaScript's ``JSON.parse``) reject. An undefined figure (an R^2 with no valid answer)
    is printed as ``null`` instead.
    """
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return finite_or_none(obj.tolist())
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def strict_json(obj: Any, **kwargs: Any) -> str:
    """Strict JSON for a CLI's output: undefined figures as ``null`` (see ``finite_or_none``)."""
    return json.dumps(finite_or_none(obj), allow_nan=False, default=_jsonable, **kwargs)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"write_report: {type(obj).__name__} is not JSON-serialisable")
