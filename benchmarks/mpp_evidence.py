"""MPP evidence at 64^2 (issue 13): transfer to a held-out system, and long rollouts.

Reads the files of ``scripts/mpp_data.sh`` (PDEBench layout, our solvers) and a checkpoint of
``scripts/mpp_pretrain.sh`` (pretrained WITHOUT compressible NS)::

    # transfer: fine-tune on N in {1,2,4,8,16,32} CNS (M=0.1) trajectories, pretrained vs
    # a scratch model of the same size, the same steps, data order and learning rate
    python benchmarks/mpp_evidence.py transfer --ckpt runs/mpp64_pretrain/checkpoint
    # one-step NRMSE per system on the 21-frame held-out test files, against persistence
    python benchmarks/mpp_evidence.py onestep --ckpt runs/mpp64_pretrain/checkpoint
    # 50-step rollouts on the long held-out trajectories, against persistence
    python benchmarks/mpp_evidence.py rollout --ckpt runs/mpp64_pretrain/checkpoint
    # item 1's baselines: a single-task AViT (the same preset, recipe and code path as the
    # pretraining, one system's files) and an FNO (neuraloperator) per pretraining system, each
    # at the pretrained model's budget (its steps x batch, on the same LR schedule), evaluated
    # like ``onestep`` at every milestone
    python benchmarks/mpp_evidence.py baselines --ckpt runs/mpp64_evidence/pretrained_step3200
    # gather every finished cell into benchmarks/results/mpp_evidence.{json,md}
    python benchmarks/mpp_evidence.py report

Each (init, N, seed) cell and each rollout writes its own JSON under ``--root`` (default
``runs/mpp64_evidence``) and is skipped when present, so an interrupted study resumes where
it stopped. One thread (``OMP_NUM_THREADS=1``) unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from scifm.core import TrainConfig, load_checkpoint
from scifm.core.report import repo_path, run_info, write_report
from scifm.core.rng import seeded
from scifm.mpp.baselines import FNOBaseline, FNOConfig
from scifm.mpp.config import AViTConfig
from scifm.mpp.data import file_datasets, system_info
from scifm.mpp.evaluate import one_step_nrmse, rollout_nrmse
from scifm.mpp.experiment import finetune, load_surrogate
from scifm.mpp.recipe import TrainRecipe
from scifm.mpp.train import fit
from scifm.mpp.model import AViT
from scifm.mpp.rollout import model_step, persistence_step
from scifm.pde.files import read_any
from scifm.pde.filewindows import find_files

ROOT = Path(__file__).resolve().parents[1]
FNO_PRESET = "paper"  # PDEBench's FNO (12 modes, width 20, 4 layers): the issue-13 baseline
PAPER_TRANSFER = (
    "McCabe et al. (arXiv:2310.02994) Fig. 4: fine-tuned from MPP, the NRMSE on CNS with a "
    "few trajectories is well below training from scratch (e.g. MPP-B at N=100 is below "
    "scratch with N=800); the issue's goal here: pretrained <= 0.67 x scratch"
)


def load_fields(folder: Path, limit: int | None = None) -> torch.Tensor:
    """All trajectories (N, F, C, H, W) of a folder of PDEBench/Well files, in file order."""
    parts, have = [], 0
    for p in find_files([str(folder)]):
        if limit is not None and have >= limit:
            break
        t = read_any(p, limit=None if limit is None else limit - have)
        parts.append(t.fields.float())
        have += t.fields.shape[0]
    if not parts:
        raise FileNotFoundError(f"{folder}: no PDEBench or Well files")
    return torch.cat(parts)


def _cell_path(root: Path, *parts) -> Path:
    return root / "_".join(str(p) for p in parts) / "result.json"


def _write_cell(out: Path, rec: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec, indent=1))


def _read_cells(root: Path, pattern: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.glob(pattern))]


def _pretrained(args: argparse.Namespace) -> tuple[AViT, dict, int | None]:
    """The checkpoint's surrogate (eval mode), its systems and its training step."""
    torch.set_num_threads(args.threads)
    model, systems = load_surrogate(args.ckpt)
    model.eval()
    step_no = (load_checkpoint(args.ckpt).get("trainer_state") or {}).get("step")
    return model, systems, step_no


