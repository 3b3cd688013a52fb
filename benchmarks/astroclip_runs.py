"""Where the AstroCLIP evidence runs stand (issue 14 item 2): their held-out curves.

Reads the run folders of ``scripts/astroclip_evidence.sh`` and ``scifm astroclip
pretrain-image --eval-every`` (each ``eval.jsonl``, kept up to the run's checkpoint, as a
resumed run keeps it) and writes ``benchmarks/results/astroclip_runs.{json,md}`` and a
figure of the curves: per run its last step, the figure the issue names (the zero-shot
k-NN redshift R^2; SpecFormer's masked loss and the alignment's recall@10 are what its
plateau rule watches), whether it has plateaued (``scifm.core.plateau``: no 1 % gain over
the last 20 % of the steps, at least 3 evaluations there) and the paper's figure beside it.
Runs may still be going: the report says where each one stands, it does not finish them.

    .venv/bin/python benchmarks/astroclip_runs.py                  # the default folders below
    .venv/bin/python benchmarks/astroclip_runs.py --run spectrum=runs/astroclip_spec_evidence

A folder that does not exist is listed as not started, unless the report being replaced
(``--previous``, default the one in the results folder) holds that run's curve read from the
same folder: then that row is kept, marked as read from the earlier report (a run folder lost
with a machine keeps its measured curve).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scifm.astroclip.train import align_plateau
from scifm.core.checkpoint import CONFIG_FILE, read_record
from scifm.core.plateau import PlateauRule, run_curve, trainer_state
from scifm.core.report import repo_path, results_dir, run_info, write_report
from scifm.core.resume import CHECKPOINT_DIR

ROOT = Path(__file__).resolve().parents[1]
RUNS = {  # label -> (default folder, stage)
    "SpecFormer (evidence preset)": ("runs/astroclip_spec_evidence", "spectrum"),
    "SpecFormer resumed past its plateau (same 12,000-step cosine)": (
        "runs/astroclip_spec_cont",
        "spectrum",
    ),
    "image SSL, MoCo-v2 (64 px)": ("runs/astroclip_img64_moco", "image"),
    "image SSL, VICReg (64 px)": ("runs/astroclip_img64_vicreg", "image"),
    "alignment (CLIP heads)": ("runs/astroclip_clip_evidence", "align"),
    "alignment resumed to a 6,000-step cosine": ("runs/astroclip_clip_restart3600", "align"),
    "alignment, fresh 6,000-step cosine": ("runs/astroclip_clip6000", "align"),
    "alignment, fresh 4,500-step cosine": ("runs/astroclip_clip4500", "align"),
    "alignment, fresh 9,000-step cosine (plateau rule on)": ("runs/astroclip_clip9000", "align"),
    "alignment, fresh 12,000-step cosine (plateau rule on)": ("runs/astroclip_clip12k", "align"),
    "alignment, image encoder's top block trained (3,000 steps)": (
        "runs/astroclip_clip_ft1",
        "align",
    ),
    "alignment, image encoder's 3 blocks trained (3,000 steps)": (
        "runs/astroclip_clip_ft3",
        "align",
    ),
    "alignment, image encoder's 3 blocks trained, batch 512 (750 steps)": (
        "runs/astroclip_clip_ft3_b512",
        "align",
    ),
    "alignment, seg32 head, embedding 1024, SpecFormer step 7,200 (3,000 steps)": (
        "runs/astroclip_clip_seg32_d1024",
        "align",
    ),
    "alignment, image encoder's 3 blocks trained, batch 512 (3,000 steps)": (
        "runs/astroclip_clip_ft3_b512x3000",
        "align",
    ),
}
# The rule each stage is watched by (train.py's SPECTRUM_PLATEAU / ALIGN_PLATEAU; the image
# runs by their k-NN redshift R^2, the "validation figure" for them).
RULES = {
    "spectrum": PlateauRule(key="val_loss"),
    "align": PlateauRule(key="recall@10", higher_is_better=True),
    "image": PlateauRule(key="knn_r2_redshift", higher_is_better=True),
}
# The figure shown per stage, with the paper's (Parker et al. 2024) and issue 14's target.
HEADLINE = {
    "spectrum": ("knn_r2_redshift", 0.99, "AstroCLIP spectrum >= 0.98 (after alignment)"),
    "image": ("knn_r2_redshift", 0.63, "reported against the paper's 0.63"),
    "align": ("recall@10", None, "recall@10 >= 0.5"),
}


def stage_of(curve: list[dict]) -> str:
    """The stage a curve comes from, by what it measured."""
    keys = set(curve[0]) if curve else set()
    if "val_loss" in keys:
        return "spectrum"
    if "recall@10" in keys:
        return "align"
    if "knn_r2_redshift" in keys:
        return "image"
    raise ValueError(f"an evaluation record with keys {sorted(keys)}: not an AstroCLIP stage")


def summarize(label: str, folder: Path, stage: str) -> dict:
    """One run: its curve, last step, headline figure, best, plateau verdict."""
    curve = run_curve(folder) if folder.exists() else []
    row: dict = {"run": label, "folder": repo_path(folder), "stage": stage}
    if not curve:
        return row | {"status": "not started" if not folder.exists() else "no evaluation yet"}
    stage = stage_of(curve)
    rule, (key, paper, target) = RULES[stage], HEADLINE[stage]
    schedule = trainer_state(folder).get("schedule")  # None: older than that record
    if stage == "align" and schedule:  # as the run itself watches it: no verdict before half
        rule = align_plateau(int(schedule["steps"]))
    values = [r[key] for r in curve if key in r]
    cfg = _config(folder)
    row |= {
        "stage": stage, "status": rule.verdict(curve),
        "steps": int(curve[-1]["step"]), "evaluations": len(curve),
        "rule": {"key": rule.key, "window": rule.window, "rel": rule.rel, "points": rule.points,
                 "min_steps": rule.min_steps},
        "schedule": schedule,
        "headline": key, "last": values[-1] if values else None,
        "best": (max(values) if values else None), "paper": paper, "target": target,
        "config": cfg, "curve": curve,
    }  # fmt: skip
    if rule.key != key:
        row["rule_last"] = curve[-1].get(rule.key)
    return row


def keep_lost(rows: list[dict], previous: Path) -> list[dict]:
    """Rows whose folder is gone, replaced by the previous report's row for the same run and
    folder when that one had a curve (marked ``from_report``)."""
    if not previous.is_file():
        return rows
    try:
        old = json.loads(previous.read_text())
        by = {(r["run"], r["folder"]): r for r in old["runs"]}
        date = old["run"]["date_utc"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"--previous {previous}: not an astroclip_runs report ({err})") from err
    kept = []
    for r in rows:
        was = by.get((r["run"], r["folder"]))
        if r["status"] == "not started" and was and was.get("curve"):
            if "from_report" in was:  # already a stand-in: keep it as first marked
                r = was
            else:
                status = f"{was['status']} (folder gone; as in the report of {date})"
                r = was | {"from_report": f"{repo_path(previous)} of {date}", "status": status}
        kept.append(r)
    return kept


def _config(folder: Path) -> dict:
    """The run's model config and training extras from its checkpoint (a few fields)."""
    if not (folder / CHECKPOINT_DIR / CONFIG_FILE).is_file():
        return {}
    extra = read_record(folder / CHECKPOINT_DIR).get("extra", {})
    out = {k: extra[k] for k in ("preset", "method", "batch_size") if k in extra}
    if isinstance(extra.get("split"), dict):  # how, and the sizes (no machine paths, no ids)
        keep = ("how", "n_train", "n_test")
        out["split"] = {k: v for k, v in extra["split"].items() if k in keep}
    return out


