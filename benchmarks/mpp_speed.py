"""Solver vs surrogate speed per trajectory, per system, at 32^2, 64^2 and 128^2 (issue 13).

    .venv/bin/python benchmarks/mpp_speed.py [--quick] [--device cpu|cuda] [--model PATH]

For each MPP variant, grid and batch size (1 and 16):

- solver: ``simulate`` of ``batch`` trajectories with the per-trajectory time steps of
  ``scifm.pde.stepping``, timed over a fraction of the PDEBench span (cost is linear in
  simulated time; the fraction is recorded) and scaled to a PDEBench trajectory of 21
  frames; seconds per trajectory;
- surrogate: the shipped AViT (``assets/mpp/avit_small_64``, or ``--model``) rolling out the
  same 20 frames from a T-frame context, batched the same way; seconds per trajectory. Every
  variant is timed, also those the model was not pretrained on (compressible NS for the 64^2
  model: its time does not depend on the weights; marked in the table).

Speed-up = solver / surrogate (above 1 the surrogate is faster). Beside it the one-step
NRMSE of the surrogate and of persistence at 128^2 on a few held-out trajectories (their
first T + 1 frames, seed 4242), since a fast surrogate is only worth its error. On the CPU
times are CPU seconds of this one-thread process (robust to other jobs on shared cores);
on CUDA wall seconds after synchronising. Writes benchmarks/results/mpp_speed.{json,md}.
``benchmarks/gpu.py`` reuses ``speed_rows`` and ``accuracy_128`` on the GPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from scifm.core.report import repo_path, run_info, write_report
from scifm.mpp import cuda_graph_step, model_step, persistence_step, rollout
from scifm.mpp.evaluate import one_step_nrmse
from scifm.mpp.experiment import VARIANTS, load_surrogate, simulate_variant, system_info
from scifm.pde import get_system
from scifm.pde.windows import TrajectoryWindows

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
MODEL = ROOT.parent / "assets" / "mpp" / "avit_small_64"
FRAMES = 21  # PDEBench CNS layout: a trajectory is 21 frames, 20 after t = 0
# fraction of the PDEBench span the solver is timed over, per system (CPU; CUDA: x 2)
FRACTION = {"swe": 0.25, "diffreact": 0.5, "ins": 0.05, "cns": 0.005}
GOAL = 10.0  # solver / surrogate at 128^2, batch 1 (issue 13 item 4)
ACCURACY_SEED = 4242  # held-out: not a training seed, not the demo's


class Clock:
    """CPU seconds of this process on the CPU, synchronised wall seconds on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return time.perf_counter()
        return time.process_time()


def initial_conditions(name: str, n: int, res: int, device) -> tuple[torch.Tensor, dict]:
    """``n`` seeded initial states (N, C, X, Y) of a variant and the parameters to rerun them."""
    from scifm.pde.simulate import SOLVERS

    system, _ = VARIANTS[name]
    module = SOLVERS[system]
    tiny = get_system(system).t_end / 1000
    traj = simulate_variant(name, n, res=res, n_frames=2, seed=7, device=device, t_end=tiny)
    keep = set(module.DEFAULTS) | set(getattr(module, "FIELD_PARAMS", ()))
    return traj.fields[:, 0], {k: v for k, v in traj.params.items() if k in keep}


def solver_seconds(
    name: str, init: torch.Tensor, params: dict, batch: int, fraction: float, runs: int
) -> float:
    """Seconds per trajectory of 21 PDEBench frames: the first ``runs`` initial states in
    batches of ``batch``, simulated over ``fraction`` of the span and scaled."""
    from scifm.pde import simulate

    system, _ = VARIANTS[name]
    span = get_system(system).t_end
    clock = Clock(init.device)
    simulate(system, 1, res=16, n_frames=2, t_end=span / 100, device=init.device)  # warm-up
    n_frames = max(2, round((FRAMES - 1) * fraction) + 1)
    t0 = clock.now()
    for lo in range(0, runs, batch):
        simulate(
            system,
            res=init.shape[-1],
            n_frames=n_frames,
            t_end=span * fraction,
            initial_state=init[lo : lo + batch],
            params={k: v[lo : lo + batch] for k, v in params.items()},
            device=init.device,
        )
    return (clock.now() - t0) / fraction / runs


