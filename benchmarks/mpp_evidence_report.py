"""The report half of ``benchmarks/mpp_evidence.py``: its cells into ``mpp_evidence.{json,md}``.

Reads every finished cell under the study's root. Cells written before a field existed are
read with its default: a transfer cell without ``trainable`` fine-tuned all weights, a cell
without ``tag`` comes from the main run (``scripts/mpp_pretrain.sh``), whose recipe the caller
passes in (``main_recipe``, read from the report's ``--ckpt``) when the cell does not say.

The JSON keeps the keys the physics page reads (``rollouts``, ``one_step``: the main run's
latest checkpoint per system) and adds every run's cells beside them (``rollout_runs``,
``one_step_runs``) with issue 13's rollout criteria per cell.

The JSON is also the study's backup: ``restore`` writes each record it holds back as its cell
file (the names below, the ones the writers use) and its thinned pretraining curve beside them,
so a study whose ``runs/`` was lost reports again, whole, once new cells join the restored ones.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from scifm.core.report import repo_path, run_info, write_report
from scifm.core.resume import METRICS_FILE, read_step_records
from scifm.mpp.card import curve_records, load_card
from scifm.mpp.data import system_info

FNO_PRESET = "paper"  # PDEBench's FNO (12 modes, width 20, 4 layers): the issue-13 baseline
TRAINABLE = ("all", "io")  # transfer modes: every weight / processor frozen (issue 13)
TRAINABLE_WORDS = {"all": "all weights", "io": "processor frozen"}
ROLLOUT_KS = (1, 5, 10, 20, 30, 50)
PAPER_TRANSFER = (
    "McCabe et al. (arXiv:2310.02994) Fig. 4: fine-tuned from MPP, the NRMSE on CNS with a "
    "few trajectories is well below training from scratch (e.g. MPP-B at N=100 is below "
    "scratch with N=800); the issue's goal here: pretrained <= 0.67 x scratch"
)


CURVE_FILE = "pretrain_curve.json"  # under the root: the curve ``restore`` took from a report
CURVE_EVERY = 4  # the report keeps every 4th logged step of the pretraining curve
# the report's keys that hold whole cell records
CELL_LISTS = ("transfer_cells", "rollout_runs", "rollouts", "one_step_runs", "one_step",
              "baselines", "gaps", "baseline_rollouts")  # fmt: skip
DERIVED = ("below_persistence_k20", "finite_within_2x_k50")  # the report adds these; not cells'
BASELINE_NAMES = {"avit": "single-task AViT", "fno": "FNO"}  # the single-task architectures


def cell_path(root: Path, *parts) -> Path:
    """``root/<parts joined by _>/result.json``; None parts (an untagged run, ``all``) left out,
    so the cells written before tags and trainable modes existed keep their names."""
    return root / "_".join(str(p) for p in parts if p is not None) / "result.json"


def transfer_cell(root: Path, variant: str, tag: str | None, init: str,
                  trainable: str | None, n: int, seed: int) -> Path:  # fmt: skip
    """A transfer cell; ``all`` (or no ``trainable``: the old cells) leaves the mode out."""
    mode = None if trainable in (None, "all") else trainable
    return cell_path(root, variant, tag, init, mode, f"n{n}", f"s{seed}")


def step_cell(root: Path, kind: str, tag: str | None, variant: str, step: int | None,
              seed: int | None = 0) -> Path:  # fmt: skip
    """A ``rollout`` or ``onestep`` cell of one checkpoint step of a pretraining run (a
    replica, ``SEED=N`` of scripts/mpp_pretrain.sh, has its seed in the name)."""
    return cell_path(root, kind, tag, variant, replica(seed), f"step{step}")


def baseline_cell(root: Path, arch: str, variant: str, step: int, tag: str | None = None,
                  seed: int | None = 0) -> Path:  # fmt: skip
    """A baseline cell; a tagged one is a recipe ablation (``baselines --recipe --tag``)."""
    return cell_path(root, "baseline", arch, variant, tag, replica(seed), f"step{step}")


def replica(seed: int | None) -> str | None:
    """A seed's part of a cell name: none for seed 0 (the cells written before seeds)."""
    return f"s{seed}" if seed else None


def baseline_rollout_cell(root: Path, arch: str, variant: str, tag: str | None,
                          step: int | None, seed: int | None = 0) -> Path:  # fmt: skip
    """A rollout of a single-task baseline run (``baseline-rollout``)."""
    return cell_path(root, "baseline-rollout", arch, variant, tag, replica(seed), f"step{step}")


def gap_cell(root: Path, arch: str, variant: str, tag: str | None, seed: int | None,
             step: int | None) -> Path:  # fmt: skip
    """A ``gap`` cell of one model (``mpp`` or a baseline run) at one step."""
    return cell_path(root, "gap", arch, variant, tag, replica(seed), f"step{step}")


