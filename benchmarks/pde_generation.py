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

from scifm.core.report import run_info, write_report

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
    return "\n".join(lines)


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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
    md = markdown(report)
    write_report(
        "pde_generation", report, md, info=info, title="PDE data generation benchmark",
        out_dir=RESULTS,
    )  # fmt: skip
    print(md)


if __name__ == "__main__":
    main()
