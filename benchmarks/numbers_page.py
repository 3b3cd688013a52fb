"""What one session of the /numbers page costs the server (issue 16: 20 users arriving
together on 2 cores; a session build must cost a fraction of a second of CPU).

    .venv/bin/python benchmarks/numbers_page.py [--repeats 5] [--before OLD.json]

In one process, one torch thread, the way ``app/serve.py`` builds a session: the page's
``page()`` and ``server_doc`` into a fresh Bokeh document with its model graph frozen. The
first build loads the shipped models and computes the default views (once per process);
then ``--repeats`` warm builds, each timed in wall seconds and in CPU seconds of the
building thread (``time.thread_time``: less sensitive to the other jobs of a shared
machine), with the number of Bokeh models the document holds. ``--before`` adds the
figures of an earlier run of this script (e.g. on an older checkout, with that tree first
on ``PYTHONPATH``) to the Markdown, with its commit. Writes
benchmarks/results/numbers_page.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from scifm.core.report import run_info, write_report


def build(page) -> int:
    """One session's document, built as the server does; returns its number of models."""
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    doc = Document()
    with set_curdoc(doc), doc.models.freeze():
        page().server_doc(doc)
    return len(doc.models)


def timed(page) -> dict:
    wall, cpu = time.perf_counter(), time.thread_time()
    models = build(page)
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.thread_time() - cpu,
            "models": models}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="warm builds timed (default 5)")
    ap.add_argument("--before", type=Path, help="an earlier numbers_page.json to compare with")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats {args.repeats}: expected at least 1")
    before = None
    if args.before is not None:
        if not args.before.is_file():
            ap.error(f"--before {args.before}: no such file (expected a numbers_page.json)")
        before = json.loads(args.before.read_text())
    torch.set_num_threads(1)
    from app.pages import numbers

    first = timed(numbers.page)
    warm = [timed(numbers.page) for _ in range(args.repeats)]
    results = {
        "first_build": {k: round(v, 3) for k, v in first.items()},
        "warm_builds": {
            "repeats": args.repeats,
            "wall_s_median": round(statistics.median(b["wall_s"] for b in warm), 3),
            "cpu_s_median": round(statistics.median(b["cpu_s"] for b in warm), 3),
            "wall_s": [round(b["wall_s"], 3) for b in warm],
            "cpu_s": [round(b["cpu_s"], 3) for b in warm],
            "models": warm[-1]["models"],
        },
    }
    if before is not None:
        results["before"] = {k: before[k] for k in ("run", "first_build", "warm_builds")}
    write_report("numbers_page", results, _markdown(results), title="The /numbers session build",
                 info=run_info(argv=argv, note="wall-clock on a shared 2-core machine: read "
                               "them as sizes; CPU seconds are the building thread's"))  # fmt: skip


def _markdown(r: dict) -> str:
    lines = [
        "First build: loads the shipped models and computes the default views (once per "
        "process). Warm builds: what every further session costs.",
        "",
        "| checkout | first build wall s | warm builds | wall s (median) | CPU s (median) | "
        "Bokeh models |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rows = [("this one", r)]
    if "before" in r:
        git = r["before"]["run"]["versions"].get("git") or "?"
        rows.insert(0, (f"before (git {git})", r["before"]))
    for name, x in rows:
        f, w = x["first_build"], x["warm_builds"]
        lines.append(f"| {name} | {f['wall_s']} | {w['repeats']} | {w['wall_s_median']} | "
                     f"{w['cpu_s_median']} | {w['models']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