def record_cell(root: Path, key: str, rec: dict) -> Path:
    """The cell file of a record found under the report's JSON ``key`` (``CELL_LISTS``)."""
    if key == "transfer_cells":
        return transfer_cell(root, rec["variant"], rec.get("tag"), rec["init"],
                             rec.get("trainable"), rec["n_traj"], rec["seed"])  # fmt: skip
    if key == "baselines":
        return baseline_cell(root, rec["arch"], rec["variant"], rec["step"], rec.get("tag"),
                             rec.get("seed"))  # fmt: skip
    if key == "gaps":
        return gap_cell(root, rec["arch"], rec["variant"], rec.get("tag"), rec.get("seed"),
                        rec["step"])  # fmt: skip
    if key == "baseline_rollouts":
        return baseline_rollout_cell(root, rec["arch"], rec["variant"], rec.get("tag"),
                                     rec["ckpt_step"], rec.get("seed"))  # fmt: skip
    kind = "rollout" if key.startswith("rollout") else "onestep"
    return step_cell(root, kind, rec.get("tag"), rec["variant"], rec["ckpt_step"],
                     rec.get("seed"))  # fmt: skip


def restore(source: Path, root: Path) -> dict[str, int]:
    """Write every cell record of a report's JSON (``source``) back under ``root``.

    A cell file already there is kept (never overwritten), and so is a curve file. The report's
    derived rollout criteria are dropped (``report`` recomputes them). Returns the counts.
    """
    data = json.loads(Path(source).read_text())
    cells: dict[Path, dict] = {}
    for key in CELL_LISTS:
        for rec in data.get(key) or []:
            rec = {k: v for k, v in rec.items() if k not in DERIVED}
            out = record_cell(root, key, rec)
            if out in cells and json.dumps(cells[out]) != json.dumps(rec):
                raise ValueError(f"{source}: two different records for the cell {out}")
            cells[out] = rec
    written = 0
    for out, rec in cells.items():
        if not out.exists():
            write_cell(out, rec)
            written += 1
    curve, curve_file = data.get("pretrain_curve"), root / CURVE_FILE
    curve_written = bool(curve) and not curve_file.exists()
    if curve_written:
        write_cell(curve_file, {"source": repo_path(source), "every": CURVE_EVERY,
                                "points": curve})  # fmt: skip
    return {"cells": len(cells), "written": written, "kept": len(cells) - written,
            "curve_points": len(curve or []) if curve_written else 0}  # fmt: skip


