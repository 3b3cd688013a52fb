"""The report half of ``benchmarks/xval.py``: run directories -> results/xval.{json,md} + plots.

Reads every cell ``<task>_<scheme>_<mode>_s<seed>`` under the runs root (its
``curve.jsonl`` and, once finished, ``status.json``) and reports each task/mode at
four points of the learning curves: 400 steps (the first benchmark's budget),
equal steps (the most steps every still-running cell of the group has reached),
equal training tokens (likewise; each cell's last point at or below it) and
convergence (finished cells only: the curve point of least validation loss, so a
noisy last point does not decide -- selection on validation, never on test). A cell
that has converged earlier stays at its last point; the tables print the steps and
tokens each row really has. Metrics are those of
``scifm.xval.evaluate.metrics``: R^2 over all test samples with the training mean
standing in for invalid answers, the valid-only R^2 beside it, invalid rate,
exact match and outliers. The paper's findings get a verdict from these tables.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from scifm.core.report import run_info
from scifm.core.report import write_report as write_results

SCHEMES = ("xval", "p10", "p1000", "b1999", "fp15")
CELL = re.compile(
    r"^(?P<task>.+)_(?P<scheme>xval|p10|p1000|b1999|fp15)_(?P<mode>mlm|ar)_s(?P<seed>\d+)$"
)
RESULTS = Path(__file__).parent / "results"
COLS = ("r2", "r2_valid", "invalid_rate", "exact", "outlier_rate")

TITLE = "xVal vs digit encodings at convergence (CPU)"


def load_cells(root: Path) -> list[dict]:
    cells = []
    for d in sorted(root.iterdir()) if root.exists() else []:
        m = CELL.match(d.name)
        if not m or not (d / "curve.jsonl").exists():
            continue
        curve = [json.loads(x) for x in (d / "curve.jsonl").read_text().splitlines() if x]
        status = json.loads((d / "status.json").read_text()) if (d / "status.json").exists() else {}
        if curve:
            cells.append({**m.groupdict(), "seed": int(m["seed"]), "curve": curve,
                          "status": status, "done": bool(status.get("done"))})  # fmt: skip
    return cells


def _at(cell: dict, point: str, limit: float | None) -> dict | None:
    """The curve point of ``cell`` at ``point``; a converged cell keeps its last point."""
    curve = cell["curve"]
    if point == "converged":  # the point of least validation loss (selected on validation)
        return min(curve, key=lambda r: r["val_loss"]) if cell["done"] else None
    if point == "step400":
        return next((r for r in curve if r["step"] == 400), None)
    key = "step" if point == "steps" else "tokens"
    below = [r for r in curve if r[key] <= limit]
    if cell["done"] or (below and below[-1][key] == limit) or point == "tokens":
        return below[-1] if below else None
    return None


def group_table(cells: list[dict], splits: list[str]) -> dict:
    """{scheme: {point: {"step", "tokens", "n_seeds", split.metric: (mean, std)}}}."""
    # the common window: as far as every still-running cell has come (a converged
    # cell stays at its last point, the tables show its actual steps and tokens)
    running = [c for c in cells if not c["done"]] or cells
    s_lim = min(c["curve"][-1]["step"] for c in running)
    t_lim = min(c["curve"][-1]["tokens"] for c in running)
    out: dict = {"equal_steps": s_lim, "equal_tokens": t_lim, "rows": {}}
    for scheme in SCHEMES:
        mine = [c for c in cells if c["scheme"] == scheme]
        if not mine:
            continue
        rows = {}
        for point, lim in (("step400", None), ("steps", s_lim), ("tokens", t_lim),
                           ("converged", None)):  # fmt: skip
            pts = [p for p in (_at(c, point, lim) for c in mine) if p is not None]
            if not pts:
                unfinished = [c["curve"][-1]["step"] for c in mine if not c["done"]]
                if point == "converged" or (point == "step400" and unfinished):
                    why = f"unfinished (step {max(unfinished)})"
                else:
                    why = "no curve point at or below the limit"
                rows[point] = {"missing": why}
                continue
            row = {"n_seeds": len(pts), "step": float(np.mean([p["step"] for p in pts])),
                   "tokens": float(np.mean([p["tokens"] for p in pts])),
                   "val_loss": float(np.mean([p["val_loss"] for p in pts]))}  # fmt: skip
            if point == "converged":
                row["reasons"] = sorted({c["status"]["reason"] for c in mine if c["done"]})
            for split in splits:
                for k in COLS:
                    v = np.array([p.get(f"{split}.{k}", np.nan) for p in pts], dtype=float)
                    ok = np.isfinite(v)
                    row[f"{split}.{k}"] = (
                        [float(v[ok].mean()), float(v[ok].std())] if ok.any() else None
                    )
            rows[point] = row
        st = [c["status"] for c in mine if c["done"]]
        rows["tokens_per_sample"] = st[0]["tokens_per_sample"] if st else None
        rows["seeds"] = sorted(c["seed"] for c in mine)
        out["rows"][scheme] = rows
    return out


def _f(v, pct: bool = False) -> str:
    if v is None:
        return "n/a"
    m, s = v
    if pct:
        return f"{100 * m:.1f}%"
    body = f"{m:.3f}" if abs(m) < 1e3 else f"{m:.2e}"
    return body + (f" ± {s:.3f}" if s and abs(s) < 1e3 else f" ± {s:.1e}" if s else "")


POINT_NAMES = {"step400": "400 steps", "steps": "equal steps", "tokens": "equal tokens",
               "converged": "convergence"}  # fmt: skip


def markdown_group(task: str, mode: str, g: dict, split: str) -> list[str]:
    lines = [
        f"### {task} / {mode} / {split}", "",
        f"Equal steps = {g['equal_steps']}; equal tokens = {g['equal_tokens'] / 1e6:.2f} M.", "",
        "| encoding | point | steps | tokens (M) | R² all | R² valid | invalid | exact | outliers "
        "| val loss |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for scheme, rows in g["rows"].items():
        for point, name in POINT_NAMES.items():
            r = rows[point]
            if "missing" in r:
                lines.append(f"| {scheme} | {name} | {r['missing']} | | | | | | | |")
                continue
            why = f" ({', '.join(r['reasons'])})" if point == "converged" else ""
            lines.append(
                f"| {scheme} | {name}{why} | {r['step']:.0f} | {r['tokens'] / 1e6:.2f} | "
                f"{_f(r[f'{split}.r2'])} | {_f(r[f'{split}.r2_valid'])} | "
                f"{_f(r[f'{split}.invalid_rate'], True)} | {_f(r[f'{split}.exact'], True)} | "
                f"{_f(r[f'{split}.outlier_rate'], True)} | {r['val_loss']:.4g} |"
            )
    return [*lines, ""]


def _conv(groups: dict, task: str, scheme: str, key: str, mode: str = "mlm") -> float | None:
    row = groups.get(f"{task}/{mode}", {}).get("rows", {}).get(scheme, {}).get("converged", {})
    v = row.get(key) if isinstance(row, dict) else None
    return v[0] if v else None


def findings(groups: dict, memory: list[dict], lengths: dict | None) -> list[dict]:
    """The paper's qualitative claims, each with a verdict from the convergence tables."""
    out = []

    def add(claim: str, verdict: str, evidence: str) -> None:
        out.append({"claim": claim, "verdict": verdict, "evidence": evidence})

    x = _conv(groups, "multiplication", "xval", "test.r2")
    d = [_conv(groups, "multiplication", s, "test.r2") for s in ("p1000", "b1999")]
    claim = "Multiplication: P1000/B1999 about as good as xVal (R² within 0.05)"
    if x is None or None in d:
        add(claim, "not checked", "multiplication cells (xval, p1000, b1999) not all converged")
    else:
        verdict = "reproduced" if all(abs(v - x) <= 0.05 for v in d) else "not reproduced"
        add(claim, verdict, f"R² all samples: xval {x:.3f}, p1000 {d[0]:.3f}, b1999 {d[1]:.3f}")

    x = _conv(groups, "compound", "xval", "test.r2")
    digits = {s: _conv(groups, "compound", s, "test.r2") for s in SCHEMES[1:]}
    claim = "Compound arithmetic: digit encodings give huge outliers (R² < 0), xVal R² near 1"
    if x is None or None in digits.values():
        add(claim, "not checked", "compound cells not all converged")
    else:
        ev = ", ".join(f"{s} {v:.3f}" for s, v in {"xval": x, **digits}.items())
        if x > 0.9 and max(digits.values()) < 0:
            add(claim, "reproduced", ev)
        elif max(digits.values()) > x:
            add(claim, "reversed", ev)
        else:
            add(claim, "not reproduced", ev)

    claim = ("OOD (held-out band and beyond): xVal interpolates smoothly, digits erratic "
             "(proxy: best R² and fewest outliers on interp and extrap)")  # fmt: skip
    vals = {s: [_conv(groups, "ood", s, f"{sp}.{k}") for sp in ("interp", "extrap")
                for k in ("r2", "outlier_rate")] for s in SCHEMES}  # fmt: skip
    if any(v is None for vs in vals.values() for v in vs):
        add(claim, "not checked", "ood cells not all converged")
    else:
        ev = "; ".join(f"{s}: interp R² {v[0]:.3f} ({100 * v[1]:.0f}% outliers), extrap R² "
                       f"{v[2]:.3f} ({100 * v[3]:.0f}%)" for s, v in vals.items())  # fmt: skip
        others = [v for s, v in vals.items() if s != "xval"]
        xv = vals["xval"]
        best = all(xv[0] >= o[0] and xv[2] >= o[2] for o in others)
        worst = all(xv[0] < o[0] and xv[2] < o[2] for o in others)
        add(claim, "reproduced" if best else "reversed" if worst else "not reproduced", ev)

    claim = "Exact match (3 significant digits): digit encodings beat xVal"
    parts, wins = [], []
    for task in ("multiplication", "ood", "diabetes"):
        ex = {s: _conv(groups, task, s, "test.exact") for s in SCHEMES}
        if None in ex.values():
            continue
        parts.append(f"{task}: " + ", ".join(f"{s} {100 * v:.1f}%" for s, v in ex.items()))
        wins.append(max(v for s, v in ex.items() if s != "xval") > ex["xval"])
    if not parts:
        add(claim, "not checked", "no task has all five encodings converged")
    else:
        verdict = "reproduced" if all(wins) else "reversed" if not any(wins) else "mixed"
        add(claim, verdict, "; ".join(parts))

    claim = "Sequence length: xVal needs the shortest sequences (FP15 ties: one token per number)"
    tps = (lengths or {}).get("tokens_per_text", {})
    if not tps:
        add(claim, "not checked", "no sequence-length measurement")
    else:
        ok = all(t["xval"] <= min(t.values()) + 1e-9 for t in tps.values())
        ratio = {k: {s: t[s] / t["xval"] for s in SCHEMES[1:]} for k, t in tps.items()}
        ev = "; ".join(f"{k}: " + ", ".join(f"{s} {r:.2f}x" for s, r in rr.items())
                       for k, rr in ratio.items())  # fmt: skip
        add(claim, "reproduced" if ok else "not reproduced", "tokens per text vs xVal: " + ev)

    claim = "Compute/memory: xVal trains with the least memory (measured, after warm-up)"
    if not memory:
        add(claim, "not checked", "no memory measurement")
    else:
        by_task: dict = {}
        for r in memory:
            by_task.setdefault(r["task"], {})[r["scheme"]] = r.get("training_mib_warm")
        ok = all(t.get("xval") is not None and t["xval"] <= min(v for v in t.values() if v)
                 for t in by_task.values())  # fmt: skip
        ev = "; ".join(f"{k}: " + ", ".join(f"{s} {v:.1f} MiB" for s, v in t.items() if v)
                       for k, t in by_task.items())  # fmt: skip
        add(claim, "reproduced" if ok else "not reproduced", ev)
    return out


