"""How fast the physics page opens and runs on the shipped models (issue 13, page item).

    .venv/bin/python benchmarks/physics_page.py

In one process, one torch thread: the import of the dashboards, the first
``RolloutViewer.from_assets()`` (loads the 64^2 evidence model and computes the first
rollout, ``first_run``, once per process), then a warm session build (the /physics page into
a fresh Bokeh document as the server builds it, ``numbers_page.build``: what every new browser
session pays; median of 7), the first switch
to the 32^2 demo model in the Model select, and one 20-step run per system of each model
(solver and surrogate seconds as ``compare`` measures them, wall seconds). Wall-clock times
on a shared machine: read them as sizes, not to the millisecond. Writes
benchmarks/results/physics_page.{json,md}.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from numbers_page import build  # a page's session, built as app/serve.py does

from scifm.core.report import run_info, write_report

REPEATS = 7
STEPS = 20


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    torch.set_num_threads(1)
    (viewer_cls, _), t_import = _timed(_import)
    view, t_first = _timed(viewer_cls.from_assets)
    first = view.result
    from app.pages import physics

    builds = []
    for _ in range(REPEATS):
        models, dt = _timed(lambda: build(physics.page))
        builds.append(dt)
    labels = list(view.choices)
    runs = []
    for label in labels:
        t_switch = None
        if label != view.model_name:
            _, t_switch = _timed(lambda lab=label: setattr(view, "model_name", lab))
        for system in view.param.system.objects:
            view.system, view.steps, view.use_param = system, STEPS, False
            ok, dt = _timed(view.run)
            res = view.result
            runs.append({
                "model": label, "res": view.res, "system": system, "ok": bool(ok),
                "wall_s": round(dt, 2), "solver_s": round(res.solver_s, 2),
                "surrogate_s": round(res.surrogate_s, 2),
                "nrmse_final": round(float(res.nrmse[-1]), 4),
                "persistence_final": round(float(res.persistence[-1]), 4),
                "switch_s": None if t_switch is None else round(t_switch, 2),
            })  # fmt: skip
            t_switch = None
    results = {
        "import_s": round(t_import, 2),
        "first_from_assets_s": round(t_first, 2),
        "first_run": {
            "system": first.system,
            "res": int(first.truth.shape[-1]),
            "solver_s": round(first.solver_s, 2),
            "surrogate_s": round(first.surrogate_s, 2),
        },
        "session_build_s": {
            "median": round(statistics.median(builds), 3),
            "min": round(min(builds), 3),
            "max": round(max(builds), 3),
            "repeats": REPEATS,
            "bokeh_models": models,
        },
        "runs": runs,
    }
    write_report("physics_page", results, _markdown(results), info=run_info(),
                 title="Physics page: opening and run times")  # fmt: skip


def _import():
    from scifm.dashboards import RolloutViewer

    return RolloutViewer, None


def _markdown(r: dict) -> str:
    f, s = r["first_run"], r["session_build_s"]
    lines = [
        f"- import of `scifm.dashboards`: {r['import_s']} s",
        f"- first `RolloutViewer.from_assets()` (model load + first rollout, once per "
        f"process): {r['first_from_assets_s']} s; its run ({f['system']}, {f['res']}², "
        f"{STEPS} steps): solver {f['solver_s']} s, surrogate {f['surrogate_s']} s",
        f"- a warm session build (the page into a Bokeh document, as the server builds it): "
        f"median {s['median']} s (min {s['min']}, max {s['max']}, {s['repeats']} repeats; "
        f"{s['bokeh_models']} Bokeh models)",
        "",
        f"Runs of {STEPS} steps (one trajectory, seed 0, CPU):",
        "",
        "| model | grid | system | wall s | solver s | surrogate s | NRMSE end | persistence "
        "end | model switch s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for x in r["runs"]:
        lines.append(
            f"| {x['model']} | {x['res']} | {x['system']} | {x['wall_s']} | {x['solver_s']} | "
            f"{x['surrogate_s']} | {x['nrmse_final']} | {x['persistence_final']} | "
            f"{x['switch_s'] if x['switch_s'] is not None else ''} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
