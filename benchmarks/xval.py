"""xVal vs digit encodings trained to convergence (Golkar et al. 2023; issue 15), on a CPU.

Every (task, encoding, mode, seed) cell trains the same transformer ("small"
preset: 2 layers, d_model 64) with ``scifm.xval.converge``: constant learning
rate after warmup, a learning-curve point every 200 steps, stop when the
validation loss has not improved by 1 % over the last 20 % of the steps or at
4000 steps x 64 samples (10x the first benchmark's 400 x 64). Cells live under
``--root`` (checkpoint, ``curve.jsonl``, ``status.json``) and resume where they
stopped. ``report`` turns whatever has finished into ``results/xval.{json,md}``
and learning-curve plots; unfinished cells are marked so. ``restore`` writes the
cells a report stored (``curves`` and ``cells`` of ``results/xval.json``) back as
run directories when the runs are lost, so that a later ``report`` keeps them; a
restored unfinished cell has no checkpoint and ``run`` trains it again from step 0.

    python benchmarks/xval.py run --root runs/xval_conv --tasks ood multiplication --seeds 0
    python benchmarks/xval.py run ...                    # a second worker skips locked cells
    python benchmarks/xval.py deadzone                   # -> results/xval_deadzone.json
    python benchmarks/xval.py lengths                    # -> results/xval_lengths.json
    python benchmarks/xval.py report --root runs/xval_conv
    python benchmarks/xval.py restore --from benchmarks/results/xval.json --root runs/xval_conv
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from scifm.core.report import machine_line, run_info, write_report
from scifm.xval import SCHEMES, TaskConfig, get_tokenizer
from scifm.xval.converge import ConvergeConfig, Study, converge, lines_study, task_study
from scifm.xval.tabular import TABLES
from scifm.xval.train import model_config_for

RESULTS = Path(__file__).parent / "results"
NOTE = "2-core CPU shared with other jobs; 1 torch thread per run"
TASK_SETUP = {
    "ood": {"n_train": 20_000, "n_test": 300},
    "multiplication": {"n_train": 20_000, "n_test": 300},
    "compound": {"n_train": 20_000, "n_test": 300},
    "orbits": {"n_train": 10_000, "n_test": 200, "n_planets": (2, 2)},
}


def study_for(name: str, seed: int) -> Study:
    """A built-in task (``TASK_SETUP``) or a scikit-learn table (``tabular.TABLES``)."""
    if name in TABLES:
        from scifm.xval import tabular

        return lines_study(tabular.lines(name), fmt="jsonl", seed=seed, source=f"sklearn:{name}")
    return task_study(TaskConfig(task=name, **TASK_SETUP[name]), seed)


def model_for(study: Study, scheme: str, mode: str):
    """'small' preset with ``max_len`` = the longest text of any split (multiple of 32)."""
    lo, hi = study.spec.exp_range
    tok = get_tokenizer(scheme, exp_min=lo, exp_max=hi)
    texts = {s.text for part in (study.train, study.val, *study.tests.values()) for s in part}
    longest = max(len(tok.encode(t)) for t in texts) + 1  # + [EOS] in causal mode
    return model_config_for(study.spec, scheme, "small", mode=mode,
                            max_len=max(64, -(-longest // 32) * 32))  # fmt: skip


def converge_config(name: str, max_steps: int) -> ConvergeConfig:
    batch = 32 if name == "orbits" else 64  # orbit texts are ~5x longer
    return ConvergeConfig(max_steps=max_steps, batch_size=batch)


def cmd_run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    k, n = (int(x) for x in args.shard.split("/"))
    cells = [(t, s, m, seed) for m in args.modes for seed in args.seeds
             for t in args.tasks for s in args.schemes]  # fmt: skip
    studies: dict = {}
    for i, (task, scheme, mode, seed) in enumerate(cells):
        if i % n != k:
            continue
        out = Path(args.root) / cell_name(task, scheme, mode, seed)
        if (out / "status.json").exists() and json.loads((out / "status.json").read_text())["done"]:
            continue
        if not _lock(out):
            continue  # another worker is on this cell
        try:
            if (task, seed) not in studies:
                studies = {(task, seed): study_for(task, seed)}  # keep one study in memory
            study = studies[(task, seed)]
            cfg = model_for(study, scheme, mode)
            print(f"== {out.name} (max_len {cfg.max_len})", flush=True)
            status = converge(study, cfg, converge_config(task, args.max_steps), out, seed=seed,
                              device=args.device, log=lambda s: print(s, flush=True))  # fmt: skip
            print(f"== {out.name}: {status['reason']} at step {status['step']}", flush=True)
        finally:
            (out / "lock").unlink(missing_ok=True)
    return 0


def _lock(out: Path) -> bool:
    """Claim a cell for this process (``out/lock`` holds the pid; a dead owner's lock is taken)."""
    out.mkdir(parents=True, exist_ok=True)
    lock = out / "lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or 0), 0)
                return False  # the owner is alive
            except (ProcessLookupError, ValueError):
                lock.unlink(missing_ok=True)  # stale
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def cell_name(task: str, scheme: str, mode: str, seed: int) -> str:
    return f"{task}_{scheme}_{mode}_s{seed}"


def restore_cells(stored: dict, root: Path, source: str = "") -> dict[str, str]:
    """Write each cell of a stored report (its ``curves`` and ``cells``) back as the files
    ``report`` reads: ``curve.jsonl``, and ``status.json`` with ``done``, ``reason`` and
    ``tokens_per_sample``. A cell directory that exists already is left as it is. An
    unfinished cell gets ``done: false``: with no checkpoint, ``run`` restarts it from step 0.
    Returns {cell: what was done}."""
    states, done = stored["cells"], {}
    for group, runs in stored["curves"].items():
        task, mode = group.split("/")
        for key, curve in runs.items():
            scheme, seed = key.rsplit("_s", 1)
            name = cell_name(task, scheme, mode, int(seed))
            out = root / name
            if out.exists():
                done[name] = "kept (exists)"
                continue
            state = states.get(name, "")
            finished = state in ("plateau", "budget")
            row = stored["groups"][group]["rows"][scheme]
            last = curve[-1]
            status = {"done": finished, "seed": int(seed),
                      "restored": {"from": source, "stored_state": state,
                                   "note": "curve and state from a stored report; no checkpoint"
                                   + ("; tokens_per_sample is the encoding's first seed's"
                                      if finished else "")}}  # fmt: skip
            if finished:
                status |= {"reason": state, "step": last["step"], "tokens": last["tokens"],
                           "train_seconds": last.get("train_seconds"),
                           "tokens_per_sample": row.get("tokens_per_sample")}  # fmt: skip
            out.mkdir(parents=True)
            (out / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in curve))
            (out / "status.json").write_text(json.dumps(status, indent=1) + "\n")
            done[name] = "restored, " + (state if finished else f"{state}: reruns from step 0")
    return done


