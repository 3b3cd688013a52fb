"""The "physics" page: the MPP surrogate against the PDE solver (McCabe et al. 2023).

Pick a system and an initial condition (a seed, or a dam radius / Mach number), run
the solver and the shipped pretrained AViT, and play ground truth, prediction and error
side by side; read NRMSE against time, both wall times, and the benchmark's transfer
plot and one-step table. All compute lives in ``scifm.mpp.demo``.
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
import json
import os
from functools import lru_cache
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from app.layout import make_template
from scifm.core.paths import assets_dir, results_dir

SLUG = "physics"
TITLE = "Physics"
DESCRIPTION = (
    "Multiple Physics Pretraining: one AViT surrogate for shallow water, reaction-diffusion, "
    "incompressible and compressible flow, played against the solver."
)
ORDER = 2

pn.extension()
hv.extension("bokeh")

ASSETS = Path(os.environ.get("SCIFM_MPP_ASSETS", assets_dir() / "mpp"))
BENCHMARK = results_dir() / "mpp.json"
SYSTEM_LABELS = {
    "Shallow water (dam break)": "swe",
    "Diffusion-reaction": "diffreact",
    "Incompressible NS": "ins",
    "Compressible NS, M=0.1": "cns_m0.1",
    "Compressible NS, M=1.0": "cns_m1.0",
}
SPEEDS = {"0.5x": 800, "1x": 400, "2x": 200, "4x": 100}  # player interval in ms
IMG_PX = 224  # displayed side of each field image


@lru_cache(maxsize=2)
def load_surrogate(path: str):
    """(model, systems) of the shipped checkpoint, loaded once per process."""
    from scifm.mpp.experiment import load_surrogate as load

    return load(path, "cpu")


@lru_cache(maxsize=1)
def load_benchmark(path: str) -> dict | None:
    p = Path(path)
    return json.loads(p.read_text()) if p.exists() else None


def field_png(a: np.ndarray, lo: float, hi: float, cmap: str) -> str:
    """A 2-D array as a base64 PNG (nearest upscaling), for an <img> tag."""
    from matplotlib import colormaps
    from PIL import Image

    norm = np.clip((a - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    rgb = (colormaps[cmap](norm.T[::-1])[..., :3] * 255).astype(np.uint8)  # x right, y up
    img = Image.fromarray(rgb).resize((IMG_PX, IMG_PX), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


class PhysicsPage(pn.viewable.Viewer):
    """Solver vs surrogate player, NRMSE curve, wall times, transfer plot and table."""

    system = param.Selector(objects=list(SYSTEM_LABELS.values()), default="swe")
    seed = param.Integer(default=0, doc="random initial condition")
    use_param = param.Boolean(default=False, doc="set the dam radius / Mach number")
    radius = param.Number(default=0.5, doc="SWE dam radius (0.1 - 1.5)")
    mach = param.Number(default=0.5, doc="CNS Mach number (0.01 - 2)")
    steps = param.Integer(default=20, doc="rollout steps")
    field = param.Selector(objects=["h"], default="h")
    frame = param.Integer(default=0)

    def __init__(self, assets: str | Path | None = None, **params) -> None:
        super().__init__(**params)
        self.assets = Path(assets if assets is not None else ASSETS)
        self.result = None
        w = pn.widgets
        self.system_select = w.Select.from_param(
            self.param.system, label="System", options=SYSTEM_LABELS
        )
        self.seed_input = w.IntInput.from_param(self.param.seed, label="Seed")
        self.param_check = w.Checkbox.from_param(
            self.param.use_param, label="Set the physical parameter"
        )
        self.radius_input = w.FloatInput.from_param(self.param.radius, label="Dam radius (SWE)")
        self.mach_input = w.FloatInput.from_param(self.param.mach, label="Mach number (CNS)")
        self.steps_input = w.IntInput.from_param(self.param.steps, label="Rollout steps (1-60)")
        self.run_button = w.Button(
            label="Run solver and surrogate", color="primary", css_classes=["mpp-run"]
        )
        self.run_button.on_click(self._on_click)
        self.progress = w.Progress(value=0, max=100, active=False, sizing_mode="stretch_width")
        self.message = pn.pane.Alert(
            "", alert_type="info", visible=False, css_classes=["mpp-message"]
        )
        self.field_select = w.Select.from_param(self.param.field, label="Field")
        self.player = w.Player(
            label="Frame", start=0, end=0, value=0, interval=400, loop_policy="loop", width=520
        )
        self.player.link(self, value="frame")
        self.speed = w.RadioButtonGroup(label="Speed", options=list(SPEEDS), value="1x")
        self.speed.param.watch(lambda e: setattr(self.player, "interval", SPEEDS[e.new]), "value")
        self.frames_pane = pn.pane.HTML(
            "<i>Press Run.</i>",
            css_classes=["mpp-frames"],
            sizing_mode="stretch_width",
            min_height=280,
        )
        self.times_pane = pn.pane.HTML("", css_classes=["mpp-times"])
        self.curve_pane = pn.pane.HoloViews(self._curve(), css_classes=["mpp-curve"])
        self.bench_panes = self._benchmark_views()

    # -- running ----------------------------------------------------------------------
    def _say(self, text: str, kind: str = "info") -> None:
        self.message.object = text
        self.message.alert_type = kind
        self.message.visible = bool(text)

    def _inputs(self) -> dict:
        from scifm.mpp.demo import check_inputs

        kw = {"seed": int(self.seed), "steps": int(self.steps), "res": 32}
        if self.use_param and self.system == "swe":
            kw["radius"] = float(self.radius)
        if self.use_param and self.system.startswith("cns"):
            kw["mach"] = float(self.mach)
        check_inputs(self.system, **kw)
        return kw

    def _compute(self, kw: dict, progress=None):
        from scifm.mpp.demo import compare

        model, systems = load_surrogate(str(self.assets / "avit_small"))
        index = systems.get(self.system, {}).get("field_index")
        return compare(model, self.system, field_index=index, progress=progress, **kw)

    def _prepare(self) -> dict | None:
        """Checked inputs for ``compare``, or None after showing what is wrong."""
        try:
            kw = self._inputs()
        except (ValueError, TypeError) as exc:
            self._say(f"Bad input: {html.escape(str(exc))}", "danger")
            return None
        if not (self.assets / "avit_small" / "config.json").exists():
            self._say("No shipped model in assets/mpp: run python -m scifm.mpp.assets", "danger")
            return None
        return kw

    def run(self) -> bool:
        """Validate, simulate and roll out synchronously; False (with a message) on failure."""
        kw = self._prepare()
        if kw is None:
            return False
        try:
            self._show(self._compute(kw, self._progress))
        except Exception as exc:  # the solver may reject a state; the server must not fail
            self._say(f"The run failed: {html.escape(str(exc))}", "danger")
            return False
        return True

    def _progress(self, k: int, n: int) -> None:
        self.progress.value = int(100 * k / max(n, 1))

    async def _on_click(self, event=None) -> None:
        """Compute in a worker thread so the server stays responsive; draw on the loop."""
        kw = self._prepare()
        if kw is None:
            return
        self.run_button.disabled = True
        self.progress.active = True
        self.progress.value = 0
        self._say("Running the solver, then the surrogate…", "info")
        try:
            res = await asyncio.to_thread(self._compute, kw, self._progress)
            self._show(res)
        except Exception as exc:  # the server must never fail on user input
            self._say(f"The run failed: {html.escape(str(exc))}", "danger")
        finally:
            self.progress.active = False
            self.run_button.disabled = False

    def _show(self, res) -> None:
        self.result = res
        self.param.field.objects = list(res.field_names)
        self.field = res.field_names[0]
        self.player.end = len(res.nrmse) - 1
        self.player.value = 0
        self.frame = 0
        bad = ~np.isfinite(res.nrmse)
        note = f" The rollout diverged after step {int(np.argmax(bad))}." if bad.any() else ""
        self._say(
            f"Done: {len(res.nrmse)} steps of {res.system}; final NRMSE {res.nrmse[-1]:.3g}.{note}",
            "warning" if note else "success",
        )
        self.times_pane.object = (
            f"<b>Wall time</b> (this run, CPU): solver {res.solver_s:.2f} s for "
            f"{res.context + len(res.nrmse)} frames; surrogate {res.surrogate_s:.2f} s for "
            f"{len(res.nrmse)} frames (ratio {res.solver_s / max(res.surrogate_s, 1e-9):.2f}x)."
        )
        self.curve_pane.object = self._curve()
        self._draw()

    # -- views ------------------------------------------------------------------------
    @param.depends("frame", "field", watch=True)
    def _draw(self) -> None:
        res = self.result
        if res is None or self.field not in res.field_names:
            return
        c = res.field_names.index(self.field)
        k = min(int(self.frame), len(res.nrmse) - 1)
        truth, pred = res.truth[:, c], res.pred[:, c]
        lo, hi = float(np.nanmin(truth)), float(np.nanmax(truth))
        err = np.nan_to_num(pred[k] - truth[k])
        e = float(np.abs(res.error[:, c][np.isfinite(res.error[:, c])]).max(initial=1e-12))
        panels = [
            ("Ground truth (solver)", truth[k], lo, hi, "viridis"),
            ("Prediction (AViT)", np.nan_to_num(pred[k]), lo, hi, "viridis"),
            ("Error (prediction - truth)", err, -e, e, "RdBu_r"),
        ]
        cells = "".join(
            f"<div class='mpp-panel' style='display:inline-block;margin:4px;text-align:center'>"
            f"<div style='font:13px sans-serif'><b>{t}</b></div>"
            f"<img src='data:image/png;base64,{field_png(a, a0, a1, cm)}' width={IMG_PX}>"
            f"<div style='font:11px monospace'>[{a0:.3g}, {a1:.3g}]</div></div>"
            for t, a, a0, a1, cm in panels
        )
        head = (
            f"<div style='font:13px sans-serif'>{html.escape(self.field)}, step {k + 1} "
            f"of {len(res.nrmse)} (NRMSE {res.nrmse[k]:.3g})</div>"
        )
        self.frames_pane.object = head + cells

    def _curve(self) -> hv.Element:
        opts = dict(
            height=260,
            width=520,
            xlabel="rollout step",
            ylabel="NRMSE",
            tools=["hover"],
            title="Rollout error against the solver",
        )
        if self.result is None:
            return hv.Curve([], "step", "NRMSE").opts(**opts)
        n = np.nan_to_num(self.result.nrmse, nan=np.nan)
        return hv.Curve((np.arange(1, len(n) + 1), n), "step", "NRMSE").opts(**opts)

    def _benchmark_views(self) -> list:
        data = load_benchmark(str(BENCHMARK))
        if data is None:
            return [pn.pane.Markdown("No benchmark results yet: run `python benchmarks/mpp.py`.")]
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
            height=300,
            width=520,
            logx=True,
            xlabel="fine-tuning trajectories N",
            ylabel="next-step NRMSE",
            title="Transfer to compressible NS",
            legend_position="top_right",
        )
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

    def sidebar(self) -> list:
        return [
            self.system_select,
            self.seed_input,
            self.param_check,
            self.radius_input,
            self.mach_input,
            self.steps_input,
            self.run_button,
            self.progress,
        ]

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.pane.Markdown(
                "### Solver vs surrogate\nThe shipped AViT (pretrained on five systems at 32²) "
                "rolls out from the solver's first frames; pick a system and press Run."
            ),
            self.message,
            pn.Row(self.field_select, self.speed),
            self.player,
            self.frames_pane,
            pn.Row(self.curve_pane, pn.Column(self.times_pane, width=360)),
            pn.pane.Markdown("### Benchmark"),
            *self.bench_panes,
            sizing_mode="stretch_width",
        )


def page() -> pn.template.BaseTemplate:
    view = PhysicsPage()
    return make_template(TITLE, main=[view], sidebar=view.sidebar())
