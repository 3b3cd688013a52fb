"""MPP data loading from files against the model's training speed.

    .venv/bin/python benchmarks/mpp_data.py [--quick] [--device cpu|cuda] [--data-dir DIR]

Inputs: none to download. The script first generates (``scifm.pde.generate``, reused on a
second run) PDEBench files of the four systems at ``--file-res`` cells per side with
``--frames`` frames (CNS at Mach 0.1 and 1.0 and SWE in PDEBench layout, diffusion-reaction
and INS as The Well files, so both formats are read), under ``--data-dir``.

Then, for the MPP "small" data path (files average-pooled to 32^2, T = 4 context frames,
one system per micro-batch, global batch ``--batch``):

- loader batches/s: batches assembled from the files by ``scifm.core.batches.iter_batches``
  (a torch DataLoader) with 0, 1 and 2 worker processes (pinned memory on CUDA), each
  over ``--steps`` positions after one warm-up batch;
- model steps/s: ``scifm.core.train`` steps of the "small" AViT on one fixed batch
  already in memory (forward, backward, AdamW), so loading costs nothing there.

``batches/s / steps/s`` above 1 means the loader keeps up with the model on this machine.
Writes benchmarks/results/mpp_data.{json,md} (``mpp_data_quick`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from scifm.core import TrainConfig, pick_device, train
from scifm.core.batches import iter_batches, to_device
from scifm.core.report import repo_path, run_info, write_report
from scifm.mpp.config import AViTConfig
from scifm.mpp.data import file_datasets, generate_files
from scifm.mpp.model import AViT
from scifm.mpp.train import loss_fn
from scifm.pde.windows import system_batches

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = {"swe": "pdebench", "diffreact": "well", "ins": "well", "cns_m0.1": "pdebench",
            "cns_m1.0": "pdebench"}  # fmt: skip


def make_files(data_dir: Path, *, n: int, res: int, frames: int, device: str) -> list[str]:
    named = []
    for name, fmt in VARIANTS.items():
        made = generate_files([name], data_dir, n=n, res=res, frames=frames, seed=0, fmt=fmt,
                              device=device)  # fmt: skip
        named += [f"{name}={p}" for p in made[name]]
    return named


def loader_rate(source, *, steps: int, workers: int, device: torch.device) -> float:
    """Batches per second delivered (and moved to ``device``) after one warm-up batch."""
    stream = iter_batches(source, start=0, stop=steps + 1, num_workers=workers, prefetch=2,
                          pin_memory=device.type == "cuda")  # fmt: skip
    to_device(next(stream), device)
    t0 = time.perf_counter()
    for batch in stream:
        to_device(batch, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def model_rate(batch: dict, *, steps: int, device: torch.device, model: str) -> float:
    """Optimizer steps per second of the AViT on one fixed in-memory batch."""

    class Same:
        def get(self, step, micro, rank, world_size):
            return batch

    net = AViT(AViTConfig.preset(model))
    cfg = TrainConfig(steps=2, warmup_steps=1, progress=False, log_every=1)
    train(net, loss_fn, Same(), cfg, device=device)  # warm-up (allocations, kernels)
    cfg = cfg.replace(steps=steps)
    t0 = time.perf_counter()
    train(net, loss_fn, Same(), cfg, device=device)
    return steps / (time.perf_counter() - t0)


def markdown(r: dict) -> str:
    lines = [
        f"Device: {r['device']}; load average {r['load_average_end']:.1f} at the end.  ",
        f"Files: {r['files']['n_files']} files, {r['files']['bytes'] / 1e6:.1f} MB, "
        f"{r['files']['res']}^2 x {r['files']['frames']} frames, {r['files']['n_traj']} "
        f"trajectories per variant ({', '.join(r['files']['variants'])}); read as "
        f"{r['model_res']}^2 (average-pooled), T = {r['n_frames']}, global batch {r['batch']}.",
        "",
        "| loader workers | batches/s from files | model steps/s (AViT "
        f"{r['model']}) | batches per model step |",
        "|---|---|---|---|",
    ]
    for row in r["loader"]:
        lines.append(
            f"| {row['workers']} | {row['batches_per_s']:.1f} | {r['model_steps_per_s']:.2f} | "
            f"{row['batches_per_s'] / r['model_steps_per_s']:.1f} |"
        )
    lines += ["", r["note"]]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: best available)")
    ap.add_argument("--data-dir", default=str(ROOT / "data" / "mpp_data_bench"))
    ap.add_argument("--file-res", type=int, default=None, help="cells per side of the files")
    ap.add_argument("--frames", type=int, default=21, help="frames per trajectory in the files")
    ap.add_argument("--batch", type=int, default=8, help="global micro-batch")
    ap.add_argument("--steps", type=int, default=None, help="positions timed per measurement")
    args = ap.parse_args()
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    device = pick_device(args.device)
    quick = args.quick
    res = args.file_res or (32 if quick else 64)
    n_traj, steps = (2, args.steps or 10) if quick else (8, args.steps or 60)
    model, model_res, T = ("tiny", 16, 4) if quick else ("small", 32, 4)
    t0 = time.perf_counter()
    named = make_files(Path(args.data_dir), n=n_traj, res=res, frames=args.frames,
                       device=str(device))  # fmt: skip
    gen_s = time.perf_counter() - t0
    sets = file_datasets(named, n_frames=T, res=model_res, frames=args.frames)
    source = system_batches(sets, args.batch, seed=0)
    rows = []
    for workers in (0, 1, 2):
        rate = loader_rate(source, steps=steps, workers=workers, device=device)
        rows.append({"workers": workers, "batches_per_s": round(rate, 2)})
        print(json.dumps(rows[-1]), flush=True)
    batch = source.get(0, 0, 0, 1)
    m_steps = max(5, steps // 4)
    steps_per_s = model_rate(batch, steps=m_steps, device=device, model=model)
    print(json.dumps({"model_steps_per_s": round(steps_per_s, 3)}), flush=True)
    paths = [Path(p.split("=", 1)[1]) for p in named]
    info = run_info(
        data={
            "files": f"{len(paths)} PDEBench/Well files in {repo_path(args.data_dir)} "
            f"(scifm.pde.generate, seed 0, {n_traj} trajectories per variant, {res}^2 x "
            f"{args.frames} frames; reused when present)",
            "windows": f"read as {model_res}^2, T = {T}; system_batches seed 0",
        },
        note="the loader's workers and the model share this machine's CPUs",
    )
    report = {
        "device": str(device),
        "load_average_end": round(os.getloadavg()[0], 2),
        "files": {
            "n_files": len(paths),
            "bytes": sum(p.stat().st_size for p in paths),
            "res": res,
            "frames": args.frames,
            "n_traj": n_traj,
            "variants": {k: VARIANTS[k] for k in VARIANTS},
            "generate_or_reuse_s": round(gen_s, 1),
        },
        "model": model,
        "model_res": model_res,
        "n_frames": T,
        "batch": args.batch,
        "timed_positions": steps,
        "loader": rows,
        "model_steps_per_s": round(steps_per_s, 3),
        "model_steps_timed": m_steps,
        "note": "Loader rows include moving the batch to the device. Model steps/s is the "
        "training loop on one fixed in-memory batch (no loading). On a CPU the loader's "
        "workers compete with the model for the same cores, so the ratio is an upper bound "
        "of what a real run sees there; on a GPU they do not.",
    }
    stem = "mpp_data_quick" if quick else "mpp_data"
    md = markdown(report)
    write_report(
        stem, report, md, info=info, out_dir=RESULTS,
        title="MPP data loading from files vs training speed",
    )  # fmt: skip
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
