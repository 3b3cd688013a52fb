"""Rollout viewer: PDE frames played side by side, solver against surrogates (McCabe et al. 2023).

Plays ground truth, each surrogate's prediction and its error frame by frame, with the
NRMSE of every rollout step. Given an MPP model (a checkpoint written by ``scifm mpp
pretrain/finetune``, the shipped one, or one a notebook just trained) it also runs new
comparisons: pick a system and an initial condition (a seed, a dam radius or a Mach
number), simulate, roll the model out; it opens on a first rollout of the default inputs,
computed once per process and model and shared by every viewer. A run's status says how
good it is: green only when the final NRMSE is below persistence's (the last given frame
repeated), yellow when it is not, red when it diverged or ends at NRMSE >= 1
(``rollouts.verdict``). Given only
trajectories (``from_trajectories``) it plays the solver's frames. Compute lives in
``scifm.mpp.demo`` and ``scifm.pde``.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import threading
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import holoviews as hv
import holoviews.plotting.bokeh  # loads the backend whose plot options are set here
import numpy as np
import pandas as pd
import panel as pn
import param
import torch

from scifm.core.paths import assets_dir, results_dir
from scifm.dashboards.rollouts import (
    IMG_PX,
    Rollout,
    as_numpy,
    colorbar_html,
    field_label,
    field_png,
    verdict,
)
from scifm.dashboards.style import STYLESHEET
from scifm.mpp.demo import Comparison, check_inputs, compare
from scifm.mpp.experiment import load_surrogate as _load_surrogate

SYSTEM_LABELS = {
    "Shallow water (dam break)": "swe",
    "Diffusion-reaction": "diffreact",
    "Incompressible NS": "ins",
    "Compressible NS, M=0.1": "cns_m0.1",
    "Compressible NS, M=1.0": "cns_m1.0",
}
SPEEDS = {"0.5x": 800, "1x": 400, "2x": 200, "4x": 100}  # player interval in ms


def default_assets() -> Path:
    """The shipped MPP model's folder (``SCIFM_MPP_ASSETS`` overrides)."""
    return Path(os.environ.get("SCIFM_MPP_ASSETS", assets_dir() / "mpp"))


@lru_cache(maxsize=4)
def load_surrogate(path: str):
    """(model, systems) of a checkpoint (or a run folder holding ``checkpoint/``), once per
    process: every session shares the model (it is only read)."""
    return _load_surrogate(path, "cpu")


_FIRST_RUNS: dict[tuple, tuple[torch.nn.Module, Comparison]] = {}
_FIRST_LOCK = threading.Lock()


def first_run(model: torch.nn.Module, system: str, *, field_index=None, **kw) -> Comparison:
    """``compare(model, system, **kw)`` once per process and model: every viewer of the same
    model opens on the same rollout (the cache holds the model, so its id stays its own)."""
    key = (id(model), system, tuple(field_index or ()), *sorted(kw.items()))
    with _FIRST_LOCK:
        if key not in _FIRST_RUNS:
            res = compare(model, system, field_index=field_index, **kw)
            if len(_FIRST_RUNS) >= 8:
                _FIRST_RUNS.pop(next(iter(_FIRST_RUNS)))
            _FIRST_RUNS[key] = (model, res)
        return _FIRST_RUNS[key][1]


@lru_cache(maxsize=2)
def load_benchmark(path: str) -> dict | None:
    p = Path(path)
    return json.loads(p.read_text()) if p.exists() else None