def cmd_restore(args: argparse.Namespace) -> int:
    stored = json.loads(Path(args.source).read_text())
    missing = {"curves", "cells", "groups"} - set(stored)
    if missing:
        raise SystemExit(f"--from {args.source}: no {sorted(missing)}; expected a report "
                         "written by `xval.py report` (results/xval.json)")  # fmt: skip
    for name, what in restore_cells(stored, Path(args.root), args.source).items():
        print(f"{name}: {what}")
    return 0


def cmd_deadzone(args: argparse.Namespace) -> int:
    """xVal on ood with and without the [NUM] bias: error where a value sits at the mean."""
    from scifm.core import TrainConfig
    from scifm.xval.evaluate import predict
    from scifm.xval.tasks import held_out
    from scifm.xval.train import fit

    torch.set_num_threads(1)
    task = TaskConfig(task="ood", n_train=20_000, n_test=1000)
    rows = {}
    for bias in (False, True):
        cfg = model_config_for(task, "xval", "small", max_len=64, num_bias=bias)
        tcfg = TrainConfig(steps=args.steps, lr=1e-3, warmup_steps=50, log_every=100,
                           progress=False)  # fmt: skip
        trained = fit(task, cfg, tcfg, batch_size=64, seed=0, device="cpu")
        test = held_out(task, 1000, 12345, "test", _train_samples(task))
        p = predict(trained, test)
        ops = np.array([[float(x) for x in s.text.split("=")[0].split("*")] for s in test])
        z = np.abs(trained.scaler.transform(ops.ravel(), ["operand"] * ops.size)).reshape(-1, 2)
        rel = np.abs(p.pred - p.true) / np.abs(p.true)
        near = z.min(1) < args.near
        rows["bias" if bias else "no_bias"] = {
            "num_bias": bias, "steps": args.steps,
            "median_rel_error_near_mean": float(np.median(rel[near])),
            "median_rel_error_elsewhere": float(np.median(rel[~near])),
            "n_near": int(near.sum()), "n_elsewhere": int((~near).sum()),
            "mse": float(np.mean((p.pred - p.true) ** 2)),
        }  # fmt: skip
        print(rows, flush=True)
    out = {"near": f"an operand within {args.near} scaled units of its training mean",
           "rows": rows}  # fmt: skip
    write_report("xval_deadzone", out, "```json\n" + json.dumps(rows, indent=1) + "\n```",
                 info=run_info(note=NOTE), title="xVal [NUM] dead zone ablation")  # fmt: skip
    return 0