def plot_curves(groups_cells: dict, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for key, cells in groups_cells.items():
        fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
        for c in cells:
            steps = [r["step"] for r in c["curve"]]
            tokens = [r["tokens"] / 1e6 for r in c["curve"]]
            loss = [r["val_loss"] for r in c["curve"]]
            r2 = [max(r.get("test.r2", np.nan), -1.0) for r in c["curve"]]
            lbl = f"{c['scheme']} s{c['seed']}" + ("" if c["done"] else " (unfinished)")
            axes[0, 0].plot(steps, loss, label=lbl)
            axes[0, 1].plot(tokens, loss, label=lbl)
            axes[1, 0].plot(steps, r2, label=lbl)
            axes[1, 1].plot(tokens, r2, label=lbl)
        for ax in axes[0]:
            ax.set_yscale("log")
            ax.set_ylabel("validation loss")
        for ax in axes[1]:
            ax.set_ylabel("test R² (all samples, clipped at -1)")
        for ax in axes[:, 0]:
            ax.set_xlabel("optimizer steps")
        for ax in axes[:, 1]:
            ax.set_xlabel("training tokens (M)")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"xVal vs digit encodings: {key}")
        path = out_dir / f"xval_curves_{key.replace('/', '_')}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path.name)
    return paths


def tasks_view(groups: dict, memory: list[dict]) -> dict:
    """{task: {encoding: {point: {steps, ..., splits: {split: metrics}}}}}: what the
    numbers page reads (one row per task, encoding, point and split)."""
    mem = {(r["task"], r["scheme"]): r.get("training_mib_warm") for r in memory}
    view: dict = {}
    for key, g in groups.items():
        task, mode = key.split("/")
        name = task if mode == "mlm" else f"{task} (causal)"
        for scheme, rows in g["rows"].items():
            for point, r in rows.items():
                if point not in POINT_NAMES or "missing" in r:
                    continue
                splits = {sp: {k: (r[f"{sp}.{k}"] or [None])[0] for k in COLS}
                          for sp in g["splits"]}  # fmt: skip
                for m in splits.values():
                    m["mse"] = None  # raw MSE is in the curves; the page shows R^2
                view.setdefault(name, {}).setdefault(scheme, {})[POINT_NAMES[point]] = {
                    "steps": r["step"], "tokens": r["tokens"],
                    "tokens_per_sample": rows.get("tokens_per_sample") or float("nan"),
                    "samples_per_s": float("nan"),
                    "peak_memory_mb": mem.get((task, scheme)) or float("nan"),
                    "splits": splits,
                }  # fmt: skip
    return view


