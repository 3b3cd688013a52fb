"""The prepared accelerator check (issue 13): one script, torch + scifm only, < 5 min on a GPU.

    python benchmarks/gpu.py [--out DIR] [--budget SECONDS]
    python benchmarks/gpu.py --sections tutorials --tutorials 00_training_loop 01_xval_numbers \
        02_pde_data --name gpu_notebooks      # more tutorial twins on CUDA, their own file

Needs only torch and the library's core dependencies (no Jupyter, Panel or faiss: the
GPU machine has a bare Python). On a CUDA GPU it measures, each section on its own so
one failure is recorded without losing the rest, and writes ``gpu.{json,md}`` under
``--out`` (default benchmarks/results):

1. AViT-S (McCabe et al.'s S: 384 wide, 6 heads, 12 blocks, patch 16) training throughput
   at 128^2 with T = 16 frames, strict fp32 (TF32 off) and bf16 autocast: samples/s and
   model FLOP utilisation (FLOPs of one training step counted by
   ``torch.utils.flop_counter`` / step time / the GPU's dense peak for that precision);
2. bf16-vs-fp32 one-step agreement of the shipped surrogate on solver data;
3. a tutorial's py:percent twin (``notebooks/03_mpp_transfer.py``; ``--tutorials`` names
   others) run as a script on CUDA (needs matplotlib; if it is missing, that is recorded and
   the step is skipped);
4. solver vs surrogate speed per trajectory on the GPU (``mpp_speed.speed_rows``), the
   surrogate both eager and with its step captured as a CUDA graph (``cuda_graph_step``).

Without a CUDA GPU it prints that nothing was measured, writes nothing and exits 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # mpp_speed, run as a sibling script

import mpp_speed  # noqa: E402

from scifm.core.report import repo_path, run_info, write_report  # noqa: E402
from scifm.mpp import AViT, AViTConfig  # noqa: E402
from scifm.mpp.experiment import VARIANTS, load_surrogate, simulate_variant  # noqa: E402
from scifm.mpp.metrics import nmse_per_field  # noqa: E402
from scifm.pde import get_system  # noqa: E402

NOTEBOOKS = ROOT.parent / "notebooks"
TUTORIAL = NOTEBOOKS / "03_mpp_transfer.py"
SECTIONS = ("throughput", "bf16_agreement", "tutorials", "speed")
# Dense peak TFLOP/s (no sparsity) by precision, from NVIDIA's data sheets (SXM parts).
PEAK_TFLOPS = {
    "H200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4},
    "H100": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4},
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0},
}


def peak_for(name: str) -> dict | None:
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(
    device: torch.device,
    precision: str,
    *,
    preset: str = "S",
    res: int = 128,
    batch: int = 16,
    steps: int = 10,
) -> dict:
    """AViT training steps (S at 128^2, T = 16 frames): samples/s, FLOPs per step, MFU."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.backends.cuda.matmul.allow_tf32 = False  # strict fp32 for the fp32 figure
    torch.backends.cudnn.allow_tf32 = False
    gen = torch.Generator(device="cpu").manual_seed(0)
    cfg = AViTConfig.preset(preset, n_frames=16, drop_path=0.0)
    model = AViT(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 16, 4, res, res, generator=gen).to(device)
    y = torch.randn(batch, 4, res, res, generator=gen).to(device)
    fields, bf16 = [6, 7, 8, 9], precision == "bf16"

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = nmse_per_field(model(x, fields, True), y).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    cuda = device.type == "cuda"
    sync(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    sec = (time.perf_counter() - t0) / steps
    peak = peak_for(torch.cuda.get_device_name(device)) if cuda else None
    achieved = flops / sec / 1e12
    return {
        "precision": precision,
        "model": preset,
        "params": model.n_params(),
        "batch": batch,
        "tokens_per_frame": (res // cfg.patch_size) ** 2,
        "step_s": round(sec, 4),
        "samples_per_s": round(batch / sec, 1),
        "train_flops_per_step": flops,
        "achieved_tflops": round(achieved, 1),
        "peak_tflops": peak[precision] if peak else None,
        "mfu": round(achieved / peak[precision], 3) if peak else None,
        "peak_memory_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if cuda
        else None,
    }


@torch.no_grad()
def bf16_agreement(device: torch.device, model_path: Path, *, res: int = 64, n: int = 8) -> dict:
    """One-step predictions of the shipped model in bf16 autocast against fp32, per variant."""
    torch.backends.cuda.matmul.allow_tf32 = False
    model, systems = load_surrogate(model_path, device)
    model.eval()
    T, out = model.config.n_frames, {}
    for name, info in systems.items():
        span = get_system(VARIANTS[name][0]).t_end * T / (mpp_speed.FRAMES - 1)  # PDEBench spacing
        traj = simulate_variant(
            name,
            n,
            res=res,
            n_frames=T + 1,
            seed=mpp_speed.ACCURACY_SEED,
            device=device,
            t_end=span,
        )
        x, y = traj.fields[:, :T].float(), traj.fields[:, T].float()
        p32 = model(x, info["field_index"], info["periodic"])
        with torch.autocast(device.type, dtype=torch.bfloat16):
            p16 = model(x, info["field_index"], info["periodic"]).float()
        out[name] = {
            "nrmse_bf16_vs_fp32": float(nmse_per_field(p16, p32).sqrt().mean()),
            "nrmse_fp32_vs_truth": float(nmse_per_field(p32, y).sqrt().mean()),
            "nrmse_bf16_vs_truth": float(nmse_per_field(p16, y).sqrt().mean()),
        }
    return out


def tutorial(device: torch.device, timeout: float, script: Path = TUTORIAL) -> dict:
    """Run a tutorial's py:percent twin as a plain script on the GPU."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return {"status": "not run: matplotlib is not installed on this machine"}
    env = {**os.environ, "SCIFM_DEVICE": str(device), "MPLBACKEND": "Agg"}
    lib = str(ROOT.parent / "lib")
    env["PYTHONPATH"] = lib + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, script.name],
            cwd=script.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:  # the other tutorials' results are kept
        return {
            "script": str(script.relative_to(ROOT.parent)),
            "status": f"timed out after {timeout:.0f} s",
            "wall_s": round(time.perf_counter() - t0, 1),
            "stdout_tail": (e.stdout or b"")[-1500:].decode(errors="replace")
            if isinstance(e.stdout, bytes)
            else (e.stdout or "")[-1500:],
        }
    return {
        "script": str(script.relative_to(ROOT.parent)),
        "status": "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})",
        "wall_s": round(time.perf_counter() - t0, 1),
        "stdout_tail": proc.stdout[-1500:],
        "stderr_tail": proc.stderr[-1500:] if proc.returncode else "",
    }


def markdown(r: dict) -> str:
    lines = [
        "# Accelerator check",
        "",
        f"Command: `{r['command']}`  ",
        f"Date: {r['date']}  ",
        f"Device: {r['device']} (torch {r['torch']}, CUDA {r['cuda']}); total {r['wall_s']} s",
        "",
    ]
    ran = r["sections"]  # a part appears only when its section was asked for (run or failed)
    if "throughput" in ran:
        lines += [
            "## AViT-S training throughput (128^2, T = 16 frames, patch 16: 64 tokens per frame)",
            "",
            "MFU = FLOPs of one training step (torch.utils.flop_counter) / step time / dense "
            "peak of the precision (fp32: TF32 off; peaks from NVIDIA's data sheets).",
            "",
            "| precision | batch | step s | samples / s | achieved TFLOP/s | peak | MFU "
            "| peak GB |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for t in ran["throughput"].get("result", []):
            lines.append(
                f"| {t['precision']} | {t['batch']} | {t['step_s']} | {t['samples_per_s']} | "
                f"{t['achieved_tflops']} | {t['peak_tflops']} | {t['mfu']} | "
                f"{t['peak_memory_gb']} |"
            )
        lines.append("")
    if "bf16_agreement" in ran:
        lines += [
            "## bf16 vs fp32, one step of the shipped surrogate (64^2, 8 held-out trajectories)",
            "",
            "| system | NRMSE bf16 vs fp32 | fp32 vs truth | bf16 vs truth |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {k} | {v['nrmse_bf16_vs_fp32']:.2e} | {v['nrmse_fp32_vs_truth']:.4f} | "
            f"{v['nrmse_bf16_vs_truth']:.4f} |"
            for k, v in ran["bf16_agreement"].get("result", {}).items()
        ]
        lines.append("")
    part = ran.get("tutorials", ran.get("tutorial"))  # "tutorial": one dict, before --tutorials
    if part is not None:
        tuts = part.get("result", [])
        lines += ["## Tutorial twins on CUDA", ""]
        for tut in [tuts] if isinstance(tuts, dict) else tuts:
            lines.append(f"- {tut.get('script', TUTORIAL.name)}: {tut.get('status', 'not run')}, "
                         f"{tut.get('wall_s', '-')} s")  # fmt: skip
        lines.append("")
    speed = r["sections"].get("speed", {}).get("result")
    if speed:
        lines.append(mpp_speed.markdown(speed, title="Solver vs surrogate on the GPU").replace(
            "# Solver", "## Solver"))  # fmt: skip
    if speed and not speed.get("complete", True):
        lines += ["The speed table is partial: the budget ran out before every variant and grid "
                  "was timed.", ""]  # fmt: skip
    if r.get("pending"):
        lines += ["## Sections not reached (the run was still going when this was written)", ""]
        lines += [f"- {k}" for k in r["pending"]] + [""]
    failed = {k: v["error"] for k, v in r["sections"].items() if "error" in v}
    if failed:
        lines += ["## Sections that failed or were skipped", ""]
        lines += [f"- {k}: {v.splitlines()[-1]}" for k, v in failed.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "results"), help="results directory")
    parser.add_argument("--budget", type=float, default=280.0, help="seconds for all sections")
    parser.add_argument("--model", default=str(mpp_speed.MODEL), help="AViT checkpoint")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--tutorials", nargs="+", default=[TUTORIAL.stem],
                        help="tutorial twins (notebooks/NAME.py) to run on CUDA")  # fmt: skip
    parser.add_argument("--name", default="gpu", help="results file name (NAME.json, NAME.md)")
    args = parser.parse_args()
    scripts = [NOTEBOOKS / f"{Path(t).stem}.py" for t in args.tutorials]
    missing = [str(p.relative_to(ROOT.parent)) for p in scripts if not p.is_file()]
    if missing:
        parser.error(f"--tutorials: no such tutorial twin: {', '.join(missing)}")
    if not torch.cuda.is_available():
        print(
            "gpu.py: no CUDA GPU (torch.cuda.is_available() is False): nothing measured, "
            "no results written."
        )
        return 0
    device = torch.device("cuda")
    start = time.perf_counter()

    def left() -> float:
        return args.budget - (time.perf_counter() - start)

    def speed() -> dict:
        model, systems = load_surrogate(args.model, device)
        deadline = start + args.budget - 30  # leave time for the 128^2 accuracy and the write
        rows = mpp_speed.speed_rows(model, systems, device=device, resolutions=(32, 64, 128),
                          scale=2.0, singles=4, deadline=deadline, graphs=True)  # fmt: skip
        done = len(rows) == len(VARIANTS) * 3 * 2  # every variant, grid and batch size
        accuracy = (mpp_speed.accuracy_128(model, systems, device=device) if left() > 20
                    else "not run: budget spent")  # fmt: skip
        return {
            "complete": done,
            "command": "python benchmarks/gpu.py", "date": now(), "machine": name,
            "timing": "wall seconds, CUDA synchronised",
            "model": repo_path(args.model, root=ROOT.parent),
            "model_params": model.n_params(), "patch_size": model.config.patch_size,
            "n_frames": model.config.n_frames, "speed": rows,
            "accuracy_128": accuracy,
            **mpp_speed.model_card(args.model),
        }  # fmt: skip

    name = torch.cuda.get_device_name(device)
    plan = [  # (section, minimum seconds it needs, function)
        ("throughput", 40, lambda: [throughput(device, p) for p in ("fp32", "bf16")]),
        ("bf16_agreement", 20, lambda: bf16_agreement(device, Path(args.model))),
        (
            "tutorials",
            30,
            lambda: [
                tutorial(device, left() - reserve, p)
                if left() - reserve >= 30
                else {"script": str(p.relative_to(ROOT.parent)), "status": "not run: budget spent"}
                for p in scripts
            ],
        ),
        ("speed", 30, speed),
    ]
    plan = [step for step in plan if step[0] in args.sections]
    reserve = 90 if "speed" in args.sections else 10  # seconds kept for the speed table
    sections: dict[str, dict] = {}
    for key, need, fn in plan:
        if left() < need:
            sections[key] = {"error": f"not run: {left():.0f} s of the budget left"}
        else:
            t0 = time.perf_counter()
            try:
                sections[key] = {"result": fn()}
            except Exception:  # one section failing must not lose the others' figures
                tb = traceback.format_exc(limit=3)  # repo-relative, as every stored result
                sections[key] = {"error": tb.replace(f"{ROOT.parent}/", "")}
            sections[key]["wall_s"] = round(time.perf_counter() - t0, 1)
        print(key, json.dumps(sections[key])[:400], flush=True)
        # written after every section: a run killed later (a time limit) keeps what it measured
        write(args, name, start, sections, pending=[k for k, *_ in plan if k not in sections])
    print(markdown(write(args, name, start, sections, pending=[])))
    return 0


def write(args, name: str, start: float, sections: dict, pending: list[str]) -> dict:
    """Write gpu.{json,md} with the sections so far; ``pending`` names those still to run."""
    report = {
        "command": "python benchmarks/gpu.py",
        "date": now(),
        "device": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "wall_s": round(time.perf_counter() - start, 1),
        "sections": sections,
        "pending": pending,
    }
    # An --out outside the checkout (the GPU machine's own folder) is recorded as $OUT.
    outside = not Path(args.out).resolve().is_relative_to(ROOT.parent.resolve())
    argv = ["$OUT" if outside and a == args.out else a for a in sys.argv[1:]]
    info = run_info(
        argv=argv,
        note=f"{name}; torch {torch.__version__}, CUDA {torch.version.cuda}",
        unquoted=("$OUT",),
    )
    body = markdown(report).split("\n", 2)[2]  # write_report writes the title and the header
    write_report(args.name, report, body, info=info, title="Accelerator check", out_dir=args.out)
    return report


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


if __name__ == "__main__":
    sys.exit(main())