class RolloutViewer(pn.viewable.Viewer):
    """Frame player (truth, predictions, errors), NRMSE curve, and new runs given a model."""

    system = param.Selector(objects=list(SYSTEM_LABELS.values()), default="swe")
    seed = param.Integer(default=0, doc="random initial condition")
    use_param = param.Boolean(default=False, doc="set the dam radius / Mach number")
    radius = param.Number(default=0.5, doc="SWE dam radius (0.1 - 1.5)")
    mach = param.Number(default=0.5, doc="CNS Mach number (0.01 - 2)")
    steps = param.Integer(default=20, doc="rollout steps")
    shown = param.Selector(objects=[], doc="which rollout is played")
    field = param.Selector(objects=["h"], default="h")
    frame = param.Integer(default=0)

    def __init__(
        self,
        model: torch.nn.Module | None = None,
        *,
        systems: Mapping[str, dict] | None = None,
        rollouts: Mapping[str, Rollout] | None = None,
        res: int = 32,
        benchmark: str | Path | None = None,
        message: str = "",
        first: bool = True,
        **params,
    ) -> None:
        """``model``: an MPP AViT that new runs roll out (``systems``: its checkpoint's
        variant -> field_index record; ``res``: the grid it was trained on); ``rollouts``:
        label -> Rollout played from the start; ``benchmark``: a ``benchmarks/mpp.py`` JSON;
        ``first``: with a model and no ``rollouts``, open on a rollout of the default inputs
        (``first_run``: computed once per process and model)."""
        super().__init__(**params)
        self.model, self.res, self.systems = model, int(res), dict(systems or {})
        self.result: Comparison | None = None  # the last run's comparison
        self.benchmark = Path(benchmark) if benchmark is not None else None
        self.rollouts: dict[str, Rollout] = dict(rollouts or {})
        known = [v for v in SYSTEM_LABELS.values() if not self.systems or v in self.systems]
        self.param.system.objects = known or list(SYSTEM_LABELS.values())
        if self.system not in self.param.system.objects:
            self.system = self.param.system.objects[0]
        w = pn.widgets
        self.system_select = w.Select.from_param(
            self.param.system, label="System",
            options={k: v for k, v in SYSTEM_LABELS.items() if v in self.param.system.objects},
        )  # fmt: skip
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
        self.shown_select = w.Select.from_param(self.param.shown, label="Rollout")
        self.field_select = w.Select.from_param(self.param.field, label="Field")
        self.player = w.Player(
            label="Frame", start=0, end=0, value=0, interval=400, loop_policy="loop", width=520
        )
        self.player.link(self, value="frame")
        self.speed = w.RadioButtonGroup(label="Speed", options=list(SPEEDS), value="1x")
        self.speed.param.watch(lambda e: setattr(self.player, "interval", SPEEDS[e.new]), "value")
        self.frames_pane = pn.pane.HTML(
            "<i>Press Run.</i>" if model is not None else "<i>No rollout to show.</i>",
            css_classes=["mpp-frames"], sizing_mode="stretch_width", min_height=280,
            stylesheets=[STYLESHEET],
        )  # fmt: skip
        self.times_pane = pn.pane.HTML("", css_classes=["mpp-times"])
        self.curve_pane = pn.pane.HoloViews(self._curve(), css_classes=["mpp-curve"])
        self.bench_panes = self._benchmark_views() if self.benchmark is not None else []
        if message:
            self._say(message, "danger")
        if self.rollouts:
            self._refresh_rollouts(next(iter(self.rollouts)))
        elif model is not None and first:
            try:
                kw = self._inputs()
                index = self.systems.get(self.system, {}).get("field_index")
                self._show(first_run(model, self.system, field_index=index, **kw),
                           "First rollout (default inputs, computed once when the server "
                           "started). ")  # fmt: skip
            except Exception as exc:  # the page must open even if the first run fails
                self._say(f"The first rollout failed: {html.escape(str(exc))}", "danger")

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, *, res: int = 32, **params) -> RolloutViewer:
        """An MPP checkpoint folder, or a run folder holding ``checkpoint/`` (``scifm mpp
        pretrain/finetune --out``); ``res``: the grid side it was trained on."""
        model, systems = load_surrogate(str(path))
        return cls(model, systems=systems, res=res, **params)

    @classmethod
    def from_assets(cls, root: str | Path | None = None, **params) -> RolloutViewer:
        """The shipped model (``assets/mpp/avit_small``) and the stored benchmark."""
        path = Path(root if root is not None else default_assets()) / "avit_small"
        bench = results_dir() / "mpp.json"
        if not (path / "config.json").exists():
            return cls(benchmark=bench, message=f"No shipped model in {path}: run "
                       "python -m scifm.mpp.assets", **params)  # fmt: skip
        return cls.from_checkpoint(path, benchmark=bench, **params)

    @classmethod
    def from_trajectories(cls, trajectories: Mapping[str, object], index: int = 0,
                          **params) -> RolloutViewer:  # fmt: skip
        """Solver frames only: name -> trajectory (``scifm.pde.simulate`` result, with
        ``fields`` (N, T, C, H, W) and ``field_names``); plays trajectory ``index``."""
        rolls = {
            name: Rollout(name, list(t.field_names), as_numpy(t.fields[index]))
            for name, t in trajectories.items()
        }
        return cls(rollouts=rolls, **params)

    # -- running ----------------------------------------------------------------------
    def _say(self, text: str, kind: str = "info") -> None:
        self.message.object = text
        self.message.alert_type = kind
        self.message.visible = bool(text)

    def _inputs(self) -> dict:
        kw = {"seed": int(self.seed), "steps": int(self.steps), "res": self.res}
        if self.use_param and self.system == "swe":
            kw["radius"] = float(self.radius)
        if self.use_param and self.system.startswith("cns"):
            kw["mach"] = float(self.mach)
        check_inputs(self.system, **kw)
        return kw

    def _prepare(self) -> dict | None:
        """Checked inputs for ``compare``, or None after showing what is wrong."""
        if self.model is None:
            self._say("No model given: this viewer only plays rollouts.", "danger")
            return None
        try:
            return self._inputs()
        except (ValueError, TypeError) as exc:
            self._say(f"Bad input: {html.escape(str(exc))}", "danger")
            return None

    def _compute(self, kw: dict, progress=None) -> Comparison:
        index = self.systems.get(self.system, {}).get("field_index")
        return compare(self.model, self.system, field_index=index, progress=progress, **kw)

    def run(self) -> bool:
        """Validate, simulate and roll out synchronously; False (with a message) on failure."""
        kw = self._prepare()
        if kw is None:
            return False
        try:
            self._show(self._compute(kw, self._progress))
        except Exception as exc:  # the solver may reject a state; the dashboard must not fail
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
        self.progress.active, self.progress.value = True, 0
        self._say("Running the solver, then the surrogate…", "info")
        try:
            self._show(await asyncio.to_thread(self._compute, kw, self._progress))
        except Exception as exc:  # the dashboard must never fail on user input
            self._say(f"The run failed: {html.escape(str(exc))}", "danger")
        finally:
            self.progress.active = False
            self.run_button.disabled = False

    def _show(self, res: Comparison, prefix: str = "") -> None:
        self.result = res
        roll = Rollout.from_comparison(res)
        label = f"{res.system}, run {sum(k.startswith(res.system) for k in self.rollouts) + 1}"
        self.rollouts[label] = roll
        self._refresh_rollouts(label)
        kind, text = verdict(res.nrmse, res.persistence)
        self._say(f"{prefix}{len(res.nrmse)} steps of {res.system}. {text}", kind)

    def _refresh_rollouts(self, label: str) -> None:
        """List the rollouts and show ``label`` (through ``shown``, so its selector follows)."""
        self.param.shown.objects = list(self.rollouts)
        if self.shown == label:
            self._load(label)
        else:
            self.shown = label  # -> _on_shown -> _load

    @param.depends("shown", watch=True)
    def _on_shown(self) -> None:
        if self.shown in self.rollouts:
            self._load(self.shown)

    def _load(self, label: str) -> None:
        """Point the field selector and the player at rollout ``label``; draw frame 1."""
        roll = self.rollouts[label]
        self.param.field.objects = list(roll.field_names)
        if self.field not in roll.field_names:
            self.field = roll.field_names[0]
        self.player.end = max(roll.n_steps - 1, 0)
        self.player.value = 0
        self.frame = 0
        self.times_pane.object = roll.note
        self.curve_pane.object = self._curve()
        self._draw()

    # -- views ------------------------------------------------------------------------
    @property
    def current(self) -> Rollout | None:
        return self.rollouts.get(self.shown)

    @param.depends("frame", "field", watch=True)
    def _draw(self) -> None:
        roll = self.current
        if roll is None or self.field not in roll.field_names:
            return
        c = roll.field_names.index(self.field)
        k = min(int(self.frame), roll.n_steps - 1)
        truth = roll.truth[:, c]
        lo, hi = roll.value_range(c)  # one colour scale for truth and predictions
        label = field_label(self.field)
        panels = [("Ground truth (solver)", truth[k], lo, hi, "viridis", label)]
        errs = {n: np.nan_to_num(p[:, c] - truth) for n, p in roll.preds.items()}
        e = max([float(np.abs(x).max(initial=0.0)) for x in errs.values()] + [1e-12])
        for name, pred in roll.preds.items():
            panels.append((f"Prediction ({name})", np.nan_to_num(pred[k, c]), lo, hi, "viridis",
                           label))  # fmt: skip
            panels.append((f"Error ({name} - truth)", errs[name][k], -e, e, "RdBu_r",
                           f"error in {label}"))  # fmt: skip
        cells = "".join(
            f"<div class='mpp-panel'><div class='mpp-title'><b>{html.escape(t)}</b></div>"
            f"<img src='data:image/png;base64,{field_png(a, a0, a1, cm)}' width={IMG_PX}>"
            f"{colorbar_html(a0, a1, cm, bar)}</div>"
            for t, a, a0, a1, cm, bar in panels
        )
        scores = ", ".join(f"{n} NRMSE {v[k]:.3g}" for n, v in roll.nrmse.items())
        head = (
            f"<div class='mpp-title'>{html.escape(roll.label)}: {html.escape(self.field)}, "
            f"step {k + 1} of {roll.n_steps}{f' ({scores})' if scores else ''}</div>"
        )
        self.frames_pane.object = head + cells

    def _curve(self) -> hv.Element:
        opts = dict(height=260, width=520, xlabel="rollout step", ylabel="NRMSE",
                    tools=["hover"], title="Rollout error against the solver")  # fmt: skip
        roll = self.current
        if roll is None or not roll.nrmse:
            return hv.Curve([], "step", "NRMSE").opts(**opts)
        curves = [hv.Curve((np.arange(1, len(v) + 1), v), "step", "NRMSE", label=n)
                  for n, v in roll.nrmse.items()]  # fmt: skip
        if roll.persistence is not None:
            p = roll.persistence
            base = hv.Curve((np.arange(1, len(p) + 1), p), "step", "NRMSE", label="persistence")
            curves.append(base.opts(color="#888", line_dash="dashed"))
        if len(curves) == 1:
            return curves[0].opts(**opts)
        return hv.Overlay(curves).opts(**opts, legend_position="top_left")

    def _benchmark_views(self) -> list:
        data = load_benchmark(str(self.benchmark))
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

    def sidebar(self) -> list:
        """The run controls (empty without a model)."""
        if self.model is None:
            return []
        return [self.system_select, self.seed_input, self.param_check, self.radius_input,
                self.mach_input, self.steps_input, self.run_button, self.progress]  # fmt: skip

    def main(self) -> pn.viewable.Viewable:
        intro = (
            "### Solver vs surrogate\nThe AViT rolls out from the solver's first frames; "
            "pick a system and press Run."
            if self.model is not None
            else "### Solver frames\nPick a rollout and a field, then press play."
        )
        parts = [
            pn.pane.Markdown(intro), self.message,
            pn.Row(self.shown_select, self.field_select, self.speed), self.player,
            self.frames_pane, pn.Row(self.curve_pane, pn.Column(self.times_pane, width=360)),
        ]  # fmt: skip
        if self.bench_panes:
            parts += [pn.pane.Markdown("### Benchmark"), *self.bench_panes]
        return pn.Column(*parts, sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        controls = self.sidebar()
        if not controls:
            return self.main()
        return pn.Row(pn.Column(*controls, width=280), self.main(), sizing_mode="stretch_width")