def write_report(root: Path, out: Path, meta: dict) -> int:
    cells = load_cells(root)
    by_group: dict = {}
    for c in cells:
        by_group.setdefault(f"{c['task']}/{c['mode']}", []).append(c)
    groups = {}
    for key, gc in sorted(by_group.items()):
        splits = sorted({k.split(".")[0] for k in gc[0]["curve"][-1] if "." in k},
                        key=["test", "interp", "extrap"].index)  # fmt: skip
        groups[key] = {**group_table(gc, splits), "splits": splits}
    mem_path, dz_path = out.parent / "xval_memory.json", out.parent / "xval_deadzone.json"
    memory = json.loads(mem_path.read_text()) if mem_path.exists() else {"rows": []}
    deadzone = json.loads(dz_path.read_text()) if dz_path.exists() else None
    ln_path = out.parent / "xval_lengths.json"
    lengths = json.loads(ln_path.read_text()) if ln_path.exists() else None
    found = findings(groups, memory["rows"], lengths)
    out.parent.mkdir(parents=True, exist_ok=True)
    plots = plot_curves(by_group, out.parent) if by_group else []
    cell_status = {f"{c['task']}_{c['scheme']}_{c['mode']}_s{c['seed']}":
                   c["status"].get("reason") or f"unfinished (step {c['curve'][-1]['step']})"
                   for c in cells}  # fmt: skip
    result = {"meta": meta, "cells": cell_status, "groups": groups, "findings": found,
              "tasks": tasks_view(groups, memory["rows"]),
              "memory": memory, "dead_zone": deadzone, "lengths": lengths, "plots": plots,
              "curves": {k: {c["scheme"] + f"_s{c['seed']}": c["curve"] for c in v}
                         for k, v in by_group.items()}}  # fmt: skip
    body = markdown(result).split("\n", 5)[5]  # the title, command, date, machine: below
    info = meta.get("run") or run_info(note="report rebuilt from stored cells")
    write_results(out.name, result, body, info=info, out_dir=out.parent, title=TITLE)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


