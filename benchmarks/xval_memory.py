"""Measured training memory of each xVal / digit encoding (issue 15, item 5).

Each (task, encoding) is measured in a *fresh* Python process: it builds the data
and the model, then reads its resident memory (``VmRSS``), resets the kernel's
high-water mark (``/proc/self/clear_refs``, value 5), trains ``--steps`` steps and
reads the peak (``VmHWM``). ``training_mib`` is peak minus before: what training
adds (gradients, AdamW moments, activations, allocator slack -- and torch's one-time
set-up of autograd and its kernels on the first step, the same for every encoding).
``training_mib_warm`` repeats the measurement after a throw-away one-step training
run of a copy of the model on 2-sample batches, so that fixed set-up cost is out
and what differs by encoding shows. On CUDA it is
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` instead.

    .venv/bin/python benchmarks/xval_memory.py            # -> results/xval_memory.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from scifm.core.report import run_info, write_report

RESULTS = Path(__file__).parent / "results"
SCHEMES = ("xval", "p10", "p1000", "b1999", "fp15")


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def probe(task_name: str, scheme: str, steps: int, batch: int, device: str) -> dict:
    """Runs inside the fresh process: memory that training adds, in MiB."""
    import gc

    import torch

    from scifm.core import TrainConfig, train
    from scifm.xval import TaskConfig, batches, generate
    from scifm.xval.train import model_config_for, prepare, xval_loss

    torch.set_num_threads(1)
    task = TaskConfig(task=task_name, n_train=2000)
    cfg = model_config_for(task, scheme, "small", max_len=64)
    trained, items = prepare(generate(task, task.n_train, 0), task, cfg, 0)
    source = batches(items, batch, seed=0)
    dev = torch.device(device)
    tcfg = TrainConfig(steps=steps, lr=1e-3, warmup_steps=1, log_every=steps, progress=False)
    gc.collect()
    out = {"task": task_name, "scheme": scheme, "steps": steps, "batch": batch, "device": device,
           "tokens_per_sample": trained.info["tokens_per_sample"],
           "n_params": trained.info["n_params"]}  # fmt: skip
    if dev.type == "cuda":
        trained.model.to(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        train(trained.model, xval_loss, source, tcfg, device=dev)
        peak = torch.cuda.max_memory_allocated(dev)
        out.update(method="torch.cuda.max_memory_allocated - memory_allocated before",
                   training_mib=(peak - before) / 2**20)  # fmt: skip
        return out
    import copy

    before = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    warm = copy.deepcopy(trained.model)  # throw-away: autograd and AdamW set up once
    train(warm, xval_loss, batches(items, 2, seed=1), tcfg.replace(steps=1), device=dev)
    del warm
    gc.collect()
    peak_warmup = _status_kb("VmHWM")
    before_warm = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    train(trained.model, xval_loss, source, tcfg, device=dev)
    peak = _status_kb("VmHWM")
    out.update(method="VmHWM after training - VmRSS before (fresh process, HWM reset)",
               rss_before_mib=before / 1024, peak_mib=max(peak, peak_warmup) / 1024,
               training_mib=(max(peak, peak_warmup) - before) / 1024,
               training_mib_warm=(peak - before_warm) / 1024)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tasks", nargs="+", default=["ood", "multiplication"])
    p.add_argument("--schemes", nargs="+", default=list(SCHEMES))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=2, help="fresh processes per cell (min taken)")
    p.add_argument("--probe", nargs=2, metavar=("TASK", "SCHEME"), help=argparse.SUPPRESS)
    p.add_argument("--out", default=str(RESULTS / "xval_memory.json"))
    args = p.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(*args.probe, args.steps, args.batch, args.device)))
        return 0
    rows = []
    for task in args.tasks:
        for scheme in args.schemes:
            runs = []
            for _ in range(args.repeats):
                cmd = [sys.executable, __file__, "--probe", task, scheme]
                cmd += ["--steps", str(args.steps), "--batch", str(args.batch)]
                cmd += ["--device", args.device]
                res = subprocess.run(cmd, capture_output=True, text=True, check=True)
                runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
            best = min(runs, key=lambda r: r["training_mib"])
            for key in ("training_mib", "training_mib_warm"):
                best[key + "_all"] = [r.get(key) for r in runs]
            rows.append(best)
            print(
                f"{task} {scheme}: {best['training_mib']:.1f} MiB "
                f"(after warm-up {best.get('training_mib_warm', float('nan')):.1f})",
                flush=True,
            )
    info = run_info(argv=argv, note="peak RSS of a fresh process per encoding minus its RSS "
                    "before training; 2 cores shared with other work")  # fmt: skip
    body = "\n".join(f"- {r.get('task')} {r.get('scheme')}: {r['training_mib']:.1f} MiB"
                     for r in rows)  # fmt: skip
    out = Path(args.out)
    write_report(out.stem, {"rows": rows}, body, info=info, out_dir=out.parent,
                 title="xVal training memory, measured")  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