@torch.no_grad()
def surrogate_seconds(
    model, info: dict, context: torch.Tensor, steps: int, *, graph: bool = False
) -> tuple[float, torch.Tensor]:
    """Seconds per trajectory of ``steps`` rollout frames from ``context`` (B, T, C, H, W),
    and the frames; ``graph``: the step captured once as a CUDA graph (its capture is not
    timed, as a warm-up is not)."""
    clock = Clock(context.device)
    if graph:
        step = cuda_graph_step(model, info["field_index"], info["periodic"], context)
    else:
        step = model_step(model, info["field_index"], info["periodic"])
    rollout(step, context, 1)  # warm-up (allocator, kernels)
    t0 = clock.now()
    preds, _ = rollout(step, context, steps)
    return (clock.now() - t0) / context.shape[0], preds


def speed_rows(
    model,
    systems: dict,
    *,
    device,
    resolutions,
    batches=(1, 16),
    scale=1.0,
    singles=16,
    deadline: float | None = None,
    graphs: bool = False,
) -> list[dict]:
    """One row per (variant, grid, batch). The same 16 initial states serve every batch size
    (batch 1 averages the first ``singles`` of them); ``scale`` multiplies the span fractions.
    Past ``deadline`` (a ``time.perf_counter()`` value) no further grid is started: the rows
    measured so far are returned, and the caller reports the table as partial. ``graphs``
    (CUDA only) also times the surrogate with its step captured as a CUDA graph.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    T, n = model.config.n_frames, max(batches)
    rows = []
    for name in VARIANTS:
        info = systems.get(name) or system_info(name)  # speed does not depend on the weights
        system, _ = VARIANTS[name]
        frac = min(1.0, FRACTION[system] * scale)
        for res in resolutions:
            if deadline is not None and time.perf_counter() > deadline:
                print(
                    f"speed_rows: deadline passed, {name} {res}^2 and later not timed", flush=True
                )
                return rows
            init, params = initial_conditions(name, n, res, device)
            for batch in batches:
                runs = min(singles, n) if batch == 1 else n
                solver = solver_seconds(name, init, params, batch, frac, runs)
                context = init[:batch, None].expand(-1, T, -1, -1, -1).float().contiguous()
                surrogate, eager = surrogate_seconds(model, info, context, FRAMES - 1)
                graph = {}
                if graphs:
                    try:
                        g, preds = surrogate_seconds(model, info, context, FRAMES - 1, graph=True)
                        graph = {  # the same 20 frames replayed: a difference is a capture bug
                            "surrogate_graph_s_per_traj": round(g, 5),
                            "speedup_graph": round(solver / g, 2),
                            "graph_vs_eager_max_abs": float((preds - eager).abs().max()),
                        }
                    except Exception as e:  # the eager figures of the row are kept
                        graph = {"graph_error": f"{type(e).__name__}: {e}"[:300]}
                rows.append({
                    "system": name, "res": res, "batch": batch, "in_pretraining": name in systems,
                    "tokens_per_frame": (res // model.config.patch_size) ** 2,
                    "solver_fraction_of_span_timed": frac, "solver_trajectories_timed": runs,
                    "solver_s_per_traj": round(solver, 5),
                    "surrogate_s_per_traj": round(surrogate, 5),
                    "speedup": round(solver / surrogate, 2), **graph,
                })  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    return rows


def accuracy_128(model, systems: dict, *, device, n: int = 2, res: int = 128) -> dict:
    """One-step NRMSE of the model and of persistence on the first window of ``n`` trajectories."""
    model = model.to(device).eval()
    T = model.config.n_frames
    out = {}
    for name, info in systems.items():
        system, _ = VARIANTS[name]
        span = get_system(system).t_end * T / (FRAMES - 1)  # frames 0..T at PDEBench spacing
        traj = simulate_variant(
            name, n, res=res, n_frames=T + 1, seed=ACCURACY_SEED, device=device, t_end=span
        )
        ws = TrajectoryWindows(
            traj.fields.float(), system=name, n_ctx=T,
            field_index=tuple(info["field_index"]), periodic=info["periodic"],
        )  # fmt: skip
        step = model_step(model, info["field_index"], info["periodic"])
        out[name] = {
            "surrogate": round(one_step_nrmse(step, ws, device=device), 5),
            "persistence": round(one_step_nrmse(persistence_step, ws, device=device), 5),
            "trajectories": n,
        }
        print(name, res, out[name], flush=True)
    return out


def stored_speed(path: Path, model) -> tuple[list, dict, str]:
    """The speed rows of an earlier full run (``path``), where they were timed (command,
    date, machine, model) and their timing kind, for a model of the same architecture."""
    if not path.is_file():
        raise SystemExit(f"--accuracy-only: {path} does not exist; run the full benchmark first")
    old = json.loads(path.read_text())
    ours = (model.n_params(), model.config.patch_size, model.config.n_frames)
    theirs = (old.get("model_params"), old.get("patch_size"), old.get("n_frames"))
    if ours != theirs:
        raise SystemExit(
            f"--accuracy-only: {path} timed a model of (parameters, patch, frames) {theirs}, "
            f"this one is {ours}; its speed rows do not apply: run the full benchmark"
        )
    run = old.get("speed_run") or {k: old.get(k) for k in ("command", "date", "machine", "model")}
    return old["speed"], run, old["timing"]


def model_card(path: str | Path) -> dict:
    """Training resolution of a checkpoint (from its recorded data config), if recorded."""
    from scifm.core import load_checkpoint

    data = load_checkpoint(path)["record"].get("extra", {}).get("data", {})
    return {"model_res": data.get("res")}


def markdown(report: dict, title: str = "Solver vs surrogate speed", header: bool = True) -> str:
    """The speed report; ``header=False`` leaves out the title and the command/date/machine
    lines (``write_report`` writes its own run header above the body)."""
    lines = [f"# {title}", "", f"Command: `{report['command']}`  ", f"Date: {report['date']}  ",
             f"Machine: {report['machine']}  "] if header else []  # fmt: skip
    singles = next((r["solver_trajectories_timed"] for r in report["speed"] if r["batch"] == 1), 16)
    graph_head = (
        " graph s / traj | speed-up (graph) | graph vs eager max abs |"
        if any("speedup_graph" in r or "graph_error" in r for r in report["speed"])
        else ""
    )
    lines += [
        f"Model: `{report['model']}` ({report['model_params']:,} parameters, patch "
        f"{report['patch_size']}, T = {report['n_frames']} input frames)",
        "",
        "Seconds per trajectory of 20 frames after t = 0 (PDEBench spacing). Solver: "
        "per-trajectory time steps; the same 16 seeded initial states per row (batch 1: "
        f"the first {singles} run one by one), timed over a fraction of the span (in the "
        f"JSON) and scaled. Times: {report['timing']}. Speed-up = solver / surrogate. The "
        "solver's span fraction is small for CNS, so its figures are early-time "
        "extrapolations"
        + (", good to a factor of about 1.5 on this shared machine (compare "
           "benchmarks/results/pde_generation.md)." if "CPU" in report["timing"] else ".")
        + (" Graph: the surrogate's step captured once as a CUDA graph "
           "(`scifm.mpp.cuda_graph_step`); its capture (3 warm-up steps and the capture) "
           "is not timed, as the eager warm-up is not." if graph_head else ""),
        *(["", f"Speed rows: timed by `{report['speed_run']['command']}` on "
              f"{report['speed_run']['date']} ({report['speed_run']['machine']}, model "
              f"`{report['speed_run']['model']}` of the same architecture); this run "
              "recomputed only the one-step NRMSE at 128^2 for the model above (`--accuracy-"
              "only`: timings depend on the architecture, not the weights)."]
          if report.get("speed_run") else []),
        "",
        "| system | in pretraining | res | tokens / frame | batch | solver s / traj | "
        "surrogate s / traj | speed-up |" + graph_head,
        "|---|---|---|---|---|---|---|---|" + "---|" * graph_head.count("|"),
    ]  # fmt: skip
    for r in report["speed"]:
        lines.append(
            f"| {r['system']} | {'yes' if r.get('in_pretraining', True) else 'no'} | "
            f"{r['res']} | {r['tokens_per_frame']} | {r['batch']} | "
            f"{r['solver_s_per_traj']:.4g} | {r['surrogate_s_per_traj']:.4g} | {r['speedup']} |"
            + ((f" {r['surrogate_graph_s_per_traj']:.4g} | {r['speedup_graph']} | "
                f"{r['graph_vs_eager_max_abs']:.2g} |" if "speedup_graph" in r
                else " failed | - | - |") if graph_head else "")
        )  # fmt: skip
    goal = [r for r in report["speed"] if r["res"] == 128 and r["batch"] == 1]
    for key, how in (("speedup", ""), ("speedup_graph", " with the step as a CUDA graph")):
        if goal and any(key in r for r in goal):
            lines += [
                "",
                f"Goal (issue 13): speed-up >= {GOAL:g} at 128^2, batch 1{how}: "
                + "; ".join(
                    f"{r['system']} {r[key]} ({'met' if r[key] >= GOAL else 'missed'})"
                    if key in r
                    else f"{r['system']} failed ({r.get('graph_error', '?')})"
                    for r in goal
                ),
            ]
    acc = report.get("accuracy_128")
    if isinstance(acc, str):
        lines += ["", f"One-step NRMSE at 128^2: {acc}."]
    elif acc:
        lines += [
            "",
            f"One-step NRMSE at 128^2 (first window of {next(iter(acc.values()))['trajectories']}"
            f" held-out trajectories, seed {ACCURACY_SEED}; the model was trained at "
            f"{report.get('model_res', '?')}^2):",
            "",
            "| system | surrogate | persistence |",
            "|---|---|---|",
        ]
        lines += [f"| {k} | {v['surrogate']} | {v['persistence']} |" for k, v in acc.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="32^2 only, shorter spans")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=str(MODEL), help="AViT checkpoint directory")
    parser.add_argument(
        "--accuracy-only",
        action="store_true",
        help="recompute only the one-step NRMSE at 128^2 for --model (new weights) and keep "
        "the stored speed rows, which depend on the architecture, not the weights (refused "
        "when the stored rows are of another architecture)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    model, systems = load_surrogate(args.model, device)
    speed_run, timing = None, None
    if args.accuracy_only:
        rows, speed_run, timing = stored_speed(RESULTS / "mpp_speed.json", model)
    else:
        resolutions = (32,) if args.quick else (32, 64, 128)
        rows = speed_rows(model, systems, device=device, resolutions=resolutions,
                          batches=(1, 16), scale=0.25 if args.quick else 1.0)  # fmt: skip
    acc = None if args.quick else accuracy_128(model, systems, device=device)
    info = run_info(
        note=f"device {device}"
        + (", 1 thread, 2 cores shared with other jobs" if device.type == "cpu" else "")
    )
    report = {
        "command": info["command"],
        "date": info["date_utc"],
        "machine": f"device {device}, torch {torch.__version__}",
        "timing": timing or ("CPU seconds of the one-thread process" if device.type == "cpu"
                             else "wall seconds, CUDA synchronised"),
        "model": repo_path(args.model, root=ROOT.parent),
        "model_params": model.n_params(),
        **model_card(args.model),
        "patch_size": model.config.patch_size,
        "n_frames": model.config.n_frames,
        "speed": rows,
        "accuracy_128": acc,
        **({"speed_run": speed_run} if speed_run else {}),
    }  # fmt: skip
    body = markdown(report, header=False)  # write_report writes the title and the run header
    write_report("mpp_speed", report, body, info=info, title="Solver vs surrogate speed",
                 out_dir=RESULTS)  # fmt: skip
    print(markdown(report))


if __name__ == "__main__":
    main()
