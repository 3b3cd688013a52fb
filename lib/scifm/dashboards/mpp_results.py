"""The stored MPP results the physics page shows under its runs (McCabe et al. 2023).

Two result files, one view each: ``benchmarks/results/mpp_evidence.json`` (the 64^2 evidence
model: NRMSE(t) of 50-step rollouts on held-out long trajectories against persistence, and
one-step NRMSE) and ``benchmarks/results/mpp.json`` (the 32^2 demo model: transfer to
compressible NS and one-step NRMSE). Captions are written from the numbers in the file, never
typed in. Pure views of a dict: no compute, no model.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

LABELS = {"swe": "shallow water", "diffreact": "diffusion-reaction", "ins": "incompressible NS"}
COLOURS = {"swe": "#1f77b4", "diffreact": "#2ca02c", "ins": "#d62728", "cns_m0.1": "#9467bd",
           "cns_m1.0": "#8c564b"}  # fmt: skip
CHECK_STEPS = (20, 50)  # the bars: below persistence at 20, <= 2x persistence at 50


@lru_cache(maxsize=4)
def load_results(path: str) -> dict | None:
    """A results JSON, read once per process (None when the file is absent)."""
    p = Path(path)
    return json.loads(p.read_text()) if p.exists() else None


def results_views(data: dict | None, path: str | Path) -> list:
    """The views of whichever results file ``data`` is (or a line saying it is missing)."""
    if data is None:
        return [pn.pane.Markdown(f"No stored results in `{path}` yet.")]
    if "rollouts" in data:
        return evidence_views(data)
    return demo_views(data)


def _curve(x: np.ndarray, y: np.ndarray, label: str, colour: str, dash: str) -> hv.Curve:
    # dimension names of their own: the page's run curve ("step", "NRMSE") keeps its axes
    curve = hv.Curve((x, y), "stored_step", "stored_nrmse", label=label)
    return curve.opts(color=colour, line_dash=dash)


def evidence_plot(rollouts: list[dict]) -> hv.Overlay:
    """NRMSE(t), AViT (solid) and persistence (dashed) per system the model trained on."""
    curves = []
    for r in rollouts:
        if not r.get("trained_on", True):
            continue
        v, colour = r["variant"], COLOURS.get(r["variant"], "#555")
        x = np.arange(1, len(r["avit"]) + 1)
        name = LABELS.get(v, v)
        curves.append(_curve(x, np.asarray(r["avit"]), f"{name}: AViT", colour, "solid"))
        curves.append(_curve(x, np.asarray(r["persistence"]), f"{name}: persistence", colour,
                             "dashed"))  # fmt: skip
    steps = max((len(r["avit"]) for r in rollouts), default=0)
    return hv.Overlay(curves).opts(
        height=340, width=820, logy=True, xlabel="rollout step",
        ylabel="NRMSE (held-out trajectories, log)", legend_position="right",
        title=f"Stored {steps}-step rollouts: AViT vs persistence", tools=["hover"],
    )  # fmt: skip


def _at(r: dict, step: int) -> tuple[float, float] | None:
    if len(r["avit"]) < step:
        return None
    return float(r["avit"][step - 1]), float(r["persistence"][step - 1])


def _judge(a: float, p: float) -> str:
    ratio = a / p if p > 0 else float("inf")
    if not np.isfinite(a):
        return "not finite"
    if a < p:
        return "below persistence"
    if a >= 1.0 and ratio > 2.0:
        return f"diverges ({ratio:.3g}x persistence)"
    if ratio > 2.0:  # finite and small, yet past issue 13's bar of 2x persistence
        return f"more than 2x persistence ({ratio:.3g}x)"
    return f"above persistence ({ratio:.3g}x)"


def rollout_findings(rollouts: list[dict]) -> str:
    """The caption of ``evidence_plot``, read from the numbers: each trained system at steps
    20 and 50 against persistence, and what the untrained systems do."""
    trained = [r for r in rollouts if r.get("trained_on", True)]
    parts = []
    for r in trained:
        cells = []
        for k in CHECK_STEPS:
            got = _at(r, k)
            if got is not None:
                cells.append(f"step {k}: {got[0]:.3g} vs {got[1]:.3g}, {_judge(*got)}")
        parts.append(f"{LABELS.get(r['variant'], r['variant'])} ({'; '.join(cells)})")
    below20 = [r for r in trained if (g := _at(r, 20)) is not None and g[0] < g[1]]
    head = (
        f"Below persistence at step 20 on {len(below20)} of {len(trained)} trained systems. "
        if trained
        else ""
    )
    first = rollouts[0] if rollouts else {}
    text = (
        f"{head}AViT vs persistence, NRMSE: {'; '.join(parts)}. Mean over "
        f"{first.get('n_traj', '?')} held-out long trajectories per system, "
        f"{first.get('context', '?')} context frames, checkpoint step "
        f"{first.get('ckpt_step', '?')}."
    )
    for r in rollouts:
        if r.get("trained_on", True):
            continue
        same = np.allclose(r["avit"], r["persistence"], rtol=1e-4, atol=1e-6)
        what = "equal to persistence at every step" if same else "not plotted"
        text += (f" {r['variant']} was held out of pretraining: without fine-tuning its "
                 f"rollout is {what}, so it is left out of the plot.")  # fmt: skip
    return text


BASELINE_COLUMNS = {"avit": "single-task AViT", "fno": "FNO"}


def one_step_table(one_step: list[dict], baselines: list[dict] = ()) -> pd.DataFrame:
    """Variant -> AViT and persistence one-step NRMSE, their ratio, in pretraining, and the
    single-task baselines trained to the same step (equal budget) where they were run."""
    df = pd.DataFrame(one_step).set_index("variant")
    df["ratio"] = df["avit"] / df["persistence"]
    cols = {"trained_on": "in pretraining", "avit": "AViT", "persistence": "persistence",
            "ratio": "AViT / persistence"}  # fmt: skip
    steps = df["ckpt_step"]
    for arch, label in BASELINE_COLUMNS.items():
        mine = [b for b in baselines if b["arch"] == arch]
        at_step = {b["variant"]: b["nrmse"] for b in mine if b["step"] == steps.get(b["variant"])}
        if at_step:
            df[arch] = pd.Series(at_step)
            cols[arch] = f"{label} (equal budget)"
    return df[list(cols)].rename(columns=cols).round(4)


def field_findings(one_step: list[dict]) -> str:
    """One line from the one-step rows' ``fields``: each trained system's fields as AViT /
    persistence, and which of them the model leaves at persistence ("" when no row has
    fields): a system's mean can beat persistence while a field does not move at all."""
    parts, stuck = [], []
    for r in one_step:
        fields = r.get("fields")
        if not fields or not r.get("trained_on", True):
            continue
        name = LABELS.get(r["variant"], r["variant"])
        ratios = {
            k: v["avit"] / v["persistence"] for k, v in fields.items() if v["persistence"] > 0
        }
        parts.append(f"{name}: " + ", ".join(f"{k} {x:.2f}x" for k, x in ratios.items()))
        stuck += [f"{name} {k}" for k, x in ratios.items() if x >= 0.99]
    if not parts:
        return ""
    text = f"Field by field, one step, AViT / persistence: {'; '.join(parts)}."
    if stuck:
        text += (f" Left at persistence: {', '.join(stuck)}; the model does not change "
                 "these fields, so a rollout of their system stays near persistence for that "
                 "reason.")  # fmt: skip
    return text


