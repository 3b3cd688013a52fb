"""xVal vs digit encodings: the comparison of Golkar et al. (2023), small, on a CPU.

For every task, encoding and seed, trains the same transformer ("small" preset:
2 layers, d_model 64) under two budgets and evaluates on held-out samples:

- ``steps``: the same optimizer steps and batch size for every encoding;
- ``tokens``: the same number of training tokens as xVal sees in ``steps``
  (a digit scheme with k times longer sequences gets 1/k of the steps).

Writes ``benchmarks/results/xval.json`` and ``xval.md``.

    .venv/bin/python benchmarks/xval.py            # full (~35 minutes on the shared 2-core machine)
    .venv/bin/python benchmarks/xval.py --quick    # smoke run (~1 minute)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from scifm.core import TrainConfig
from scifm.core.report import run_info, write_report
from scifm.xval import SCHEMES, TaskConfig, collate, encode_sample, evaluate, generate
from scifm.xval.train import fit, model_config_for, training_memory_bytes

RESULTS = Path(__file__).parent / "results"
METRICS = ("mse", "r2", "exact", "outlier_rate", "invalid_rate", "median_rel_error")
TEST_SEED = 12345  # every run is evaluated on the same held-out samples
NOTE = "CPU, 1 torch thread, on a machine shared with other jobs"


def splits_of(task: str) -> tuple[str, ...]:
    return ("test", "interp", "extrap") if task in ("ood", "orbits") else ("test",)


def run_one(task: TaskConfig, scheme: str, steps: int, seed: int, args: argparse.Namespace) -> dict:
    max_len = 256 if task.task == "orbits" else 64
    cfg = model_config_for(task, scheme, "small", max_len=max_len)
    tcfg = TrainConfig(
        steps=steps, lr=args.lr, warmup_steps=min(50, steps // 10), log_every=max(steps // 5, 1),
        seed=seed, progress=False,
    )  # fmt: skip
    t0 = time.perf_counter()
    trained = fit(task, cfg, tcfg, batch_size=args.batch, seed=seed, device="cpu")
    wall = time.perf_counter() - t0
    sample_batch = collate(
        [encode_sample(s, cfg.tokenizer, trained.scaler, cfg.mode)
         for s in generate(task, args.batch, seed)]
    )  # fmt: skip
    print(f"  {task.task} {scheme} seed {seed} steps {steps}: {wall:.0f} s", flush=True)
    out = {
        "steps": steps,
        "tokens_per_sample": trained.info["tokens_per_sample"],
        "samples_per_s": trained.info["samples_per_s"],
        "train_seconds": wall,
        "peak_memory_mb": training_memory_bytes(trained.model, sample_batch) / 2**20,
        "n_params": trained.info["n_params"],
        "vocab_size": cfg.vocab_size,
        "splits": {},
    }
    for split in splits_of(task.task):
        out["splits"][split] = evaluate(trained, generate(task, task.n_test, TEST_SEED, split))
    return out


def aggregate(runs: list[dict]) -> dict:
    agg: dict = {
        k: float(np.mean([r[k] for r in runs]))
        for k in ("steps", "tokens_per_sample", "samples_per_s", "train_seconds", "peak_memory_mb")
    }
    agg["n_params"], agg["vocab_size"] = runs[0]["n_params"], runs[0]["vocab_size"]
    agg["splits"] = {}
    for split in runs[0]["splits"]:
        agg["splits"][split] = {}
        for m in METRICS:
            vals = np.array([r["splits"][split][m] for r in runs], dtype=float)
            agg["splits"][split][m] = float(np.nanmean(vals)) if np.isfinite(vals).any() else None
            agg["splits"][split][m + "_std"] = (
                float(np.nanstd(vals)) if np.isfinite(vals).any() else None
            )
    return agg


def fmt(v: float | None, kind: str) -> str:
    if v is None:
        return "n/a"
    if kind in ("exact", "outlier_rate", "invalid_rate"):
        return f"{100 * v:.1f}%"
    if kind == "r2":
        return f"{v:.3f}" if abs(v) < 1e4 else f"{v:.2e}"
    return f"{v:.3g}"


def row(scheme: str, budget: str, a: dict, s: dict) -> str:
    cells = [
        scheme, budget, f"{a['steps']:.0f}",
        f"{fmt(s['mse'], 'mse')} ± {fmt(s['mse_std'], 'mse')}", fmt(s["r2"], "r2"),
        fmt(s["exact"], "exact"), fmt(s["outlier_rate"], "outlier_rate"),
        fmt(s["invalid_rate"], "invalid_rate"), f"{a['tokens_per_sample']:.1f}",
        f"{a['samples_per_s']:.0f}", f"{a['peak_memory_mb']:.1f}",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        f"Model: {meta['model']}; batch {meta['batch']}, lr {meta['lr']}, seeds {meta['seeds']}, "
        f"{meta['n_train']} training / {meta['n_test']} test samples per task.  ",
        "Budgets: `steps` = same optimizer steps for all; "
        "`tokens` = same training tokens as xVal.  ",
        f"Outlier: invalid, or |error| > {meta['outlier_threshold']}. "
        "Exact: equal at 3 significant digits. MSE/R^2 over valid predictions (raw values). "
        "Mean over seeds (± std for MSE).",
        "",
    ]
    for task, per in result["tasks"].items():
        st = meta.get("per_task", {}).get(task, {})
        for split in splits_of(task):
            lines += [
                f"## {task} / {split}",
                "",
                f"Budget `steps`: {st.get('steps', '?')} steps of batch {st.get('batch', '?')}, "
                f"{st.get('seeds', '?')} seeds, {st.get('n_train', '?')} training samples.",
                "",
                "| encoding | budget | steps | MSE | R^2 | exact | outliers | invalid "
                "| tokens/sample | samples/s | peak mem (MB) |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
            ]
            for scheme, budgets in per.items():
                for budget, a in budgets.items():
                    lines.append(row(scheme, budget, a, a["splits"][split]))
            lines.append("")
    return "\n".join(lines) + "\n"


def write(result: dict, out: Path) -> None:
    json_path, md_path = write_report(
        out.name, result, markdown(result), info=result["run"], out_dir=out.parent,
        title="xVal vs digit encodings (CPU benchmark)",
    )  # fmt: skip
    print(f"wrote {json_path} and {md_path}", flush=True)


def _data(tasks: list[str], n_train: int | str, n_test: int | str) -> dict[str, str]:
    return {
        "tasks": f"{', '.join(tasks)}: generated by scifm.xval.tasks.generate",
        "split": f"{n_train} training samples (seed = run seed) / {n_test} held-out samples "
        f"(seed {TEST_SEED}) per task",
    }


def merge(paths: list[str], out: Path, argv: list[str] | None) -> int:
    """Join the task results of several runs (e.g. tasks run in parallel processes)."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    result = {"meta": dict(parts[0]["meta"]), "tasks": {}}
    commands = [p["run"]["command"] if "run" in p else p["meta"]["command"] for p in parts]
    result["meta"]["merged_commands"] = commands
    result["meta"]["merged_from"] = [str(p) for p in paths]
    result["meta"]["per_task"] = {}
    for p in parts:
        result["tasks"].update(p["tasks"])
        for task in p["tasks"]:
            m = p["meta"]
            default = {k: m[k] for k in ("steps", "batch", "n_train", "n_test")}
            default["seeds"] = len(m["seeds"])
            result["meta"]["per_task"][task] = m.get("per_task", {}).get(task, default)
    data = _data(list(result["tasks"]), "per task (each section)", "per task")
    data["merged"] = " + ".join(f"`{c}`" for c in commands)
    result["run"] = run_info(argv=argv, data=data, note=NOTE)
    write(result, out)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--tasks", nargs="+", default=["multiplication", "compound", "ood", "orbits"])
    p.add_argument("--schemes", nargs="+", default=list(SCHEMES))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--n-train", type=int, default=20_000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--out", default=str(RESULTS / "xval"))
    p.add_argument("--merge", nargs="+", default=None, help="JSON results to join into --out")
    args = p.parse_args(argv)
    if args.merge:
        return merge(args.merge, Path(args.out), argv)
    if args.quick:
        args.steps, args.seeds, args.n_train, args.n_test = 30, 1, 256, 64
        args.tasks = [t for t in args.tasks if t in ("multiplication", "ood")]
    torch.set_num_threads(1)
    result: dict = {
        "run": run_info(argv=argv, data=_data(args.tasks, args.n_train, args.n_test), note=NOTE),
        "meta": {
            "model": "XvalConfig 'small' (2 layers, d_model 64, 4 heads, d_ffn 128, tied head)",
            "batch": args.batch, "lr": args.lr, "seeds": list(range(args.seeds)),
            "steps": args.steps, "n_train": args.n_train, "n_test": args.n_test,
            "outlier_threshold": "10% of |true|",
        },
        "tasks": {},
    }  # fmt: skip
    for task_name in args.tasks:
        task = TaskConfig(task=task_name, n_train=args.n_train, n_test=args.n_test)
        if task_name == "orbits":  # two planets keep P10 sequences (~95 tokens) CPU-sized
            task = task.replace(n_planets=(2, 2))
        per: dict = {}
        xval_tokens = None
        for scheme in ["xval", *[s for s in args.schemes if s != "xval"]]:
            if scheme not in args.schemes and scheme != "xval":
                continue
            runs = [run_one(task, scheme, args.steps, seed, args) for seed in range(args.seeds)]
            per[scheme] = {"steps": aggregate(runs)}
            per[scheme]["steps"]["per_seed"] = runs
            if scheme == "xval":
                xval_tokens = runs[0]["tokens_per_sample"]
            else:
                k = max(1, round(args.steps * xval_tokens / runs[0]["tokens_per_sample"]))
                if k == args.steps:  # as many tokens as xVal already (fp15): same runs
                    per[scheme]["tokens"] = per[scheme]["steps"]
                else:
                    runs_t = [run_one(task, scheme, k, seed, args) for seed in range(args.seeds)]
                    per[scheme]["tokens"] = aggregate(runs_t)
                    per[scheme]["tokens"]["per_seed"] = runs_t
            print(
                f"{task_name} {scheme}: " + json.dumps(per[scheme]["steps"]["splits"]), flush=True
            )
        result["tasks"][task_name] = per
        result["meta"].setdefault("per_task", {})[task_name] = {
            "steps": args.steps, "batch": args.batch, "seeds": args.seeds,
            "n_train": args.n_train, "n_test": args.n_test, "task": task.to_dict(),
        }  # fmt: skip
        write(result, Path(args.out))  # after every task, so a cut-short run keeps its results
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
