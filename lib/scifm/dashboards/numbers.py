"""Tokenization comparer: xVal against the digit tokenizations (Golkar et al. 2023).

Type any text to see the five tokenizations side by side as chips (numbers a scheme
cannot write exactly are highlighted), ask a product of the given models, sweep an
operand beyond the training range, predict a planet's next position and read the
benchmark (learning curves, invalid rates, tables: ``scifm.dashboards.xval_results``).
The text boxes follow typing (``follow_typing``). It takes its models as arguments: the
ones a notebook just trained, a CLI run's checkpoints, or the shipped ones
(``from_assets``). Compute lives in ``scifm.xval.demo``; its results are shared by every
session of a process (``ModelCache``), so the default view costs nothing after the first.
The plots are Bokeh figures made once per component (``scifm.dashboards.xval_plots``).
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import panel as pn
import param

from scifm.core.paths import assets_dir, results_dir
from scifm.dashboards.shared import DEBOUNCE_S, ModelCache, follow_typing
from scifm.dashboards.style import STYLESHEET
from scifm.dashboards.xval_plots import OrbitPlot, SweepPlot
from scifm.dashboards.xval_results import SCHEMES, XvalResults
from scifm.xval.train import Trained, load_trained

MAX_CHIPS = 300  # chips drawn per scheme; counts always cover the whole text
DEFAULT_TEXT = '{"planet0": {"m": 3.1e-05, "a": 1.52}, "t1": 12.5, "dx": .25}\n3-2=1, 6.02e23'
LEGEND = (
    "<div class='xv-legend'>Chips: <span class='xv-chip xv-num'>number</span> "
    "<span class='xv-chip xv-num xv-rounded'>rounded to 3 digits</span> "
    "<span class='xv-chip xv-num xv-overflow'>out of range</span> "
    "(hover a number for its value)</div>"
)


def default_assets() -> Path:
    """The shipped xVal models (``SCIFM_XVAL_ASSETS`` overrides)."""
    return Path(os.environ.get("SCIFM_XVAL_ASSETS", assets_dir() / "xval"))


@lru_cache(maxsize=8)
def load_models(task: str, root: str) -> dict[str, Trained]:
    """The ``<task>_<scheme>`` checkpoints under ``root`` (scheme -> Trained), once per process."""
    out = {}
    for scheme in SCHEMES:
        path = Path(root) / f"{task}_{scheme}"
        if (path / "config.json").exists():
            out[scheme] = load_trained(path, "cpu")
    return out


def _sweep(models: Mapping[str, Trained], b: float) -> dict[str, np.ndarray]:
    from scifm.xval.demo import ood_sweep

    return ood_sweep(models, b, np.arange(1.0, 15.0, 0.05))


def _orbit(models: Mapping[str, Trained], seed: int) -> dict:
    from scifm.xval.demo import orbit_prediction

    return orbit_prediction(models, seed)


SWEEPS, ORBITS = ModelCache(_sweep), ModelCache(_orbit)  # shared by every session
ANSWERS = ModelCache(lambda models, question: _answers_html(models, question), maxsize=256)


def chips_html(enc, scheme: str) -> str:
    """One scheme's tokens as chips; numbers coloured by how exactly the scheme wrote them."""
    status_at = {}
    for (s, e), st, v, r in zip(enc.number_spans, enc.status, enc.numbers, enc.represented):
        for i in range(s, e):
            status_at[i] = (st, v, r)
    parts = []
    for i, tok in enumerate(enc.tokens[:MAX_CHIPS]):
        cls, title = "xv-chip", ""
        if i in status_at:
            st, v, r = status_at[i]
            cls += f" xv-num xv-{st}"
            title = f"{v!r} → {r!r} ({st})" if scheme != "xval" else f"value {v!r}"
        elif tok == "[UNK]":
            cls += " xv-unk"
        shown = tok.replace("\n", "⏎").replace("\t", "⇥")
        parts.append(
            f"<span class='{cls}' title='{html.escape(title)}'>{html.escape(shown)}</span>"
        )
    if len(enc.tokens) > MAX_CHIPS:
        parts.append(f" … (first {MAX_CHIPS} of {len(enc.tokens):,} tokens shown)")
    return "".join(parts)


def _rel_error(v: float, truth: float) -> float:
    with np.errstate(all="ignore"):
        return float(abs(v - truth) / abs(truth) * 100) if truth else float(abs(v))


def _fmt(v: float) -> str:
    return "invalid" if not math.isfinite(v) else f"{v:.6g}"