def summary(groups: dict) -> list[str]:
    """One line per task/mode/split: each encoding's R² all (invalid, exact) at convergence."""
    lines = ["| task / mode / split | " + " | ".join(SCHEMES) + " |",
             "|---" * (len(SCHEMES) + 1) + "|"]  # fmt: skip
    for key, g in groups.items():
        for split in g["splits"]:
            cells = []
            for scheme in SCHEMES:
                r = g["rows"].get(scheme, {}).get("converged")
                if r is None:
                    cells.append("not run")
                elif "missing" in r:
                    cells.append(r["missing"])
                else:
                    r2, inv, ex = (r[f"{split}.{k}"] for k in ("r2", "invalid_rate", "exact"))
                    cells.append(f"{_f([r2[0], 0])} ({_f(inv, True)} inv., {_f(ex, True)} exact)")
            lines.append(f"| {key} / {split} | " + " | ".join(cells) + " |")
    return lines


def markdown(result: dict) -> str:
    meta, cc = result["meta"], result["meta"]["converge"]
    lines = [
        f"# {TITLE}", "",
        f"Command: `{meta['command']}`  ", f"Date: {meta['date']}  ",
        f"Machine: {meta['machine']}  ", f"Model: {meta['model']}  ",
        f"Training: AdamW lr {cc['lr']} constant after {cc['warmup_steps']} warmup steps, batch "
        f"{cc['batch_size']} (orbits 32); a curve point every {cc['eval_every']} steps; stop when "
        f"the validation loss has not improved by {100 * cc['plateau_rel']:.0f}% over the last "
        f"{100 * cc['plateau_window']:.0f}% of the steps (a window of at least "
        f"{cc.get('plateau_points', 1)} curve points, not before {cc['min_steps']}), or at "
        f"{cc['max_steps']} steps (10x the first benchmark's 400 x 64).  ",
        "Metrics over **all** test samples: an invalid answer (a malformed number, or no "
        "number) is scored as the training mean of its field (R² all); R² valid covers the "
        "valid answers only. Exact = equal at 3 significant digits (invalid is never exact). "
        "Test sets share no text with the training set (deduplicated). Mean ± std "
        "(population std, ddof 0; the sample std is sqrt(n/(n-1)) times it) over the seeds "
        "that reached the point.", "",
        "## Summary at convergence", "",
        "R² over all test samples (invalid answers scored as the training mean), invalid "
        "rate and exact match of each finished cell at its point of least validation loss "
        "(the run itself ends at a plateau or the budget).", "",
        *summary(result["groups"]), "",
        "## Cells", "",
        "| cell | state |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in result["cells"].items()], "",
        "Cells absent from this list were not run.", "",
        "## The paper's findings", "",
        "| claim | verdict | evidence |", "|---|---|---|",
        *[f"| {f['claim']} | **{f['verdict']}** | {f['evidence']} |" for f in result["findings"]],
        "",
    ]  # fmt: skip
    if result["plots"]:
        lines += ["Learning curves: " + ", ".join(f"`{p}`" for p in result["plots"]), ""]
    lines += ["## Tables", ""]
    for key, g in result["groups"].items():
        task, mode = key.split("/")
        for split in g["splits"]:
            lines += markdown_group(task, mode, g, split)
    mem = result["memory"]
    if mem.get("rows"):
        lines += ["## Measured training memory", "", f"Command: `{mem['command']}`. "
                  "Fresh process per cell; `training` = peak RSS (VmHWM) minus RSS before "
                  "training, which includes torch's one-time set-up on the first step; "
                  "`after warm-up` = the same after a throw-away 1-step run, i.e. what the "
                  "encoding itself adds (batch 64, 20 steps).", "",
                  "| task | encoding | tokens/sample | parameters | training (MiB) "
                  "| after warm-up (MiB) |", "|---|---|---|---|---|---|"]  # fmt: skip
        for r in mem["rows"]:
            lines.append(f"| {r['task']} | {r['scheme']} | {r['tokens_per_sample']:.1f} | "
                         f"{r['n_params']:,} | {r['training_mib']:.1f} | "
                         f"{r.get('training_mib_warm', float('nan')):.1f} |")  # fmt: skip
        lines.append("")
    ln = result.get("lengths")
    if ln:
        lines += [
            "## Sequence length (tokens per training text)",
            "",
            f"Command: `{ln['command']}` ({ln['n']} training texts per task).",
            "",
            "| task | " + " | ".join(SCHEMES) + " |",
            "|---" * (len(SCHEMES) + 1) + "|",
        ]
        for task, row in ln["tokens_per_text"].items():
            lines.append(f"| {task} | " + " | ".join(f"{row[s]:.1f}" for s in SCHEMES) + " |")
        lines.append("")
    dz = result["dead_zone"]
    if dz:
        lines += ["## The scaler's dead zone ([NUM] bias ablation)", "",
                  f"Command: `{dz['command']}`; xVal on ood, 1 seed; near = {dz['near']}.", "",
                  "| [NUM] bias | median rel. error near the mean | elsewhere | n near | MSE |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for r in dz["rows"].values():
            lines.append(f"| {'on' if r['num_bias'] else 'off'} | "
                         f"{r['median_rel_error_near_mean']:.4f} | "
                         f"{r['median_rel_error_elsewhere']:.4f} | {r['n_near']} | "
                         f"{r['mse']:.4g} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines) + "\n"
