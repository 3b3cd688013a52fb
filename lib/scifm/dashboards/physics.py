"""Rollout viewer: PDE frames played side by side, solver against surrogates (McCabe et al. 2023).

Plays ground truth, each surrogate's prediction and its error frame by frame, with the
NRMSE of every rollout step. Given an MPP model (a checkpoint written by ``scifm mpp
pretrain/finetune``, the shipped one, or one a notebook just trained) it also runs new
comparisons: pick a system and an initial condition (a seed, a dam radius or a Mach
number), simulate, roll the model out; it opens on a first rollout of the default inputs,
computed once per process and model and shared by every viewer. A run's status says how
good it is: green only when the final NRMSE is below persistence's (the last given frame
repeated), yellow when it is not, red when it diverged or ends at NRMSE >= 1
(``rollouts.verdict``); a second line says whether its initial condition is held out of the
model's training set (``scifm.mpp.heldout``). ``from_assets`` opens on the 64^2 evidence
model and offers the 32^2 demo in a Model select (``physics_models``); below the runs it shows
the model's stored results (``mpp_results``). Given only trajectories
(``from_trajectories``) it plays the solver's frames. Compute lives in ``scifm.mpp.demo`` and
``scifm.pde``.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Mapping
from pathlib import Path

import holoviews as hv
import panel as pn
import param
import torch

from scifm.core.checkpoint import read_record
from scifm.dashboards.mpp_results import load_results, results_views
from scifm.dashboards.physics_models import (
    ModelChoice,
    card_settings,
    default_assets,
    first_run,
    load_surrogate,
    shipped_choices,
)
from scifm.dashboards.rollouts import Rollout, as_numpy, frames_html, nrmse_curve, verdict
from scifm.dashboards.style import STYLESHEET
from scifm.mpp.demo import Comparison, check_inputs, compare
from scifm.mpp.heldout import heldout_line, seed_note

SYSTEM_LABELS = {
    "Shallow water (dam break)": "swe",
    "Diffusion-reaction": "diffreact",
    "Incompressible NS": "ins",
    "Compressible NS, M=0.1": "cns_m0.1",
    "Compressible NS, M=1.0": "cns_m1.0",
}
SPEEDS = {"0.5x": 800, "1x": 400, "2x": 200, "4x": 100}  # player interval in ms


class RolloutViewer(pn.viewable.Viewer):
    """Frame player (truth, predictions, errors), NRMSE curve, and new runs given a model."""

    model_name = param.Selector(objects=[], doc="which shipped model runs (from_assets)")
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
        frames_per_span: float = 24.0,
        seeds: Mapping[str, Mapping[int, str]] | None = None,
        ranges: Mapping[str, Mapping[str, list]] | None = None,
        about: str = "",
        choices: Mapping[str, ModelChoice] | None = None,
        benchmark: str | Path | None = None,
        message: str = "",
        first: bool = True,
        **params,
    ) -> None:
        """``model``: an MPP AViT that new runs roll out (``systems``: its checkpoint's
        variant -> field_index record; ``res``: the grid it was trained on;
        ``frames_per_span``: frames per PDEBench time span it saw, which sets the runs'
        frame spacing; ``seeds``: variant -> the solver seeds of its training trajectories,
        so a run says whether it is held out; ``ranges``: variant -> parameter -> the
        (low, high) it trained on (a model card's); ``about``: one line saying what the model is);
        ``choices``: label -> ``ModelChoice`` offered in a Model select, the first being
        ``model``; ``rollouts``: label -> Rollout played from the start; ``benchmark``: a
        results JSON shown below (``mpp_results``); ``first``: with a model and no
        ``rollouts``, open on a rollout of the default inputs (``first_run``: computed once
        per process and model)."""
        super().__init__(**params)
        self._ready = False  # the Model select's watcher acts only after construction
        self.result: Comparison | None = None  # the last run's comparison
        self.choices: dict[str, ModelChoice] = dict(choices or {})
        self.rollouts: dict[str, Rollout] = dict(rollouts or {})
        self._build_widgets(playing=model is not None)
        self._set_model(model, systems, res=res, frames_per_span=frames_per_span, seeds=seeds,
                        ranges=ranges, about=about, benchmark=benchmark)  # fmt: skip
        if message:
            self._say(message, "danger")
        if self.rollouts:
            self._refresh_rollouts(next(iter(self.rollouts)))
        elif model is not None and first:
            try:
                kw = self._inputs()
                index = self.systems.get(self.system, {}).get("field_index")
                res0 = first_run(model, self.system, field_index=index,
                                 frames_per_unit=self.frames_per_span, **kw)  # fmt: skip
                self._show(res0, "First rollout (default inputs, computed once when the "
                           "server started). ", self._heldout_line(kw))  # fmt: skip
            except Exception as exc:  # the page must open even if the first run fails
                self._say(f"The first rollout failed: {html.escape(str(exc))}", "danger")
        self._ready = True

    def _build_widgets(self, *, playing: bool) -> None:
        """The controls, the player and the panes (``playing``: a model runs new rollouts)."""
        w = pn.widgets
        self.param.model_name.objects = list(self.choices)
        if self.choices:
            self.model_name = next(iter(self.choices))
        self.model_select = w.Select.from_param(self.param.model_name, label="Model")
        self.system_select = w.Select.from_param(self.param.system, label="System")
        self.seed_input = w.IntInput.from_param(self.param.seed, label="Seed (initial condition)")
        self.seed_note = pn.pane.Markdown("", css_classes=["mpp-seed-note"], width=260)
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
        self.heldout = pn.pane.Alert(
            "", alert_type="secondary", visible=False, css_classes=["mpp-heldout"]
        )
        self.about_pane = pn.pane.Markdown("", css_classes=["mpp-about"])
        self.shown_select = w.Select.from_param(self.param.shown, label="Rollout",
                                               css_classes=["mpp-shown"])  # fmt: skip
        self.field_select = w.Select.from_param(self.param.field, label="Field")
        self.player = w.Player(
            label="Frame", start=0, end=0, value=0, interval=400, loop_policy="loop", width=520
        )
        self.player.link(self, value="frame")
        self.speed = w.RadioButtonGroup(label="Speed", options=list(SPEEDS), value="1x")
        self.speed.param.watch(lambda e: setattr(self.player, "interval", SPEEDS[e.new]), "value")
        self.frames_pane = pn.pane.HTML(
            "<i>Press Run.</i>" if playing else "<i>No rollout to show.</i>",
            css_classes=["mpp-frames"], sizing_mode="stretch_width", min_height=280,
            stylesheets=[STYLESHEET],
        )  # fmt: skip
        self.times_pane = pn.pane.HTML("", css_classes=["mpp-times"])
        self.curve_pane = pn.pane.HoloViews(self._curve(), css_classes=["mpp-curve"])
        self.bench_column = pn.Column(sizing_mode="stretch_width")

    def _set_model(self, model, systems, *, res: int, frames_per_span: float, seeds=None,
                   ranges=None, about: str = "", benchmark=None) -> None:  # fmt: skip
        """Point the runs at ``model``: its grid, frame spacing, training seeds, the systems
        it knows (the System select is reset to them) and its stored results."""
        self.model, self.systems = model, dict(systems or {})
        self.res, self.frames_per_span = int(res), float(frames_per_span)
        self.seeds = {k: dict(v) for k, v in (seeds or {}).items()}
        self.ranges = dict(ranges or {})
        self.about_pane.object, self.about_pane.visible = about, bool(about)
        self.seed_note.object = seed_note(self.seeds) if self.seeds else ""
        known = [v for v in SYSTEM_LABELS.values() if not self.systems or v in self.systems]
        self.param.system.objects = known or list(SYSTEM_LABELS.values())
        if self.system not in self.param.system.objects:
            self.system = self.param.system.objects[0]
        self.system_select.options = {
            k: v for k, v in SYSTEM_LABELS.items() if v in self.param.system.objects
        }
        self.system_select.value = self.system
        self.benchmark = Path(benchmark) if benchmark is not None else None
        self.bench_panes = (
            results_views(load_results(str(self.benchmark)), self.benchmark)
            if self.benchmark is not None
            else []
        )
        head = [pn.pane.Markdown("### Stored results" + (f": {self.model_name}"
                                 if self.choices else ""))]  # fmt: skip
        self.bench_column.objects = head + self.bench_panes if self.bench_panes else []

    @param.depends("model_name", watch=True)
    def _on_model_name(self) -> None:
        """Switch to another shipped model (loaded once per process); earlier rollouts stay
        in the Rollout list, labelled with their grid."""
        if not self._ready or self.model_name not in self.choices:
            return
        c = self.choices[self.model_name]
        try:
            model, systems = load_surrogate(str(c.path))
        except Exception as exc:  # a broken asset must not take the page down
            self._say(f"Cannot load {html.escape(str(c.path))}: {html.escape(str(exc))}",
                      "danger")  # fmt: skip
            return
        self._set_model(model, systems, res=c.res, frames_per_span=c.frames_per_span,
                        seeds=c.seeds, ranges=c.ranges, about=c.about,
                        benchmark=c.benchmark)  # fmt: skip
        self.heldout.visible = False
        self._say(f"Model: {html.escape(c.label)}. Pick a system and press Run.", "info")

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, *, res: int | None = None,
                        **params) -> RolloutViewer:  # fmt: skip
        """An MPP checkpoint folder, or a run folder holding ``checkpoint/`` (``scifm mpp
        pretrain/finetune --out``); ``res``: the grid side it was trained on (default: its
        model card's, else 32). A packaged checkpoint's card (``scifm.mpp.card``) also sets
        the frame spacing, the training seeds and the parameter ranges."""
        model, systems = load_surrogate(str(path))
        card = read_record(path).get("extra", {}).get("card")
        if card:  # read as the shipped evidence model's is
            settings = card_settings(card)
            card_res = settings.pop("res")
            res = card_res if res is None else res
            params = {**settings, **params}
        return cls(model, systems=systems, res=32 if res is None else res, **params)

    @classmethod
    def from_assets(cls, root: str | Path | None = None, **params) -> RolloutViewer:
        """The shipped models (``physics_models``): the 64^2 evidence model first, the 32^2
        demo selectable, each with its stored results."""
        root = Path(root if root is not None else default_assets())
        choices = shipped_choices(root)
        if not choices:
            return cls(message=f"No shipped MPP model in {root}: see assets/README.md",
                       **params)  # fmt: skip
        c = next(iter(choices.values()))
        model, systems = load_surrogate(str(c.path))
        return cls(model, systems=systems, res=c.res, frames_per_span=c.frames_per_span,
                   seeds=c.seeds, ranges=c.ranges, about=c.about, choices=choices,
                   benchmark=c.benchmark, **params)  # fmt: skip

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
        return compare(self.model, self.system, field_index=index, progress=progress,
                       frames_per_unit=self.frames_per_span, **kw)  # fmt: skip

    def _heldout_line(self, kw: dict) -> tuple[str, str] | None:
        """Whether the run's initial condition is held out of the model's training set."""
        return heldout_line(self.seeds, self.system, kw["seed"], radius=kw.get("radius"),
                            mach=kw.get("mach"), ranges=self.ranges)  # fmt: skip

    def run(self) -> bool:
        """Validate, simulate and roll out synchronously; False (with a message) on failure."""
        kw = self._prepare()
        if kw is None:
            return False
        try:
            self._show(self._compute(kw, self._progress), "", self._heldout_line(kw))
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
        line = self._heldout_line(kw)  # the model's record now, before a switch can happen
        self.run_button.disabled = True
        self.progress.active, self.progress.value = True, 0
        self._say("Running the solver, then the surrogate…", "info")
        try:
            self._show(await asyncio.to_thread(self._compute, kw, self._progress), "", line)
        except Exception as exc:  # the dashboard must never fail on user input
            self._say(f"The run failed: {html.escape(str(exc))}", "danger")
        finally:
            self.progress.active = False
            self.run_button.disabled = False

    def _show(self, res: Comparison, prefix: str = "", line: tuple | None = None) -> None:
        """Play a finished run; ``line``: its held-out statement (``heldout_line``)."""
        self.result = res
        roll = Rollout.from_comparison(res)
        grid = f"{res.truth.shape[-1]}²"
        n = sum(k.startswith(f"{res.system} {grid}") for k in self.rollouts) + 1
        label = f"{res.system} {grid}, run {n}"
        self.rollouts[label] = roll
        self._refresh_rollouts(label)
        kind, text = verdict(res.nrmse, res.persistence)
        self._say(f"{prefix}{len(res.nrmse)} steps of {res.system}. {text}", kind)
        if line is not None:
            self.heldout.object = html.escape(line[1], quote=False)
            self.heldout.alert_type = "warning" if line[0] == "seen" else "secondary"
        self.heldout.visible = line is not None

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
        if roll is not None and self.field in roll.field_names:
            self.frames_pane.object = frames_html(roll, self.field, int(self.frame))

    def _curve(self) -> hv.Element:
        return nrmse_curve(self.current)

    def sidebar(self) -> list:
        """The run controls (empty without a model)."""
        if self.model is None:
            return []
        models = [self.model_select] if len(self.choices) > 1 else []
        return [*models, self.system_select, self.seed_input, self.seed_note, self.param_check,
                self.radius_input, self.mach_input, self.steps_input, self.run_button,
                self.progress]  # fmt: skip

    def main(self) -> pn.viewable.Viewable:
        intro = (
            "### Solver vs surrogate\nThe AViT rolls out from the solver's first frames; "
            "pick a system and press Run."
            if self.model is not None
            else "### Solver frames\nPick a rollout and a field, then press play."
        )
        parts = [
            pn.pane.Markdown(intro), self.about_pane, self.message, self.heldout,
            pn.Row(self.shown_select, self.field_select, self.speed), self.player,
            self.frames_pane, pn.Row(self.curve_pane, pn.Column(self.times_pane, width=360)),
            self.bench_column,
        ]  # fmt: skip
        return pn.Column(*parts, sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        controls = self.sidebar()
        if not controls:
            return self.main()
        return pn.Row(pn.Column(*controls, width=280), self.main(), sizing_mode="stretch_width")