@lru_cache(maxsize=64)
def tokens_html(text: str) -> str:
    """The five tokenizations of ``text`` as chips with counts (or why there are none);
    once per process for each text."""
    from scifm.xval.demo import tokenize_all

    res = tokenize_all(text)
    if res.error:
        return f"<div class='xv-msg'>{_error(res.error)}</div>"
    rows = []
    for scheme, enc in res.encodings.items():
        n_round = sum(s != "exact" for s in enc.status)
        rows.append(
            f"<div class='xv-scheme' data-scheme='{scheme}'>"
            f"<b>{scheme}</b> — {len(enc):,} tokens, {len(enc.numbers)} numbers, "
            f"{n_round} not exact<br>{chips_html(enc, scheme)}</div>"
        )
    notes = "".join(f"<div class='scifm-warn'>{html.escape(n)}</div>" for n in res.notes)
    return notes + LEGEND + "".join(rows)


def _answers_html(models: Mapping[str, Trained], question: str) -> str:
    """Every model's answer to ``question`` (a product a*b) as a table, or a message."""
    from scifm.xval.demo import answer, parse_question

    parsed = parse_question(question)
    if isinstance(parsed, str):
        return _error(parsed)
    if not models:
        return "<b>No models given (shipped ones: python -m scifm.xval.assets).</b>"
    a, b = parsed
    truth = a * b
    warn = ""
    if not (1.0 <= a < 10.0 and 1.0 <= b < 10.0):
        warn = "<div class='scifm-warn'>Outside the training range [1, 10): expect errors.</div>"
    if not all(math.isfinite(x) and abs(x) < 1e30 for x in (a, b)):
        warn = ("<div class='scifm-error'>These numbers are absurdly large for the models; "
                "their answers are meaningless.</div>")  # fmt: skip
    rows = "".join(
        f"<tr class='xv-answer' data-scheme='{s}'><td class='xv-left'>{s}</td>"
        f"<td>{_fmt(v)}</td><td>{_fmt(_rel_error(v, truth))}%</td></tr>"
        for s, v in answer(models, a, b).items()
    )
    return (
        warn + f"<div>True value: <b>{_fmt(truth)}</b></div><table class='xv'>"
        "<tr><th class='xv-left'>encoding</th><th>answer</th><th>error</th></tr>"
        f"{rows}</table>"
    )


def _show(pane, render) -> None:
    """``pane.object = render()``; an error shows as a message (never fails on user input)."""
    try:
        pane.object = render()
    except Exception as exc:  # a dashboard must never fail on user input
        pane.object = _error(f"Error: {exc}")


def _error(text: str) -> str:
    return f"<div class='scifm-error'><b>{html.escape(text)}</b></div>"


def _released(slider, owner: param.Parameterized, name: str):
    """``slider`` setting ``owner.<name>`` when released (``value_throttled``): a drag does
    not recompute at every position. Code that sets ``owner.<name>`` moves the slider."""
    slider.param.watch(lambda e: setattr(owner, name, e.new), "value_throttled")
    owner.param.watch(lambda e: setattr(slider, "value", e.new), name)
    return slider


def _push(pane: pn.pane.Bokeh) -> None:
    """Send ``pane``'s changed Bokeh models to a notebook's view of it: Panel sends them
    itself after a widget event, not after a cell sets a parameter (a server syncs alone)."""
    pn.io.push_notebook(pane)


def _pane() -> pn.pane.HTML:
    return pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[STYLESHEET])