def figure(rows: list[dict], out: Path) -> Path | None:
    """The headline figure of every started run against its step (one panel per stage)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    started = [r for r in rows if r.get("curve")]
    if not started:
        return None
    stages = sorted({r["stage"] for r in started})
    fig, axes = plt.subplots(1, len(stages), figsize=(4.2 * len(stages), 3.4), squeeze=False)
    for ax, stage in zip(axes[0], stages, strict=True):
        for r in (r for r in started if r["stage"] == stage):
            pts = [(c["step"], c[r["headline"]]) for c in r["curve"] if r["headline"] in c]
            ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=r["run"])
            if r["paper"] is not None:
                ax.axhline(r["paper"], ls=":", c="grey")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(HEADLINE[stage][0])
        ax.set_title(stage)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "astroclip_runs.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render(rows: list[dict], fig: Path | None) -> str:
    lines = [
        "Held-out evaluations of the issue-14 evidence runs, read from their folders (up to "
        "each run's checkpoint). Plateau: no 1 % gain of the watched figure over the last "
        "20 % of the steps, with at least 3 evaluations there (`scifm.core.plateau`). "
        "Dotted lines in the figure: the paper's zero-shot figure. SpecFormer's k-NN R^2 is "
        "on its own pooled tokens before alignment; the paper's 0.99 is the aligned "
        "spectrum embedding's. During a run the k-NN is fitted on `n_fit` training galaxies "
        "and scored on `n_eval` held-out ones (fewer than the benchmark's), so its R^2 reads "
        "lower than `astroclip.md`'s.",
        "",
        "| run | status | steps | evaluations | figure | last | best | paper | issue's target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "steps" not in r:
            lines.append(f"| {r['run']} | {r['status']} | | | | | | | |")
            continue
        paper = "" if r["paper"] is None else f"{r['paper']:.2f}"
        lines.append(
            f"| {r['run']} | {r['status']} | {r['steps']} | {r['evaluations']} | "
            f"{r['headline']} | {_f(r['last'])} | {_f(r['best'])} | {paper} | {r['target']} |"
        )
    for r in rows:
        if r.get("curve"):
            lines += ["", f"### {r['run']} (`{r['folder']}`)", ""]
            if r.get("from_report"):
                lines += [f"Folder gone; curve as read by `{r['from_report']}`.", ""]
            lines.append(_curve_table(r))
    if fig is not None:
        lines += ["", f"Figure: `{fig.name}`."]
    return "\n".join(lines)


def _curve_table(r: dict) -> str:
    keys = [k for k in ("val_loss", "knn_r2_redshift", "knn_r2_log_mstar", "knn_r2_log_ssfr",
                        "recall@1", "recall@10", "recall@100", "s2i_recall@10", "n_fit", "n_eval")
            if any(k in c for c in r["curve"])]  # fmt: skip
    out = ["| step | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for c in r["curve"]:
        out.append(f"| {c['step']} | " + " | ".join(_f(c.get(k)) for k in keys) + " |")
    return "\n".join(out)


def _f(v) -> str:
    return "" if v is None else str(v) if isinstance(v, int) else f"{v:.4f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--run", action="append", default=None, metavar="LABEL=FOLDER",
                    help="a run folder and its label (repeat); default: RUNS")  # fmt: skip
    ap.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    ap.add_argument("--previous", default=None,
                    help="the report whose rows stand in for lost folders (default: "
                         "astroclip_runs.json in the results folder; 'none': off)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.run:
        runs = {}
        for item in args.run:
            label, sep, folder = item.partition("=")
            if not sep or not label or not folder:
                ap.error(f"--run {item!r}: expected LABEL=FOLDER")
            runs[label] = (folder, "")
    else:
        runs = RUNS
    rows = [summarize(label, (ROOT / f) if not Path(f).is_absolute() else Path(f), stage)
            for label, (f, stage) in runs.items()]  # fmt: skip
    out = Path(args.out) if args.out else results_dir()
    previous = args.previous or out / "astroclip_runs.json"
    if args.previous != "none":
        rows = keep_lost(rows, Path(previous))
    out.mkdir(parents=True, exist_ok=True)
    fig = figure(rows, out)
    info = run_info(argv=argv, data={"runs": {r["run"]: r["folder"] for r in rows}},
                    note="2 CPU cores shared with other jobs; runs may still be going")  # fmt: skip
    write_report("astroclip_runs", {"runs": rows}, render(rows, fig), info=info,
                 title="AstroCLIP evidence runs: held-out curves", out_dir=out)  # fmt: skip
    for r in rows:
        print(f"{r['run']}: {r['status']}" + (f" at step {r['steps']}, {r['headline']} "
              f"{_f(r['last'])}" if "steps" in r else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