def evidence_views(data: dict) -> list:
    """Plot, caption and one-step table of ``mpp_evidence.json``."""
    cmd = data.get("run", {}).get("command", "benchmarks/mpp_evidence.py")
    plot = evidence_plot(data["rollouts"])
    title = ("**One-step NRMSE on the held-out test trajectories** (issue 13's goal: "
             "AViT <= 0.5x persistence; single-task models at equal budget beside it)")  # fmt: skip
    table = one_step_table(data["one_step"], data.get("baselines", []))
    return [
        pn.pane.HoloViews(plot, linked_axes=False, css_classes=["mpp-evidence"]),
        pn.pane.Markdown(rollout_findings(data["rollouts"]), css_classes=["mpp-caption"]),
        pn.pane.Markdown(title),
        pn.pane.DataFrame(table, css_classes=["mpp-table"]),
        pn.pane.Markdown(field_findings(data["one_step"]), css_classes=["mpp-fields"]),
        pn.pane.Markdown(f"From `{cmd}` (benchmarks/results/mpp_evidence.md)."),
    ]


def demo_views(data: dict) -> list:
    """Transfer plot, one-step table and scale note of the 32^2 demo's ``mpp.json``."""
    df = pd.DataFrame(data["transfer"])
    g = df.groupby(["system", "init", "n_traj"])["next_step"].mean().reset_index()
    curves = [
        hv.Curve(sub, "n_traj", "next_step", label=f"{s} {init}").opts(
            line_dash="solid" if init == "pretrained" else "dashed"
        )
        * hv.Scatter(sub, "n_traj", "next_step", label=f"{s} {init}")
        for (s, init), sub in g.groupby(["system", "init"])
    ]
    plot = hv.Overlay(curves).opts(
        height=300, width=520, logx=True, xlabel="fine-tuning trajectories N",
        ylabel="next-step NRMSE", title="Transfer to compressible NS",
        legend_position="top_right",
    )  # fmt: skip
    table = pd.DataFrame(data["one_step"]).T
    sc = data["scale"]
    note = (
        f"Scale: {sc['res']}² grids, AViT '{sc['model']}' ({sc['params']:,} params), "
        f"{sc['pretrain_steps_all']} pretraining steps on a shared CPU; the paper "
        "used 128², 7-400M parameters and 200k GPU steps."
    )
    return [
        pn.pane.HoloViews(plot, css_classes=["mpp-transfer"]),
        pn.pane.Markdown("**One-step NRMSE (held-out trajectories)**"),
        pn.pane.DataFrame(table.round(4), css_classes=["mpp-table"]),
        pn.pane.Markdown(note),
    ]