class TokenizationComparer(pn.viewable.Viewer):
    """Tokenizations of typed text, the models' answers, an OOD sweep, orbits, benchmark."""

    text = param.String(default=DEFAULT_TEXT, doc="text to tokenize")
    question = param.String(default="4.5*3.2", doc="a product a*b for the models")
    b_value = param.Number(default=3.0, bounds=(1.0, 9.99), doc="second operand of the sweep")
    orbit_seed = param.Integer(default=0, bounds=(0, 999), doc="which test system")

    def __init__(
        self,
        models: Mapping[str, Trained] | None = None,
        *,
        orbit_models: Mapping[str, Trained] | None = None,
        benchmark: str | Path | None = None,
        **params,
    ) -> None:
        """``models``: scheme -> Trained on the ``ood`` (a*b) task; ``orbit_models`` likewise
        on the orbits task; ``benchmark``: a ``benchmarks/xval.py`` JSON. All optional."""
        super().__init__(**params)
        self.models = dict(models or {})
        self.orbit_models = dict(orbit_models or {})
        self.benchmark = Path(benchmark) if benchmark is not None else None
        pause = f"{DEBOUNCE_S:g} s"
        self.text_input = follow_typing(pn.widgets.TextAreaInput(
            value=self.text, label=f"Text (the tokens follow as you type, after a {pause} pause)",
            height=110, sizing_mode="stretch_width", css_classes=["xv-text"],
        ), self, "text")  # fmt: skip
        self.question_input = follow_typing(pn.widgets.TextInput(
            value=self.question, css_classes=["xv-question"],
            label="Ask a product (the models were trained on a, b in [1, 10)); the answers "
            f"follow as you type, after a {pause} pause",
        ), self, "question")  # fmt: skip
        self.tokens_pane = _pane()
        self.answers_pane = _pane()
        # the plots: made once, their data replaced when b or the system changes
        self.sweep = SweepPlot(list(self.models)) if self.models else None
        self.orbit = OrbitPlot(list(self.orbit_models)) if self.orbit_models else None
        self.sweep_pane = pn.pane.Bokeh(self.sweep.figure) if self.sweep else None
        self.orbit_pane = pn.pane.Bokeh(self.orbit.figure) if self.orbit else None
        self._update_tokens()
        self._update_answers()
        if self.sweep is not None:  # not yet in a document: drawn at once
            self._sweep_drawing()()
        if self.orbit is not None:
            self._orbit_drawing()()

    @classmethod
    def from_assets(cls, root: str | Path | None = None, **params) -> TokenizationComparer:
        """The shipped models (``assets/xval``) and the stored benchmark."""
        root = str(root if root is not None else default_assets())
        return cls(load_models("ood", root), orbit_models=load_models("orbits", root),
                   benchmark=results_dir() / "xval.json", **params)  # fmt: skip

    @classmethod
    def from_checkpoints(cls, paths: Mapping[str, str | Path], **params) -> TokenizationComparer:
        """Models of the ``ood`` task from checkpoint directories (``scifm xval train --out``),
        keyed by a label such as the scheme."""
        return cls({k: load_trained(Path(p), "cpu") for k, p in paths.items()}, **params)

    # -- tokenization ---------------------------------------------------------------
    @param.depends("text", watch=True)
    def _update_tokens(self) -> None:
        _show(self.tokens_pane, self._tokens)

    def _tokens(self) -> str:
        return tokens_html(self.text)

    # -- questions ------------------------------------------------------------------
    @param.depends("question", watch=True)
    def _update_answers(self) -> None:
        _show(self.answers_pane, self._answers)

    def _answers(self) -> str:
        return ANSWERS(self.models, self.question)

    # -- plots ----------------------------------------------------------------------
    # Bokeh models change only under the document's lock: a callback running in the
    # server's thread pool computes, then hands the drawing to the event loop
    @param.depends("b_value", watch=True)
    def _update_sweep(self) -> None:
        if self.sweep is not None:
            pn.state.execute(self._sweep_drawing())

    @param.depends("orbit_seed", watch=True)
    def _update_orbit(self) -> None:
        if self.orbit is not None:
            pn.state.execute(self._orbit_drawing())

    def _sweep_drawing(self) -> Callable[[], None]:
        """The sweep at the current b: computed now (once per process and b), drawn when called."""
        b = float(self.b_value)
        res = SWEEPS(self.models, b)

        def draw() -> None:
            self.sweep.draw(res, b)
            _push(self.sweep_pane)

        return draw

    def _orbit_drawing(self) -> Callable[[], None]:
        res = ORBITS(self.orbit_models, int(self.orbit_seed))

        def draw() -> None:
            self.orbit.draw(res)
            _push(self.orbit_pane)

        return draw

    def __panel__(self) -> pn.viewable.Viewable:
        parts: list = [
            pn.pane.Markdown(
                "## xVal: one token per number\nxVal writes every number as the token "
                "`[NUM]` and multiplies its embedding by the (scaled) value; the digit "
                "schemes P10, P1000, B1999 and FP15 write 3 significant digits and an exponent."
            ),
            self.text_input, self.tokens_pane,
        ]  # fmt: skip
        if self.models:
            names = ", ".join(self.models)
            parts += [
                pn.pane.Markdown(f"### Ask the models ({names})"),
                self.question_input, self.answers_pane,
                pn.pane.Markdown("### Out of distribution: a*b over a range of a"),
                _released(pn.widgets.FloatSlider(label="b (the sweep follows when the slider "
                          "is released)", start=1.0, end=9.99, step=0.01, value=self.b_value),
                          self, "b_value"),
                self.sweep_pane,
            ]  # fmt: skip
        if self.orbit_models:
            parts += [
                pn.pane.Markdown("### Planetary orbits: the last recorded position, predicted"),
                _released(pn.widgets.IntSlider(label="system", start=0, end=999,
                                               value=self.orbit_seed), self, "orbit_seed"),
                self.orbit_pane,
            ]  # fmt: skip
        if self.benchmark is not None:
            parts += [pn.pane.Markdown(f"### Benchmark: learning curves, invalid answers, "
                                       f"tables ({self.benchmark.name})"),
                      XvalResults(self.benchmark)]  # fmt: skip
        return pn.Column(*parts, sizing_mode="stretch_width")