def transfer(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    root = Path(args.root)
    pre_cfg = AViTConfig(**load_checkpoint(args.ckpt)["record"]["config"])
    pool = load_fields(Path(args.data) / "train" / args.variant, limit=max(args.ns))
    test_files = [f"{args.variant}={Path(args.data) / 'test' / args.variant}"]
    for seed in args.seeds:
        # N trajectories drawn once per seed; the smaller sets are prefixes of the larger
        order = torch.randperm(pool.shape[0], generator=torch.Generator().manual_seed(seed))
        for n in args.ns:
            for init in ("pretrained", "scratch"):
                out = _cell_path(root, args.variant, init, f"n{n}", f"s{seed}")
                if out.exists():
                    continue
                if init == "pretrained":
                    model, systems = load_surrogate(args.ckpt)
                else:
                    with seeded(seed):  # the fresh model's init only
                        model, systems = AViT(pre_cfg), {}
                cfg = TrainConfig(
                    steps=args.steps, lr=args.lr, warmup_steps=max(1, args.steps // 10),
                    log_every=max(1, args.steps // 10), progress=False, seed=seed,
                )  # fmt: skip
                t0 = time.perf_counter()
                model, result, systems = finetune(
                    model, args.variant, pool[order[:n]], cfg, batch_size=args.batch_size,
                    data_seed=seed, device="cpu", systems=systems,
                )  # fmt: skip
                seconds = time.perf_counter() - t0
                model.eval()
                info = systems[args.variant]
                test = file_datasets(test_files, n_frames=model.config.n_frames,
                                     systems=systems)[args.variant]  # fmt: skip
                step = model_step(model, info["field_index"], info["periodic"])
                rec = {
                    "variant": args.variant, "init": init, "n_traj": n, "seed": seed,
                    "ckpt": repo_path(args.ckpt),
                    "steps": args.steps, "lr": args.lr, "batch_size": args.batch_size,
                    "train_seconds": round(seconds, 1),
                    "final_loss": result.history[-1].get("loss") if result.history else None,
                    "test_windows": len(test),
                    "one_step_nrmse": one_step_nrmse(step, test),
                    "persistence_nrmse": one_step_nrmse(persistence_step, test),
                }  # fmt: skip
                _write_cell(out, rec)
                print(json.dumps(rec), flush=True)
    return 0


def rollout(args: argparse.Namespace) -> int:
    root = Path(args.root)
    model, systems, step_no = _pretrained(args)
    T = model.config.n_frames
    for folder in sorted((Path(args.data) / "test_long").iterdir()):
        name = folder.name
        out = _cell_path(root, "rollout", name, f"step{step_no}")
        if out.exists() or not folder.is_dir():
            continue
        if not any(folder.glob("*.h*5")):
            print(f"{folder}: no files yet (still generating?); skipped", flush=True)
            continue
        info = systems.get(name, system_info(name))
        fields = load_fields(folder)
        n_steps = min(args.steps, fields.shape[1] - T)
        t0 = time.perf_counter()
        step = model_step(model, info["field_index"], info["periodic"])
        ours = rollout_nrmse(step, fields, T, n_steps)
        seconds = time.perf_counter() - t0
        pers = rollout_nrmse(persistence_step, fields, T, n_steps)
        rec = {
            "variant": name, "ckpt_step": step_no, "trained_on": name in systems,
            "n_traj": int(fields.shape[0]), "context": T, "steps": n_steps,
            "seconds": round(seconds, 1),
            "avit": [round(float(v), 5) for v in ours],
            "persistence": [round(float(v), 5) for v in pers],
        }  # fmt: skip
        _write_cell(out, rec)
        print(name, "avit", rec["avit"][:: max(1, n_steps // 5)], "persistence",
              rec["persistence"][:: max(1, n_steps // 5)], flush=True)  # fmt: skip
    return 0


def onestep(args: argparse.Namespace) -> int:
    """One-step NRMSE on every held-out 21-frame test folder, against persistence."""
    root = Path(args.root)
    model, systems, step_no = _pretrained(args)
    for folder in sorted((Path(args.data) / "test").iterdir()):
        name = folder.name
        out = _cell_path(root, "onestep", name, f"step{step_no}")
        if out.exists() or not any(folder.glob("*.h*5")):
            continue
        info = systems.get(name, system_info(name))
        test = file_datasets([f"{name}={folder}"], n_frames=model.config.n_frames,
                             systems={**systems, name: info})[name]  # fmt: skip
        step = model_step(model, info["field_index"], info["periodic"])
        rec = {
            "variant": name, "ckpt_step": step_no, "trained_on": name in systems,
            "windows": len(test), "avit": one_step_nrmse(step, test),
            "persistence": one_step_nrmse(persistence_step, test),
        }  # fmt: skip
        _write_cell(out, rec)
        print(json.dumps(rec), flush=True)
    return 0


def _baseline_model(arch: str, pre: dict, info: dict) -> torch.nn.Module:
    """A fresh single-system model: the pretrained AViT's preset, or an FNO for its fields."""
    cfg = AViTConfig(**pre["config"])
    if arch == "avit":
        return AViT(cfg)
    return FNOBaseline(FNOConfig.preset(FNO_PRESET, n_fields=len(info["fields"]),
                                        n_frames=cfg.n_frames))  # fmt: skip


def baselines(args: argparse.Namespace) -> int:
    """Item 1: single-task AViT and FNO per pretraining system at the pretrained budget.

    Budget = the pretrained checkpoint's optimizer steps x batch (its recorded batch size),
    on its LR schedule (``TrainConfig.stop_at`` cuts the same long schedule at each
    milestone), with its stability recipe. Each model trains in ``root/baseline_ARCH_SYS``
    (resumable from its checkpoint) and writes one cell per milestone.
    """
    torch.set_num_threads(args.threads)
    root = Path(args.root)
    pre = load_checkpoint(args.ckpt)
    record, extra = pre["record"], pre["record"]["extra"]
    pre_step = (pre.get("trainer_state") or {}).get("step")
    milestones = sorted(set(args.milestones or [pre_step]))
    if not milestones or milestones[0] is None:
        raise ValueError(f"{args.ckpt}: no trainer step recorded; pass --milestones")
    train_cfg = TrainConfig(**{**extra["train"], "betas": tuple(extra["train"]["betas"]),
                               "progress": False})  # fmt: skip
    if milestones[-1] > train_cfg.steps:
        raise ValueError(f"--milestones {milestones}: beyond the schedule's {train_cfg.steps} steps")
    recipe = TrainRecipe(**extra["recipe"]) if extra.get("recipe") else None
    res, frames = extra["data"]["res"], extra["data"]["sim_frames"]
    T = AViTConfig(**record["config"]).n_frames
    for name in args.systems or sorted(extra["systems"]):
        info = system_info(name)
        files = [f"{name}={Path(args.data) / 'train' / name}"]
        test_dir = Path(args.data) / "test" / name
        test = file_datasets([f"{name}={test_dir}"], n_frames=T,
                             systems={name: info})[name]  # fmt: skip
        for arch in args.archs:
            run_dir = root / f"baseline_{arch}_{name}"
            for stop in milestones:
                out = _cell_path(root, "baseline", arch, name, f"step{stop}")
                if out.exists():
                    continue
                data = file_datasets(files, n_frames=T, res=res, frames=frames)
                model = _baseline_model(arch, record, info)
                t0 = time.perf_counter()
                fit(model, data, replace(train_cfg, stop_at=stop),
                    batch_size=extra["batch_size"], data_seed=extra["data"]["seed"],
                    device="cpu", out_dir=run_dir, recipe=recipe,
                    extra={"baseline_of": repo_path(args.ckpt), "system": name})  # fmt: skip
                model.eval()
                step = model_step(model, info["field_index"], info["periodic"])
                rec = {
                    "variant": name, "arch": arch, "step": stop,
                    "batch_size": extra["batch_size"],
                    "samples": stop * extra["batch_size"],
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "baseline_of": repo_path(args.ckpt),
                    "seconds_this_call": round(time.perf_counter() - t0, 1),
                    "windows": len(test), "nrmse": one_step_nrmse(step, test),
                    "persistence": one_step_nrmse(persistence_step, test),
                }  # fmt: skip
                _write_cell(out, rec)
                print(json.dumps(rec), flush=True)
    return 0


def _curve(root: Path, ckpt_dir: Path) -> list[dict]:
    path = ckpt_dir.parent / "metrics.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_step = {r["step"]: r for r in rows if "step" in r}  # a resumed run repeats steps
    return [by_step[s] for s in sorted(by_step)]


def report(args: argparse.Namespace) -> int:
    root = Path(args.root)
    cells = _read_cells(root, "cns*/result.json")
    rolls = _read_cells(root, "rollout_*/result.json")
    ones = _read_cells(root, "onestep_*/result.json")
    bases = _read_cells(root, "baseline_*_step*/result.json")
    # per (variant, N): the seeds with both a pretrained and a scratch cell (paired means)
    by: dict[tuple, dict[int, dict[str, float]]] = {}
    for c in cells:
        by.setdefault((c["variant"], c["n_traj"]), {}).setdefault(c["seed"], {})[c["init"]] = c[
            "one_step_nrmse"
        ]
    rows = []
    for (variant, n), seeds in sorted(by.items()):
        both = [v for v in seeds.values() if "pretrained" in v and "scratch" in v]
        pre = [v["pretrained"] for v in both]
        scr = [v["scratch"] for v in both]
        row = {"variant": variant, "n_traj": n, "seeds": len(both),
               "pretrained": float(np.mean(pre)) if both else None,
               "scratch": float(np.mean(scr)) if both else None,
               "pretrained_std": float(np.std(pre)) if both else None,
               "scratch_std": float(np.std(scr)) if both else None}  # fmt: skip
        if both:
            row["ratio"] = row["pretrained"] / row["scratch"]
            row["meets_0.67"] = bool(row["ratio"] <= 0.67)
        rows.append(row)
    latest, latest_one = _latest(rolls), _latest(ones)
    curve = _curve(root, Path(args.ckpt))
    result = {
        "paper": PAPER_TRANSFER,
        "transfer": rows,
        "transfer_cells": cells,
        "rollouts": list(latest.values()),
        "one_step": list(latest_one.values()),
        "baselines": bases,
        "pretrain_curve": [
            {k: r[k] for k in ("step", "loss", "nrmse", "lr") if k in r} for r in curve[::4]
        ],
    }
    info = run_info(
        data={"files": repo_path(args.data) + " (scripts/mpp_data.sh)",
              "checkpoint": repo_path(args.ckpt) + " (scripts/mpp_pretrain.sh)"},
        note="64^2 grids, 8x8 patches (64 tokens a frame), AViT 'small'; 2 CPU cores shared "
             "with other jobs, so seconds are noisy",
    )  # fmt: skip
    md = [
        f"Checkpoint `{args.ckpt}`; every figure from `benchmarks/mpp_evidence.py`. "
        "Scale is far below the paper (128^2, 7-400M parameters, 200k GPU steps): read trends.",
        "",
        "## Transfer to compressible NS (held out of pretraining)",
        "",
        PAPER_TRANSFER + ".",
        "",
        "| variant | N traj | seeds | pretrained NRMSE (mean ± std) | scratch | ratio | <= 0.67 |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['variant']} | {r['n_traj']} | {r['seeds']} | {_pm(r, 'pretrained')} | "
            f"{_pm(r, 'scratch')} | {_f(r.get('ratio'))} | {r.get('meets_0.67', 'n/a')} |"
        )
    if cells:
        c = cells[0]
        md += [
            "",
            f"Fine-tuning: {c['steps']} AdamW steps, lr {c['lr']}, batch {c['batch_size']}, "
            "all weights, from "
            + ", ".join(f"`{k}`" for k in sorted({c.get("ckpt", "?") for c in cells}))
            + " (the pretrained init); one-step NRMSE on the held-out test files "
            f"({c['test_windows']} windows); persistence: {_f(c['persistence_nrmse'])}.",
        ]
    md += ["", "## One-step NRMSE on the held-out test trajectories (goal: <= 0.5x persistence)",
           ""]  # fmt: skip
    if latest_one:
        md += ["| variant | in pretraining | checkpoint step | AViT | persistence | ratio |",
               "|---|---|---:|---:|---:|---:|"]  # fmt: skip
        for r in latest_one.values():
            md.append(f"| {r['variant']} | {r['trained_on']} | {r['ckpt_step']} | "
                      f"{_f(r['avit'])} | {_f(r['persistence'])} | "
                      f"{_f(r['avit'] / r['persistence'])} |")  # fmt: skip
    md += _baseline_table(bases, latest_one)
    md += ["", "## Rollouts on the long held-out trajectories (NRMSE at step k)", ""]
    if latest:
        ks = [1, 5, 10, 20, 30, 50]
        md.append("| variant | in pretraining | " + " | ".join(f"k={k}" for k in ks) + " |")
        md.append("|---|---|" + "---:|" * len(ks))
        for r in latest.values():
            for who in ("avit", "persistence"):
                vals = [_f(r[who][k - 1]) if k <= len(r[who]) else "" for k in ks]
                md.append(
                    f"| {r['variant']} ({who}) | {r['trained_on']} | " + " | ".join(vals) + " |"
                )
    write_report("mpp_evidence", result, "\n".join(md) + "\n", info=info,
                 title="MPP evidence at 64^2 (issue 13)", out_dir=args.out)  # fmt: skip
    return 0


def _baseline_table(bases: list[dict], pretrained: dict[str, dict]) -> list[str]:
    """Item 1's comparison: the pretrained AViT against single-task models per system."""
    if not bases:
        return []
    steps = sorted({b["step"] for b in bases})
    cols = [(a, k) for a in ("avit", "fno") for k in steps]
    names = {"avit": "single-task AViT", "fno": "FNO"}
    md = ["", "### Against single-task models at equal budget (one seed)", "",
          "Each baseline trains on its one system with the pretraining's recipe, batch and LR "
          "schedule (`baselines`), cut at each step shown; at the pretrained model's step it "
          "has seen as many samples as the pretrained model saw over all its systems (the "
          "issue's equal budget), at a third of it as many as the pretrained model saw of "
          "that system. NRMSE on the same held-out test files; - = not run yet.", "",
          "| variant | MPP pretrained (step) | "
          + " | ".join(f"{names[a]} @ {k}" for a, k in cols) + " | persistence |",
          "|---|---:|" + "---:|" * len(cols) + "---:|"]  # fmt: skip
    by = {(b["variant"], b["arch"], b["step"]): b for b in bases}
    for v in sorted({b["variant"] for b in bases}):
        pre = pretrained.get(v)
        cells = [_f(by[(v, a, k)]["nrmse"]) if (v, a, k) in by else "-" for a, k in cols]
        pers = next(b["persistence"] for b in bases if b["variant"] == v)
        pre_s = f"{_f(pre['avit'])} ({pre['ckpt_step']})" if pre else "-"
        md.append(f"| {v} | {pre_s} | " + " | ".join(cells) + f" | {_f(pers)} |")
    par = {b["arch"]: b["parameters"] for b in bases}
    md += ["", "Parameters: " + ", ".join(f"{names[a]} {n:,}" for a, n in sorted(par.items()))
           + f"; FNO preset `{FNO_PRESET}` (`scifm.mpp.baselines`)."]  # fmt: skip
    return md


def _latest(records: list[dict]) -> dict[str, dict]:
    """The record of the latest checkpoint step per variant."""
    out: dict[str, dict] = {}
    for r in records:
        if r["variant"] not in out or (r["ckpt_step"] or 0) > (out[r["variant"]]["ckpt_step"] or 0):
            out[r["variant"]] = r
    return out


def _pm(row: dict, key: str) -> str:
    if row[key] is None:
        return ""
    return f"{row[key]:.4f} ± {row[key + '_std']:.4f}" if row["seeds"] > 1 else _f(row[key])


def _f(v) -> str:
    return "" if v is None else f"{v:.4f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["transfer", "onestep", "rollout", "baselines", "report"])
    ap.add_argument("--ckpt", default=str(ROOT / "runs" / "mpp64_pretrain" / "checkpoint"))
    ap.add_argument("--data", default=str(ROOT / "data" / "mpp64"))
    ap.add_argument("--root", default=str(ROOT / "runs" / "mpp64_evidence"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--variant", default="cns_m0.1")
    ap.add_argument("--ns", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=300, help="fine-tuning steps (transfer)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--systems", nargs="+", default=None, help="baselines: default the ckpt's")
    ap.add_argument("--archs", nargs="+", default=["fno", "avit"], choices=["fno", "avit"])
    ap.add_argument("--milestones", type=int, nargs="+", default=None,
                    help="baselines: steps to evaluate at (default: the ckpt's step)")
    args = ap.parse_args()
    if args.what == "rollout":
        args.steps = 50 if args.steps == 300 else args.steps
    run = {"transfer": transfer, "onestep": onestep, "rollout": rollout, "baselines": baselines,
           "report": report}  # fmt: skip
    return run[args.what](args)


if __name__ == "__main__":
    raise SystemExit(main())