def write_cell(out: Path, rec: dict) -> None:
    """One finished cell of ``mpp_evidence.py`` (the records this module reads back)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec, indent=1))


def read_cells(root: Path, pattern: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.glob(pattern))]


def transfer_rows(cells: list[dict]) -> list[dict]:
    """Per (variant, tag, trainable, N): paired means over the seeds with both inits."""
    by: dict[tuple, dict[int, dict[str, float]]] = {}
    for c in cells:
        key = (c["variant"], c.get("tag") or "", c.get("trainable", "all"), c["n_traj"])
        by.setdefault(key, {}).setdefault(c["seed"], {})[c["init"]] = c["one_step_nrmse"]
    rows = []
    for (variant, tag, trainable, n), seeds in sorted(by.items()):
        both = [v for v in seeds.values() if "pretrained" in v and "scratch" in v]
        pre = [v["pretrained"] for v in both]
        scr = [v["scratch"] for v in both]
        row = {"variant": variant, "tag": tag or None, "trainable": trainable, "n_traj": n,
               "seeds": len(both),
               "pretrained": float(np.mean(pre)) if both else None,
               "scratch": float(np.mean(scr)) if both else None,
               # the sample sd, as the baseline tables' (``_seeds``); none for one seed
               "pretrained_std": float(np.std(pre, ddof=1)) if len(both) > 1 else None,
               "scratch_std": float(np.std(scr, ddof=1)) if len(both) > 1 else None}  # fmt: skip
        if both:
            row["ratio"] = row["pretrained"] / row["scratch"]
            row["meets_0.67"] = bool(row["ratio"] <= 0.67)
        rows.append(row)
    return rows


def rollout_criteria(rec: dict) -> dict:
    """Issue 13 item 2 on one rollout: NRMSE below persistence at step 20, and at step 50
    finite and at most 2x persistence's (None where the rollout is shorter). The model's curve
    is ``avit`` (a pretrained run) or ``model`` (a baseline's)."""
    a, p = _model_curve(rec), rec["persistence"]
    at20 = bool(a[19] < p[19]) if len(a) >= 20 else None
    at50 = bool(math.isfinite(a[49]) and a[49] <= 2 * p[49]) if len(a) >= 50 else None
    return {"below_persistence_k20": at20, "finite_within_2x_k50": at50}


def _model_curve(rec: dict) -> list[float]:
    """A rollout cell's model curve: ``avit`` (a pretrained run's) or ``model`` (a baseline's)."""
    return rec["avit"] if "avit" in rec else rec["model"]


def run_label(rec: dict, main_recipe: str | None) -> str:
    """'main (stable)' or '<tag> (<recipe>)': which pretraining run a cell evaluates."""
    recipe = rec.get("recipe") or (main_recipe if not rec.get("tag") else None) or "?"
    return f"{rec.get('tag') or 'main'} ({recipe})"


def latest(records: list[dict], tagged: bool = False, main: str = "") -> dict[tuple, dict]:
    """The record of the latest checkpoint step per (tag, seed, variant); the run of record
    only (tag ``main``, "" = untagged; seed 0) unless ``tagged``."""
    out: dict[tuple, dict] = {}
    for r in records:
        if ((r.get("tag") or "") != main or r.get("seed")) and not tagged:
            continue
        key = (r.get("tag") or "", r.get("seed") or 0, r["variant"])
        if key not in out or (r["ckpt_step"] or 0) > (out[key]["ckpt_step"] or 0):
            out[key] = r
    return out


def one_step_rows(records: list[dict]) -> list[dict]:
    """The one-step cells a report shows: the latest step of each untagged run, and every
    evaluated step of a tagged run (its replicas at a step are grouped into one row)."""
    untagged = [r for r in latest(records, tagged=True).values() if not r.get("tag")]
    return untagged + [r for r in records if r.get("tag")]


def learning_curve(ckpt_dir: Path) -> list[dict]:
    """The training log beside a checkpoint, one record per step (a resumed run's last)."""
    path = ckpt_dir.parent / METRICS_FILE
    return read_step_records(path) if path.exists() else []


def _card_curve(ckpt: Path) -> list[dict]:
    """The learning curve a packaged model's card keeps (at most 100 points)."""
    if not (ckpt / "config.json").exists():
        return []
    return curve_records((load_card(ckpt) or {}).get("learning_curve") or {})


def pretrain_curve(root: Path, ckpt: str) -> tuple[list[dict], str | None]:
    """Every ``CURVE_EVERY``-th point of the main run's learning curve, and where it came from:
    the training log beside ``ckpt``, else its model card's curve (a packaged asset), else the
    curve a ``restore`` put under ``root``."""
    curve = learning_curve(Path(ckpt))
    if curve:
        keep = [{k: r[k] for k in ("step", "loss", "nrmse", "lr") if k in r} for r in curve]
        return keep[::CURVE_EVERY], repo_path(Path(ckpt).parent / "metrics.jsonl")
    card = _card_curve(Path(ckpt))
    if card:
        return card, f"the model card of {repo_path(ckpt)}"
    if (root / CURVE_FILE).exists():
        stored = json.loads((root / CURVE_FILE).read_text())
        return stored["points"], f"{stored['source']} (restored)"
    return [], None


def report(
    root: Path, ckpt: str, data: str, out: str, main_recipe: str | None, main_tag: str = ""
) -> None:
    """Gather every finished cell under ``root`` into ``out/mpp_evidence.{json,md}``; the
    rollouts and one-step figures the physics page reads are run ``main_tag``'s (the shipped
    model's; "" = the untagged run of ``scripts/mpp_pretrain.sh``)."""
    cells = read_cells(root, "cns*/result.json")
    rolls = read_cells(root, "rollout_*/result.json")
    ones = read_cells(root, "onestep_*/result.json")
    bases = read_cells(root, "baseline_*_step*/result.json")
    gaps = read_cells(root, "gap_*/result.json")
    brolls = read_cells(root, "baseline-rollout_*/result.json")
    for r in rolls + brolls:
        r.update(rollout_criteria(r))
    if main_tag and not any(r.get("tag") == main_tag and not r.get("seed") for r in rolls + ones):
        raise ValueError(f"main run {main_tag!r}: no rollout or one-step cell of seed 0 "
                         f"under {root} carries that tag (run `rollout`/`onestep --tag` "
                         "first)")  # fmt: skip
    rows = transfer_rows(cells)
    main_one = {v: r for (_, _, v), r in latest(ones, main=main_tag).items()}
    curve, curve_from = pretrain_curve(root, ckpt)
    result = {
        "paper": PAPER_TRANSFER,
        "transfer": rows,
        "transfer_cells": cells,
        "rollouts": list(latest(rolls, main=main_tag).values()),  # the physics page reads it
        "main_tag": main_tag,
        "rollout_runs": sorted(rolls, key=lambda r: _run_order(r)),
        "one_step": list(main_one.values()),
        "one_step_runs": one_step_rows(ones),
        "baselines": bases,
        "gaps": gaps,
        "baseline_rollouts": brolls,
        "pretrain_curve": curve,
        "pretrain_curve_from": curve_from,
        "joint": joint_rows(ones, rolls),
    }
    info = run_info(
        data={"files": repo_path(data) + " (scripts/mpp_data.sh)",
              "checkpoint": repo_path(ckpt) + " (scripts/mpp_pretrain.sh)"},
        note="64^2 grids, 8x8 patches (64 tokens a frame), AViT 'small'; 2 CPU cores shared "
             "with other jobs, so seconds are noisy",
    )  # fmt: skip
    md = [
        f"Checkpoint `{ckpt}`; every figure from `benchmarks/mpp_evidence.py`. "
        "Scale is far below the paper (128^2, 7-400M parameters, 200k GPU steps): read trends.",
    ]
    if curve:
        span = f"steps {curve[0]['step']}-{curve[-1]['step']}"
        md += ["", f"Pretraining curve of the main run: {len(curve)} points ({span}) in the "
               f"JSON, from `{curve_from}`."]  # fmt: skip
    md += _transfer_md(rows, cells)
    md += _one_step_md(one_step_rows(ones), main_recipe)
    md += _fields_md(ones, bases, main_recipe)
    md += _baseline_table([b for b in bases if not b.get("tag")], main_one)
    # a tagged run with the pretrained model's own recipe is a budget, not a recipe ablation
    same = {b["tag"] for b in bases if b.get("tag") and b.get("recipe") == main_recipe}
    for tag in sorted(same):
        md += _baseline_table([b for b in bases if b.get("tag") == tag], main_one, tag)
    md += _baseline_recipe_table([b for b in bases if b.get("tag") not in same], gaps, ones)
    md += _gap_table(gaps)
    md += _rollout_md(rolls, main_recipe, brolls)
    md += _joint_md(result["joint"], main_recipe)
    write_report("mpp_evidence", result, "\n".join(md) + "\n", info=info,
                 title="MPP evidence at 64^2 (issue 13)", out_dir=out)  # fmt: skip


JOINT_ITEM1 = 0.5  # issue 13 item 1: one-step NRMSE at most half persistence's


def joint_rows(ones: list[dict], rolls: list[dict]) -> list[dict]:
    """Items 1 and 2 of issue 13 on one model: per pretraining run, seed and checkpoint step
    that has both a one-step and a rollout cell on every system it trained on, each system's
    one-step ratio to persistence and rollout verdicts (``rollout_criteria``), and whether
    that one model meets item 1 (ratio <= 0.5 everywhere), item 2 (both rollout criteria
    everywhere) and both. Rollout cells must carry the criteria (``report`` adds them)."""

    def key(r: dict) -> tuple:
        return (r.get("tag") or "", r.get("seed") or 0, r["ckpt_step"] or 0)

    one = {(*key(r), r["variant"]): r for r in ones if r["trained_on"]}
    roll = {(*key(r), r["variant"]): r for r in rolls if r["trained_on"]}
    runs = sorted({k[:3] for k in one} & {k[:3] for k in roll})
    rows = []
    for run in runs:
        variants = sorted({k[3] for k in (*one, *roll) if k[:3] == run})
        if not all((*run, v) in one and (*run, v) in roll for v in variants):
            continue  # a system evaluated one way only: no verdict on the pair
        systems = {}
        for v in variants:
            o, r = one[(*run, v)], roll[(*run, v)]
            systems[v] = {"one_step_ratio": o["avit"] / o["persistence"],
                          "below_persistence_k20": r["below_persistence_k20"],
                          "finite_within_2x_k50": r["finite_within_2x_k50"]}  # fmt: skip
        item1 = all(s["one_step_ratio"] <= JOINT_ITEM1 for s in systems.values())
        verdicts = [s[k] for s in systems.values() for k in DERIVED]
        item2 = None if None in verdicts else all(verdicts)  # None: a rollout under 50 steps
        first = one[(*run, variants[0])]
        rows.append({"tag": run[0], "seed": run[1], "ckpt_step": run[2],
                     "recipe": first.get("recipe"), "systems": systems,
                     "item1": item1, "item2": item2,
                     "both": item1 and item2})  # fmt: skip
    return rows


def _joint_md(rows: list[dict], main_recipe: str | None) -> list[str]:
    md = ["", "## Items 1 and 2 on one model (one row a run, seed and checkpoint)", "",
          "Each pretrained model with both one-step and rollout cells on every system it "
          "trained on: per system the one-step ratio to persistence (item 1: <= 0.5) and "
          "whether its 50-step rollout is below persistence at k = 20 and finite within 2x "
          "persistence at k = 50 (item 2: both).", ""]  # fmt: skip
    if not rows:
        return [*md, "No run has both yet."]
    variants = sorted({v for r in rows for v in r["systems"]})
    md.append("| run (recipe) | seed | step | " + " | ".join(variants)
              + " | item 1 | item 2 | both |")  # fmt: skip
    md.append("|---|---:|---:|" + "---|" * len(variants) + "---|---|---|")

    def cell(s: dict | None) -> str:
        if s is None:
            return ""
        return (f"{s['one_step_ratio']:.2f}x; k20 {_yn(s['below_persistence_k20'])}, "
                f"k50 {_yn(s['finite_within_2x_k50'])}")  # fmt: skip

    for r in sorted(rows, key=lambda r: (r["tag"], r["ckpt_step"], r["seed"])):
        label = run_label({"tag": r["tag"], "recipe": r["recipe"]}, main_recipe)
        md.append(f"| {label} | {r['seed']} | {r['ckpt_step']} | "
                  + " | ".join(cell(r["systems"].get(v)) for v in variants)
                  + f" | {_yn(r['item1'])} | {_yn(r['item2'])} | {_yn(r['both'])} |")  # fmt: skip
    met = [r for r in rows if r["both"]]
    md += [
        "",
        f"Models meeting items 1 and 2 together: {len(met)} of {len(rows)} (n/a: a "
        "rollout shorter than 50 steps).",
    ]
    return md


def _run_order(r: dict) -> tuple:
    return (r["variant"], r.get("tag") or "", r["ckpt_step"] or 0)


def _transfer_md(rows: list[dict], cells: list[dict]) -> list[str]:
    md = ["", "## Transfer to compressible NS (held out of pretraining)", "",
          PAPER_TRANSFER + ".", ""]  # fmt: skip
    modes = [m for m in TRAINABLE if any(r["trainable"] == m for r in rows)]
    head = "".join(f" {TRAINABLE_WORDS[m]}: pretrained | scratch | ratio |" for m in modes)
    groups = sorted({(r["variant"], r["tag"] or "") for r in rows})
    for variant, tag in groups:
        name = variant + (f", run `{tag}`" if tag else "")
        group = [c for c in cells if c["variant"] == variant and (c.get("tag") or "") == tag]
        inits = sorted({_init_name(c) for c in group if c["init"] == "pretrained"})
        steps = "/".join(str(n) for n in sorted({c["steps"] for c in group}))
        pers = "/".join(sorted({_f(c["persistence_nrmse"]) for c in group}))
        reused = sorted({c["reused_from"].rsplit("_n", 1)[0] for c in group
                         if c.get("reused_from")})  # fmt: skip
        reuse = (f"; scratch cells copied from {', '.join(f'`{r}_*`' for r in reused)} "
                 "(a scratch model depends on no checkpoint)" if reused else "")  # fmt: skip
        own = system_info(variant)["field_index"]
        slots = sorted({tuple(c["field_index"]) for c in group
                        if c["init"] == "pretrained" and c.get("field_index")})  # fmt: skip
        slots_words = "".join(
            f"; pretrained fields in slots {list(k)} ({', '.join(system_info(variant)['fields'])}"
            f"; reserved {own})" for k in slots if list(k) != own
        )  # fmt: skip
        md += [f"**{name}** (pretrained init: {', '.join(inits)}; {steps} fine-tuning steps; "
               f"persistence {pers}{reuse}{slots_words}): one-step NRMSE (mean ± sample sd "
               "over seeds), pretrained vs scratch fine-tuned alike; ratio = pretrained / "
               "scratch (goal <= 0.67).", "",
               "| N traj | seeds |" + head,
               "|---:|---|" + "---:|---:|---:|" * len(modes)]  # fmt: skip
        mine = [r for r in rows if r["variant"] == variant and (r["tag"] or "") == tag]
        for n in sorted({r["n_traj"] for r in mine}):
            by = {r["trainable"]: r for r in mine if r["n_traj"] == n}
            seeds = "/".join(str(by[m]["seeds"]) if m in by else "-" for m in modes)
            vals = "".join(
                f" {_pm(by[m], 'pretrained')} | {_pm(by[m], 'scratch')} | "
                f"{_f(by[m].get('ratio'))} |" if m in by else " - | - | - |"
                for m in modes
            )  # fmt: skip
            md.append(f"| {n} | {seeds} |" + vals)
        md.append("")
    if cells:
        c = cells[0]
        sizes = {x.get("trainable", "all"): x["trainable_params"] for x in cells
                 if "trainable_params" in x}  # fmt: skip
        what = "; ".join(
            f"`{m}` = {TRAINABLE_WORDS[m]}"
            + (f" ({sizes[m]:,} trainable parameters)" if m in sizes else "")
            for m in modes
        )
        md += [
            f"Fine-tuning: AdamW (steps in each table's heading), lr {c['lr']}, batch "
            f"{c['batch_size']}; {what} (`io`: field embedding, stem and decoder train, the "
            "processor blocks keep their weights: pretrained, or random for scratch); "
            f"one-step NRMSE on the held-out test files ({c['test_windows']} windows).",
        ]
    return md


def _init_name(cell: dict) -> str:
    """A transfer cell's pretrained checkpoint, with its step where the cell records it."""
    step = f" (step {cell['ckpt_step']})" if cell.get("ckpt_step") is not None else ""
    return f"`{cell.get('ckpt', '?')}`{step}"


def _one_step_md(ones: list[dict], main_recipe: str | None) -> list[str]:
    md = ["", "## One-step NRMSE on the held-out test trajectories (goal: <= 0.5x persistence)",
          ""]  # fmt: skip
    if ones:
        groups: dict[tuple, list[dict]] = {}
        for r in sorted(ones, key=_run_order):
            groups.setdefault((r["variant"], r.get("tag") or "", r["ckpt_step"] or 0), []).append(r)
        md += ["A run and its replicas (`SEED=N scripts/mpp_pretrain.sh`, evaluated under the "
               "run's tag) are one row: mean ± sd (seeds); ratio = mean / persistence.", "",
               "| variant | run (recipe) | in pretraining | checkpoint step | AViT | "
               "persistence | ratio |", "|---|---|---|---:|---:|---:|---:|"]  # fmt: skip
        for group in groups.values():
            r, seeds = group[0], sorted(g.get("seed") or 0 for g in group)
            label = run_label(r, main_recipe)
            if len(group) > 1:
                label += f", seeds {', '.join(map(str, seeds))}"
            avit = [g["avit"] for g in group]
            md.append(f"| {r['variant']} | {label} | {r['trained_on']} | "
                      f"{r['ckpt_step']} | {_seeds(avit)} | {_f(r['persistence'])} | "
                      f"{_f(float(np.mean(avit)) / r['persistence'])} |")  # fmt: skip
        md += _zero_shot_note(ones)
    return md


def _fields_md(ones: list[dict], bases: list[dict], main_recipe: str | None) -> list[str]:
    """One-step NRMSE field by field, where the cells recorded it (``fields`` of a one-step
    cell, ``nrmse_fields`` of a baseline's): the mean over fields can beat persistence while
    one field stays at persistence, which only this shows."""
    flat: dict[str, dict[str, float]] = {}  # variant -> field -> persistence (same test files)
    rows = []
    for r in sorted(ones, key=_run_order):
        if not r.get("fields") or not r["trained_on"]:
            continue
        flat.setdefault(r["variant"], {k: v["persistence"] for k, v in r["fields"].items()})
        label = run_label(r, main_recipe) + (f" seed {r['seed']}" if r.get("seed") else "")
        rows.append((r["variant"], f"MPP {label} @ {r['ckpt_step']}",
                     {k: v["avit"] for k, v in r["fields"].items()}))  # fmt: skip
    for b in sorted(bases, key=lambda b: (b["variant"], b.get("tag") or "", b["step"])):
        if b.get("nrmse_fields"):
            name = BASELINE_NAMES[b["arch"]] + (f" ({b['tag']})" if b.get("tag") else "")
            name += f" seed {b['seed']}" if b.get("seed") else ""
            rows.append((b["variant"], f"{name}, {b['recipe']} @ {b['step']}",
                         b["nrmse_fields"]))  # fmt: skip
    if not rows:
        return []
    md = ["", "### One field at a time", "",
          "One-step NRMSE of each field on the held-out test files (their mean is the figure "
          "above); in brackets, the ratio to persistence of that field.", "",
          "| variant | model | field | NRMSE (x persistence) | persistence |",
          "|---|---|---|---:|---:|"]  # fmt: skip
    for variant, model, fields in sorted(rows, key=lambda r: r[0]):
        for field, v in fields.items():
            p = flat.get(variant, {}).get(field)
            ratio = f" ({v / p:.2f}x)" if p else ""
            md.append(f"| {variant} | {model} | {field} | {_f(v)}{ratio} | {_f(p) or '-'} |")
    return md


def _zero_shot_note(rows: list[dict]) -> list[str]:
    """Rows of systems held out of pretraining whose AViT equals persistence exactly.

    Their field slots were never trained: the delta head's output weights start at zero
    (``predict_delta``) and stay there, so the model returns its last input frame. Such a
    row is persistence by construction, not a measured zero-shot result.
    """
    same = sorted({r["variant"] for r in rows if not r["trained_on"]
                   and r["avit"] == r["persistence"]})  # fmt: skip
    if not same:
        return []
    return ["", f"Held out of pretraining and equal to persistence by construction: "
            f"{', '.join(same)}. Their field slots were never trained, and the delta head's "
            "output weights for an untrained slot are still their initial zeros, so the model "
            "returns its last input frame; these rows say nothing about transfer (see the "
            "transfer section for the fine-tuned figures)."]  # fmt: skip


def _rollout_md(rolls: list[dict], main_recipe: str | None,
                brolls: list[dict] | None = None) -> list[str]:  # fmt: skip
    md = ["", "## Rollouts on the long held-out trajectories (NRMSE at step k)", "",
          "Issue 13 item 2, with and without the stability recipe: below persistence at "
          "k = 20, and at k = 50 finite and at most 2x persistence, on every system. "
          "Single-task baselines (`baseline-rollout`: each surviving `baselines` run, on "
          "its one system) are rolled out on the same files, context and horizon.",
          ""]  # fmt: skip
    if not rolls and not brolls:
        return md
    ks = ROLLOUT_KS
    md.append("| variant | model: run (recipe) @ step | in pretraining | "
              + " | ".join(f"k={k}" for k in ks) + " | k=20 < persistence | "
              "k=50 finite, <= 2x persistence |")  # fmt: skip
    md.append("|---|---|---|" + "---:|" * len(ks) + "---|---|")

    def vals(curve: list[float]) -> str:
        return " | ".join(_f(curve[k - 1]) if k <= len(curve) else "" for k in ks)

    def label(r: dict) -> str:
        if "arch" in r:  # a single-task baseline
            seed = f" seed {r['seed']}" if r.get("seed") else ""
            return (f"{BASELINE_NAMES[r['arch']]}: {r.get('tag') or 'baseline'} "
                    f"({r['recipe']}){seed}")  # fmt: skip
        return run_label(r, main_recipe) + (f" seed {r['seed']}" if r.get("seed") else "")

    def row(variant: str, r: dict) -> str:
        return (f"| {variant} | {label(r)} @ {r['ckpt_step']} | "
                f"{r.get('trained_on', True)} | {vals(_model_curve(r))} | "
                f"{_yn(r['below_persistence_k20'])} | "
                f"{_yn(r['finite_within_2x_k50'])} |")  # fmt: skip

    brolls = brolls or []
    for variant in sorted({r["variant"] for r in rolls + brolls}):
        mine = sorted((r for r in rolls if r["variant"] == variant), key=_run_order)
        base = sorted((r for r in brolls if r["variant"] == variant),
                      key=lambda r: (r["arch"], r.get("tag") or "", r["ckpt_step"]))  # fmt: skip
        md += [row(variant, r) for r in mine + base]
        md.append(f"| {variant} | persistence | | {vals((mine + base)[0]['persistence'])} | | |")
    md += _zero_shot_note(rolls)
    md += ["", "Per run and checkpoint, on the pretraining systems:", ""]
    trained = [r for r in rolls if r["trained_on"]] + brolls
    for lab, step in sorted({(label(r), r["ckpt_step"] or 0) for r in trained}):
        mine = [r for r in trained if label(r) == lab and (r["ckpt_step"] or 0) == step]
        parts = []
        for key, words in (
            ("below_persistence_k20", "below persistence at k=20"),
            ("finite_within_2x_k50", "finite and <= 2x persistence at k=50"),
        ):
            ok = sorted(r["variant"] for r in mine if r[key])
            parts.append(f"{words} on {len(ok)} of {len(mine)}"
                         + (f" ({', '.join(ok)})" if ok else ""))  # fmt: skip
        md.append(f"- {lab}, step {step}: " + "; ".join(parts) + ".")
    return md


def _baseline_table(
    bases: list[dict], pretrained: dict[str, dict], tag: str | None = None
) -> list[str]:
    """Item 1's comparison: the pretrained AViT against single-task models per system.

    ``tag``: baselines run again under that tag with the pretrained model's recipe (e.g. on
    the schedule of a later pretrained checkpoint, ``baselines --tag T --train-set ...``)."""
    if not bases:
        return []
    steps = sorted({b["step"] for b in bases})
    cols = [(a, k) for a in ("avit", "fno") for k in steps]
    names = BASELINE_NAMES
    pre_steps = sorted({p["ckpt_step"] for p in pretrained.values() if p.get("ckpt_step")})
    if set(pre_steps) <= set(steps):
        budget = ("at the pretrained model's step it has seen as many samples as the "
                  "pretrained model saw over all its systems (the issue's equal budget), at a "
                  "third of it as many as the pretrained model saw of that system")  # fmt: skip
    else:
        budget = (f"the pretrained model shown is at step {', '.join(map(str, pre_steps))}, "
                  f"past every baseline's ({max(steps)} at most): this table is NOT at equal "
                  "budget; the baselines have seen fewer samples")  # fmt: skip
    schedule = "LR schedule" if tag is None else (
        "LR schedule (the one its checkpoint records or `--train-set` gives, run from step 0; "
        "a pretrained run that was warm-started had more than one leg)"
    )  # fmt: skip
    recipes = "/".join(sorted({b["recipe"] for b in bases if b.get("recipe")}))
    md = ["", "### Against single-task models" + (f" (run `{tag}`)" if tag else ""), "",
          "Each baseline trains on its one system with the pretraining's recipe"
          + (f" ({recipes})" if recipes else "") + f", batch and {schedule} (`baselines`), "
          f"cut at each step shown; {budget}. NRMSE on the same "
          "held-out test files, mean ± sd (seeds) where more than one seed ran (`--seeds`); the "
          "pretrained model is one seed; - = not run yet.", "",
          "| variant | MPP pretrained (step) | "
          + " | ".join(f"{names[a]} @ {k}" for a, k in cols) + " | persistence |",
          "|---|---:|" + "---:|" * len(cols) + "---:|"]  # fmt: skip
    by: dict[tuple, list[float]] = {}
    for b in bases:
        by.setdefault((b["variant"], b["arch"], b["step"]), []).append(b["nrmse"])
    for v in sorted({b["variant"] for b in bases}):
        pre = pretrained.get(v)
        cells = [_seeds(by[(v, a, k)]) if (v, a, k) in by else "-" for a, k in cols]
        pers = next(b["persistence"] for b in bases if b["variant"] == v)
        run = f"{pre['tag']}, " if pre and pre.get("tag") else ""  # the main run's name
        pre_s = f"{_f(pre['avit'])} ({run}{pre['ckpt_step']})" if pre else "-"
        md.append(f"| {v} | {pre_s} | " + " | ".join(cells) + f" | {_f(pers)} |")
    par: dict[str, set[int]] = {}
    for b in bases:  # the FNO's size follows the system's field count
        par.setdefault(b["arch"], set()).add(b["parameters"])
    sizes = {a: "-".join(f"{n:,}" for n in sorted({min(ns), max(ns)})) for a, ns in par.items()}
    md += ["", "Parameters: " + ", ".join(f"{names[a]} {n}" for a, n in sorted(sizes.items()))
           + f"; FNO preset `{FNO_PRESET}` (`scifm.mpp.baselines`)."]  # fmt: skip
    return md


def _baseline_recipe_table(
    bases: list[dict], gaps: list[dict], ones: list[dict] | None = None
) -> list[str]:
    """Baselines retrained with another recipe (tagged cells) beside the same arch, system and
    step with the pretraining's recipe, and the pretrained model of that recipe and step where
    one was run (one-step cells): does the recipe explain a baseline's error?"""
    tagged = [b for b in bases if b.get("tag")]
    if not tagged:
        return []
    main: dict[tuple, list[dict]] = {}
    groups: dict[tuple, list[dict]] = {}
    for b in bases:
        if b.get("tag"):
            groups.setdefault((b["variant"], b["arch"], b["tag"], b["step"]), []).append(b)
        else:
            main.setdefault((b["variant"], b["arch"], b["step"]), []).append(b)
    pre: dict[tuple, list[dict]] = {}  # a pretrained run and its replicas
    for o in ones or []:
        key = (o["variant"], o.get("recipe"), o.get("ckpt_step"), o.get("tag") or "")
        pre.setdefault(key, []).append(o)
    # cells older than the recipe field: the recipe their model was trained with (gap records)
    known = {(g["variant"], g["arch"], g["step"]): g.get("recipe") for g in gaps}
    names = BASELINE_NAMES
    md = ["", "### Baselines: does the stability recipe explain their error?", "",
          "The same baseline (architecture, system, LR schedule, batch, data order) trained "
          "with another TrainRecipe (`baselines --recipe R --tag T`), against the one trained "
          "with the pretraining's recipe; NRMSE on the held-out test files, mean ± sd "
          "(seeds) where more than one seed ran.", "",
          "| variant | model | step | recipe | NRMSE | with the pretraining's recipe (recipe) "
          "| MPP pretrained, this recipe and step | persistence |",
          "|---|---|---:|---|---:|---:|---:|---:|"]  # fmt: skip
    for (variant, arch, _tag, step), group in sorted(groups.items()):
        b, key = group[0], (variant, arch, step)
        ref = main.get(key)
        ref_s = "-"
        if ref:
            named = ref[0].get("recipe") or known.get(key) or "unrecorded"
            ref_s = f"{_seeds([r['nrmse'] for r in ref])} ({named})"
        runs = [k for k in pre if k[:3] == (variant, b["recipe"], step)]
        mpp_s = " / ".join(_seeds([o["avit"] for o in pre[k]]) for k in sorted(runs)) or "-"
        md.append(f"| {variant} | {names[arch]} | {step} | {b['recipe']} "
                  f"| {_seeds([g['nrmse'] for g in group])} | {ref_s} | {mpp_s} "
                  f"| {_f(b['persistence'])} |")  # fmt: skip
    return md


def _gap_table(gaps: list[dict]) -> list[str]:
    """Train vs held-out one-step NRMSE, and the held-out one with the model's own last frame."""
    if not gaps:
        return []
    names = {"mpp": "MPP pretrained", **BASELINE_NAMES}
    md = ["", "### Train vs held-out, and the window the pushforward grades (one row a run)", "",
          "`mpp_evidence.py gap`: one-step NRMSE of every model still on disk on its training "
          "files and on the held-out test files, and on the test files when the last input "
          "frame is the model's own prediction of it from the frames before (the window a "
          "2-step pushforward grades). Train ~ test rules out overfitting; a model far better "
          "on its own last frame than on the true one learned the pushforward's input, not "
          "the dynamics.", "",
          "| model | variant | step | recipe | train | held-out | held-out, own last frame |",
          "|---|---|---:|---|---:|---:|---:|"]  # fmt: skip
    for g in sorted(gaps, key=lambda g: (g["variant"], g["arch"], g["step"] or 0)):
        model = names.get(g["arch"], g["arch"]) + (f" ({g['tag']})" if g.get("tag") else "")
        model += f" seed {g['seed']}" if g.get("seed") else ""
        md.append(f"| {model} | {g['variant']} | {g['step']} | "
                  f"{g.get('recipe', '-')} | {_f(g['train_nrmse'])} | {_f(g['test_nrmse'])} | "
                  f"{_f(g.get('test_nrmse_own_last'))} |")  # fmt: skip
    return md


def _pm(row: dict, key: str) -> str:
    if row[key] is None:
        return ""
    return f"{row[key]:.4f} ± {row[key + '_std']:.4f}" if row["seeds"] > 1 else _f(row[key])


def _seeds(values: list[float]) -> str:
    """One seed's value, or mean ± sample sd (n seeds)."""
    if len(values) == 1:
        return _f(values[0])
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f} ({len(values)})"


def _f(v) -> str:
    return "" if v is None else f"{v:.4f}"


def _yn(v) -> str:
    return "n/a" if v is None else ("yes" if v else "no")
