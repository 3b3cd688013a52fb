"""PDE data generation throughput, memory, and a ratio against py-pde.

    .venv/bin/python benchmarks/pde_generation.py [--quick] [--device cpu|cuda]

Per system at 64^2 and 128^2: trajectories per minute of a batched run with the
PDEBench frame count, timed over a fraction of the PDEBench time span and
extrapolated linearly to the full span (steps are CFL-limited, so cost grows
linearly with simulated time; the fraction is recorded). Peak memory is the resident
set size of a fresh child process minus its size after imports (CPU) or the peak
CUDA allocation (GPU).

Diffusion-reaction is also compared with py-pde (Zwicker 2020) on the same 5-point
finite-volume grid with no-flux walls: both solvers' final states are compared
with a tightly converged reference (our RK4 at 1/16 of the stable step, float64),
and py-pde's fastest configuration that is at least as accurate as ours is timed.
Writes benchmarks/results/pde_generation.{json,md}.

``--scaling`` measures batch scaling instead and adds it to the same files (the other
figures are kept): per system (CNS at M = 0.1 and 1.0), 64^2 and 128^2, the same 16
seeded initial conditions are run as 16 single runs, 4 batches of 4 and one batch of 16,
one thread, over a fraction of the span; seconds per trajectory are extrapolated to
the full span. ``--label`` names the solver version (e.g. a run of an older checkout
through PYTHONPATH); rows with another label are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from scifm.core.report import repo_path, run_info, write_report

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
# (batch at 64^2, batch at 128^2, fraction of the PDEBench span timed)
PLAN = {
    "swe": (16, 8, 1.0),
    "diffreact": (16, 8, 1.0),
    "ins": (8, 4, 0.1),
    "cns": (8, 4, 0.05),
}
QUICK_FRACTION = {"swe": 0.25, "diffreact": 0.25, "ins": 0.02, "cns": 0.01}
# --scaling: (system, physical parameters, fraction of the span timed)
SCALING = [
    ("swe", {}, 0.25),
    ("diffreact", {}, 1.0),
    ("ins", {}, 0.05),
    ("cns", {"M": 0.1}, 0.005),
    ("cns", {"M": 1.0}, 0.005),
]
SCALING_BATCHES = (1, 4, 16)
SCALING_N = 16  # trajectories per measurement, split into batches


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(system: str, res: int, batch: int, fraction: float, device: str) -> dict:
    """Run one timed generation in this (fresh) process and return its figures."""
    from scifm.pde import get_system, simulate

    spec = get_system(system)
    t_end = spec.t_end * fraction
    n_frames = max(2, round((spec.n_frames - 1) * fraction) + 1)
    dev = torch.device(device)
    base = rss_mb()
    simulate(system, 1, res=16, n_frames=2, t_end=t_end / 50, device=dev)  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    traj = simulate(system, batch, res=res, n_frames=n_frames, t_end=t_end, seed=1, device=dev)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else rss_mb() - base
    full_seconds = seconds / fraction
    out_mb = spec.n_frames * spec.n_fields * res * res * 4 / 2**20
    return {
        "system": system,
        "res": res,
        "batch": batch,
        "fraction_of_span_timed": fraction,
        "t_end_timed": t_end,
        "seconds_timed": round(seconds, 3),
        "seconds_per_batch_full_span": round(full_seconds, 2),
        "trajectories_per_minute": round(60 * batch / full_seconds, 3),
        "peak_memory_mb": round(peak, 1),
        "output_mb_per_trajectory_float32": round(out_mb, 2),
        "finite": bool(torch.isfinite(traj.fields).all()),
    }


def scaling_child(system: str, params: dict, res: int, fraction: float) -> list[dict]:
    """Time the same ``SCALING_N`` trajectories in batches of 1, 4 and 16 (this process)."""
    from scifm.pde import get_system, simulate
    from scifm.pde.grid import Grid
    from scifm.pde.simulate import SOLVERS

    spec, module = get_system(system), SOLVERS[system]
    t_end = spec.t_end * fraction
    n_frames = max(2, round((spec.n_frames - 1) * fraction) + 1)
    grid = Grid.make(res, spec.domain)
    merged = {**module.DEFAULTS, **params}
    gen = torch.Generator().manual_seed(1)
    init, extra = module.initial_state(
        SCALING_N, grid, merged, gen, device="cpu", dtype=torch.float32
    )
    physical = {k: v for k, v in params.items() if k in module.DEFAULTS and k != "M"}
    field_params = getattr(module, "FIELD_PARAMS", ())  # INS forcing; the rest is diagnostic
    simulate(system, 1, res=16, n_frames=2, t_end=t_end / 50)  # warm-up
    counter = _count_sample_steps(module)
    rows = []
    for batch in SCALING_BATCHES:
        counter["n"] = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for lo in range(0, SCALING_N, batch):
            fields = {k: v[lo : lo + batch] for k, v in extra.items() if k in field_params}
            given = {**physical, **fields}
            simulate(
                system,
                res=res,
                n_frames=n_frames,
                t_end=t_end,
                params=given,
                initial_state=init[lo : lo + batch],
            )
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append(
            {
                "system": system + "".join(f" {k}={v}" for k, v in params.items()),
                "res": res,
                "batch": batch,
                "fraction_of_span_timed": fraction,
                "wall_seconds_timed_16_trajectories": round(seconds, 3),
                "cpu_seconds_timed_16_trajectories": round(cpu, 3),
                # CPU time of this one-thread process: robust to other jobs on the cores
                "seconds_per_trajectory_full_span": round(cpu / fraction / SCALING_N, 4),
                # trajectory-steps taken: exact, free of timing noise
                "sample_steps": counter["n"],
            }
        )
    return rows


def _count_sample_steps(module) -> dict:
    """Count trajectory-steps (rows of the state advanced) through the solver's frame loop.

    Wraps ``integrate`` as the solver module sees it; works with the per-trajectory loop
    (``step(state, dt, idx)``) and the older batch-wide one (``step(state, dt)``).
    """
    counter = {"n": 0}
    inner = module.integrate

    def integrate(system, state, t_frames, *, step, **kw):
        def counted(u, *args):
            counter["n"] += int(u.shape[0])
            return step(u, *args)

        return inner(system, state, t_frames, step=counted, **kw)

    module.integrate = integrate
    return counter


def run_scaling(args: argparse.Namespace) -> None:
    import scifm

    path = RESULTS / "pde_generation.json"
    report = json.loads(path.read_text())
    report["batch_scaling"] = [
        r for r in report.get("batch_scaling", []) if r.get("label") != args.label
    ]
    this_run = {
        **run_info(note=f"{args.threads} torch thread(s); 2 cores shared with other jobs "
                   "(timings noisy)"),
        # Which checkout's library ran: "lib/scifm" when this one's.
        "scifm_imported_from": repo_path(Path(scifm.__file__).parent, root=ROOT.parent),
    }  # fmt: skip
    report.setdefault("batch_scaling_runs", {})[args.label] = this_run
    for system, params, frac in SCALING:
        if args.only and system != args.only:
            continue
        frac = min(1.0, frac * args.span_scale / (4 if args.quick else 1))
        for res in args.res:
            child_args = ["--scaling-child", system, json.dumps(params), str(res), str(frac)]
            part = run_child(child_args, args.threads)
            for r in part:
                r["label"] = args.label
                print(json.dumps(r), flush=True)
            report["batch_scaling"] += part
            # Written after every grid, so an interrupted run keeps what it measured.
            write_report(
                "pde_generation", report, markdown(report), info=report.get("run", this_run),
                title="PDE data generation benchmark", out_dir=RESULTS,
            )  # fmt: skip
    print(scaling_markdown(report))


def scaling_markdown(report: dict) -> str:
    rows = report.get("batch_scaling", [])
    if not rows:
        return ""
    lines = [
        "## Batch scaling (per-trajectory time steps)",
        "",
        f"(The throughput table above dates from {report['date']}; this section from the "
        "runs listed here.)",
        "",
        "The same 16 seeded initial conditions per row, run as 16 single runs, 4 batches of "
        "4 and one batch of 16 (one thread); CPU seconds of the one-thread process per "
        "trajectory (robust to the other jobs sharing the cores; wall time is in the JSON), "
        "extrapolated from the timed fraction of the PDEBench span to the full span "
        "(early-time cost, so a rough full-span figure; the ratios are the point). "
        "Trajectory-steps (rows of the state advanced, exact) show the work: with a batch-wide "
        "step every trajectory takes the stiffest one's step count. Speed-up = (batch 1) / "
        "(batch b); above 1 batching helps.",
        "",
    ]
    for label, run in report.get("batch_scaling_runs", {}).items():
        lines.append(
            f"- {label}: `{run['command']}` with scifm from `{run['scifm_imported_from']}` "
            f"({run['date']}, {run['machine']})"
        )
    lines += [
        "",
        "| solver | system | res | span timed | s / traj, batch 1 | batch 4 | batch 16 | "
        "speed-up 4 | speed-up 16 | trajectory-steps, batch 1 / 16 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        groups.setdefault((r["label"], r["system"], r["res"]), {})[r["batch"]] = r
    for (label, system, res), by in groups.items():
        s = {b: by[b]["seconds_per_trajectory_full_span"] for b in SCALING_BATCHES if b in by}
        frac = next(iter(by.values()))["fraction_of_span_timed"]
        lines.append(
            f"| {label} | {system} | {res} | {frac:.1%} | {s.get(1)} | {s.get(4)} | {s.get(16)} "
            f"| {s[1] / s[4]:.2f} | {s[1] / s[16]:.2f} | "
            f"{by[1].get('sample_steps', '-')} / {by[16].get('sample_steps', '-')} |"
        )
    lines += [
        "",
        "Earlier figure (issue 13, before per-trajectory steps): a direct timing of "
        '`simulate("cns", ...)` for M = 1.0 on one thread gave 4.6 s for one trajectory and '
        "704 s for a batch of 16 at 128^2 (64^2: 1.25 s and 71 s); every member of a batch "
        "then stepped with the batch's smallest stable step.",
        "",
    ]
    return "\n".join(lines)


def run_child(args: list[str], threads: int) -> dict:
    """Run this script with ``args`` in a fresh process limited to ``threads`` threads."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "NUMBA_NUM_THREADS": str(threads),
    }
    cmd = [sys.executable, __file__, *args, "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def pypde_comparison(res: int, t_end: float) -> dict:
    """Diffusion-reaction at ``res``^2 to ``t_end``: ours vs py-pde at matched accuracy."""
    import pde

    from scifm.pde import simulate
    from scifm.pde.diffreact import SAFETY

    f64 = torch.float64

    def run(batch: int, dtype: torch.dtype, safety: float, init: torch.Tensor | None = None):
        return simulate(
            "diffreact",
            batch,
            res=res,
            n_frames=2,
            t_end=t_end,
            seed=0,
            dtype=dtype,
            params={"safety": safety},
            initial_state=init,
        )

    ours = run(1, f64, SAFETY)
    init = ours.fields[:, 0]
    ref = run(1, f64, SAFETY / 16, init).fields[0, -1].numpy()

    def error(safety: float) -> float:
        return float(np.abs(run(1, f64, safety, init).fields[0, -1].numpy() - ref).max())

    def time_ours(batch: int, dtype: torch.dtype, safety: float = SAFETY) -> float:
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            run(batch, dtype, safety)
            best = min(best, time.perf_counter() - t0)
        return best / batch

    err_ours = error(SAFETY)

    grid = pde.CartesianGrid([[-1, 1], [-1, 1]], [res, res])
    eq = pde.PDE(
        {"u": "0.001*laplace(u) + u - u**3 - 0.005 - v", "v": "0.005*laplace(v) + u - v"},
        bc={"derivative": 0},
    )
    state = pde.FieldCollection(
        [pde.ScalarField(grid, init[0, 0].numpy()), pde.ScalarField(grid, init[0, 1].numpy())]
    )
    # py-pde's own solve() re-compiles its numba right-hand side on every call (about
    # 10 s here), which would swamp the comparison; so py-pde's compiled right-hand side
    # (the same one its "scipy" solver uses) is integrated with scipy's RK45 directly,
    # warm, and one whole solve() call is timed separately for the record.
    from scipy.integrate import solve_ivp

    rhs = eq.make_pde_rhs(state, backend="numba")
    shape = state.data.shape
    rhs(state.data, 0.0)  # compile

    def f(t: float, y: np.ndarray) -> np.ndarray:
        return rhs(y.reshape(shape), t).ravel()

    solve_ivp(f, (0.0, 1e-3), state.data.ravel(), method="RK45")  # compile for this call path
    t0 = time.perf_counter()
    eq.solve(state.copy(), t_range=t_end, dt=1e-3, tracker=None, solver="scipy", rtol=1e-3)
    solve_call = time.perf_counter() - t0
    tried = []
    for rtol in (1e-3, 1e-4, 1e-5, 1e-6):
        t0 = time.perf_counter()
        sol = solve_ivp(
            lambda t, y: rhs(y.reshape(shape), t).ravel(),
            (0.0, t_end),
            state.data.ravel(),
            method="RK45",
            rtol=rtol,
            atol=rtol / 100,
        )
        seconds = time.perf_counter() - t0
        arr = sol.y[:, -1].reshape(shape)
        tried.append(
            {
                "solver": "py-pde numba rhs + scipy RK45",
                "options": {"rtol": rtol},
                "max_abs_error": float(np.abs(arr - ref).max()),
                "seconds_warm": round(seconds, 4),
                "rhs_evaluations": int(sol.nfev),
            }
        )
    matched = [t for t in tried if t["max_abs_error"] <= err_ours]
    best = min(matched, key=lambda t: t["seconds_warm"]) if matched else None
    ours_1 = time_ours(1, f64)
    ours_b = time_ours(16, torch.float32)
    # The other direction: shrink our step until we are as accurate as py-pde's loosest run.
    target = tried[0]["max_abs_error"]
    safety = SAFETY
    while error(safety) > target and safety > SAFETY / 64:
        safety /= 1.5
    tight = {
        "safety": round(safety, 4),
        "max_abs_error": error(safety),
        "seconds_single_float64": round(time_ours(1, f64, safety), 4),
        "seconds_per_trajectory_batch16_float32": round(time_ours(16, torch.float32, safety), 4),
    }
    return {
        "problem": f"FitzHugh-Nagumo (PDEBench coefficients), {res}^2, t in [0, {t_end}], "
        "N(0,1) initial state, no-flux walls",
        "reference": "our RK4 at 1/16 of the stable step, float64",
        "ours_max_abs_error": err_ours,
        "ours_seconds_per_trajectory_single_float64": round(ours_1, 4),
        "ours_seconds_per_trajectory_batch16_float32": round(ours_b, 4),
        "pypde_version": pde.__version__,
        "pypde_tried": tried,
        "pypde_solve_call_seconds_including_jit": round(solve_call, 2),
        "pypde_matched": best,
        "ratio_pypde_over_ours_single": round(best["seconds_warm"] / ours_1, 1) if best else None,
        "ratio_pypde_over_ours_batched": round(best["seconds_warm"] / ours_b, 1) if best else None,
        "ours_at_pypde_loosest_accuracy": tight,
        "ratio_pypde_loosest_over_ours_tight_single": round(
            tried[0]["seconds_warm"] / tight["seconds_single_float64"], 2
        ),
        "ratio_pypde_loosest_over_ours_tight_batched": round(
            tried[0]["seconds_warm"] / tight["seconds_per_trajectory_batch16_float32"], 2
        ),
    }


def markdown(report: dict) -> str:
    lines = [
        f"Device: {report['device']} (GPU figures: {report['gpu_note']})",
        "",
        "Trajectories per minute with PDEBench frame counts and time spans, timed over the "
        "listed fraction of the span and extrapolated linearly. Peak MB is the child process's "
        "resident-set growth during the timed run (its frames included); a full-span run also "
        "holds batch x (output MB / traj) of frames.",
        "",
        "| system | res | batch | span timed | s / batch (full span) | traj / min | peak MB | "
        "output MB / traj |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["throughput"]:
        lines.append(
            f"| {r['system']} | {r['res']} | {r['batch']} | {r['fraction_of_span_timed']:.0%} | "
            f"{r['seconds_per_batch_full_span']} | {r['trajectories_per_minute']} | "
            f"{r['peak_memory_mb']} | {r['output_mb_per_trajectory_float32']} |"
        )
    c = report["pypde"]
    lines += [
        "",
        "## Diffusion-reaction vs py-pde at matched accuracy",
        "",
        c["problem"] + ".",
        f"Reference: {c['reference']}. Same grid and stencil in both codes; errors are max abs "
        "over the final state.",
        "",
        "| solver | max abs error | seconds / trajectory |",
        "|---|---|---|",
        f"| scifm RK4 (single, float64) | {c['ours_max_abs_error']:.2e} | "
        f"{c['ours_seconds_per_trajectory_single_float64']} |",
        f"| scifm RK4 (batch 16, float32) | same scheme | "
        f"{c['ours_seconds_per_trajectory_batch16_float32']} |",
    ]
    for t in c["pypde_tried"]:
        lines.append(
            f"| {t['solver']} (py-pde {c['pypde_version']}), rtol={t['options']['rtol']:g} | "
            f"{t['max_abs_error']:.2e} | {t['seconds_warm']} |"
        )
    best = c["pypde_matched"]
    lines += [
        "",
        f"One whole py-pde `solve(solver='scipy', rtol=1e-3)` call, numba compilation "
        f"included: {c['pypde_solve_call_seconds_including_jit']} s.",
        "",
        "py-pde's fastest configuration at least as accurate as ours: "
        + (f"rtol={best['options']['rtol']:g}" if best else "none")
        + f". Time ratio py-pde / scifm: {c['ratio_pypde_over_ours_single']}x against scifm on "
        f"one trajectory, {c['ratio_pypde_over_ours_batched']}x against scifm batched "
        "(above 1: scifm faster).",
        "",
        f"Ours with the step shrunk (safety {c['ours_at_pypde_loosest_accuracy']['safety']}) to "
        f"reach py-pde's rtol=1e-3 accuracy "
        f"({c['ours_at_pypde_loosest_accuracy']['max_abs_error']:.2e}): "
        f"{c['ours_at_pypde_loosest_accuracy']['seconds_single_float64']} s single, "
        f"{c['ours_at_pypde_loosest_accuracy']['seconds_per_trajectory_batch16_float32']} s per "
        f"trajectory batched; ratio py-pde / scifm "
        f"{c['ratio_pypde_loosest_over_ours_tight_single']}x single, "
        f"{c['ratio_pypde_loosest_over_ours_tight_batched']}x batched.",
        "",
    ]
    return "\n".join(lines) + "\n" + scaling_markdown(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch/numba threads (1: the 2 shared cores are oversubscribed)",
    )
    parser.add_argument("--child", nargs=4, metavar=("SYSTEM", "RES", "BATCH", "FRACTION"))
    parser.add_argument("--compare", type=float, metavar="T_END")
    parser.add_argument("--scaling", action="store_true", help="batch scaling (see above)")
    parser.add_argument("--label", default="per-trajectory dt", help="names --scaling rows")
    parser.add_argument("--only", help="--scaling: this system only")
    parser.add_argument("--res", type=int, nargs="+", default=[64, 128], help="--scaling grids")
    parser.add_argument("--span-scale", type=float, default=1.0, help="--scaling: span x this")
    parser.add_argument("--scaling-child", nargs=4, metavar=("SYSTEM", "PARAMS", "RES", "FRAC"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.scaling_child:
        s, params, res, frac = args.scaling_child
        print(json.dumps(scaling_child(s, json.loads(params), int(res), float(frac))))
        return
    if args.scaling:
        run_scaling(args)
        return
    if args.child:
        s, res, batch, frac = args.child
        print(json.dumps(child(s, int(res), int(batch), float(frac), args.device)))
        return
    if args.compare:
        print(json.dumps(pypde_comparison(64, args.compare)))
        return
    rows = []
    for system, (b64, b128, frac) in PLAN.items():
        frac = QUICK_FRACTION[system] if args.quick else frac
        for res, batch in ((64, b64), (128, b128)):
            child_args = [
                "--child",
                system,
                str(res),
                str(batch),
                str(frac),
                "--device",
                args.device,
            ]
            rows.append(run_child(child_args, args.threads))
            print(json.dumps(rows[-1]), flush=True)
    cmp = run_child(["--compare", "1.0" if args.quick else "5.0"], args.threads)
    print(json.dumps(cmp), flush=True)
    dev = torch.device(args.device)
    info = run_info(
        data={
            "pde": "generated here: scifm.pde.simulate, PDEBench random initial conditions "
            "(throughput seed 1, py-pde comparison seed 0)"
        },
        note=f"{args.threads} torch/numba thread(s) per child process; the CPU may be shared "
        "with other jobs (timings noisy)",
    )
    report = {
        "device": str(dev),
        "gpu_note": "measured" if dev.type == "cuda" else "not measured (no GPU in this run)",
        "throughput": rows,
        "pypde": cmp,
    }
    old = RESULTS / "pde_generation.json"
    if old.exists():  # keep the batch-scaling figures of --scaling runs
        prev = json.loads(old.read_text())
        report.update({k: prev[k] for k in ("batch_scaling", "batch_scaling_runs") if k in prev})
    md = markdown(report)
    write_report(
        "pde_generation", report, md, info=info, title="PDE data generation benchmark",
        out_dir=RESULTS,
    )  # fmt: skip
    print(md)


if __name__ == "__main__":
    main()