def cmd_lengths(args: argparse.Namespace) -> int:
    """Mean tokens per training text of every encoding on every task (no training)."""
    rows = {}
    for name in (*TASK_SETUP, "diabetes"):
        study = study_for(name, 0)
        lo, hi = study.spec.exp_range
        texts = [s.text for s in study.train[: args.n]]
        rows[name] = {
            scheme: float(np.mean([len(get_tokenizer(scheme, exp_min=lo, exp_max=hi).encode(t))
                                   for t in texts]))
            for scheme in SCHEMES
        }  # fmt: skip
        print(name, rows[name], flush=True)
    out = {"n": args.n, "tokens_per_text": rows}
    write_report("xval_lengths", out, "```json\n" + json.dumps(rows, indent=1) + "\n```",
                 info=run_info(note=NOTE), title="Tokens per text of each encoding")  # fmt: skip
    return 0


def _train_samples(task: TaskConfig):
    from scifm.xval.tasks import generate

    return generate(task, task.n_train, 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train cells to convergence (resumable)")
    r.add_argument("--root", default="runs/xval_conv")
    r.add_argument("--tasks", nargs="+", default=["ood", "multiplication"],
                   choices=(*TASK_SETUP, *TABLES))  # fmt: skip
    r.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=SCHEMES)
    r.add_argument("--modes", nargs="+", default=["mlm"], choices=("mlm", "ar"))
    r.add_argument("--seeds", nargs="+", type=int, default=[0])
    r.add_argument("--max-steps", type=int, default=4000)
    r.add_argument("--shard", default="0/1", help="K/N: this worker runs cells i with i %% N == K")
    r.add_argument("--device", default="cpu")
    d = sub.add_parser("deadzone", help="the [NUM]-bias ablation")
    d.add_argument("--steps", type=int, default=1000)
    d.add_argument("--near", type=float, default=0.1)
    ln = sub.add_parser("lengths", help="tokens per text of each encoding on each task")
    ln.add_argument("--n", type=int, default=2000, help="training texts per task")
    rs = sub.add_parser("restore", help="write a stored report's cells back as run directories")
    rs.add_argument("--from", dest="source", default=str(RESULTS / "xval.json"))
    rs.add_argument("--root", default="runs/xval_conv")
    rep = sub.add_parser("report", help="write results/xval.{json,md} from the finished cells")
    rep.add_argument("--root", default="runs/xval_conv")
    rep.add_argument("--out", default=str(RESULTS / "xval"))
    args = p.parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "deadzone":
        return cmd_deadzone(args)
    if args.command == "lengths":
        return cmd_lengths(args)
    if args.command == "restore":
        return cmd_restore(args)
    info = run_info(argv=argv, note=NOTE)
    meta = {
        "run": info,
        "command": info["command"],
        "date": info["date_utc"],
        "machine": machine_line(info["machine"]) + "; 1 thread per run; GPU not measured",
        "model": "XvalConfig 'small' (2 layers, d_model 64, 4 heads, d_ffn 128, tied head, "
        "[NUM] bias)",
        "converge": ConvergeConfig().to_dict(),
    }
    sys.path.insert(0, str(Path(__file__).parent))
    import xval_report  # the report half of this benchmark

    return xval_report.write_report(Path(args.root), Path(args.out), meta)


if __name__ == "__main__":
    raise SystemExit(main())
