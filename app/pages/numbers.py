"""The "numbers" page: xVal vs digit tokenizations (Golkar et al. 2023).

Type any text to see the five tokenizations side by side as chips (numbers a
scheme cannot write exactly are highlighted), ask a product of the shipped
models, sweep an operand beyond the training range, predict a planet's next
position, and read the benchmark table. All compute lives in ``scifm.xval``.
"""

from __future__ import annotations

import html
import json
import math
import os
from functools import lru_cache
from pathlib import Path

import holoviews as hv
import numpy as np
import panel as pn
import param

from app.layout import make_template
from scifm.core.paths import assets_dir, results_dir

SLUG = "numbers"
TITLE = "Numbers"
DESCRIPTION = (
    "xVal: one [NUM] token scaled by the value vs four digit tokenizations — "
    "side-by-side tokens, model answers, an out-of-distribution sweep and orbits."
)
ORDER = 1

pn.extension("tabulator")
hv.extension("bokeh")

ASSETS = Path(os.environ.get("SCIFM_XVAL_ASSETS", assets_dir() / "xval"))
BENCHMARK = results_dir() / "xval.json"
SCHEMES = ("xval", "p10", "p1000", "b1999", "fp15")
COLORS = {"xval": "#d62728", "p10": "#1f77b4", "p1000": "#2ca02c", "b1999": "#9467bd",
          "fp15": "#ff7f0e", "truth": "#222222"}  # fmt: skip
MAX_CHIPS = 300  # chips drawn per scheme; counts always cover the whole text
DEFAULT_TEXT = '{"planet0": {"m": 3.1e-05, "a": 1.52}, "t1": 12.5, "dx": .25}\n3-2=1, 6.02e23'
STATUS_STYLE = {"exact": "", "rounded": "background:#ffd27f", "underflow": "background:#ff9c9c",
                "overflow": "background:#ff9c9c"}  # fmt: skip
CHIP_CSS = (
    "<style>.xv-chip{display:inline-block;margin:1px;padding:0 3px;border:1px solid #bbb;"
    "border-radius:4px;font:12px monospace;white-space:pre;background:#f4f6f8}"
    ".xv-num{border-color:#1f5f8b;background:#dcebf7}.xv-unk{background:#eee;color:#b00}"
    "table.xv{border-collapse:collapse}table.xv td,table.xv th{padding:2px 8px;"
    "border-bottom:1px solid #ddd;font:13px sans-serif;text-align:right}</style>"
)


@lru_cache(maxsize=4)
def load_models(task: str, root: str) -> dict:
    """Shipped models of ``task`` (scheme -> Trained), loaded once per process."""
    from scifm.xval.train import load_trained

    out = {}
    for scheme in SCHEMES:
        path = Path(root) / f"{task}_{scheme}"
        if (path / "config.json").exists():
            out[scheme] = load_trained(path, "cpu")
    return out


def chips_html(enc, scheme: str) -> str:
    """One scheme's tokens as chips; numbers coloured by how exactly the scheme wrote them."""
    status_at = {}
    for (s, e), st, v, r in zip(enc.number_spans, enc.status, enc.numbers, enc.represented):
        for i in range(s, e):
            status_at[i] = (st, v, r)
    parts = []
    for i, tok in enumerate(enc.tokens[:MAX_CHIPS]):
        cls, style, title = "xv-chip", "", ""
        if i in status_at:
            st, v, r = status_at[i]
            cls += " xv-num"
            style = STATUS_STYLE[st]
            title = f"{v!r} → {r!r} ({st})" if scheme != "xval" else f"value {v!r}"
        elif tok == "[UNK]":
            cls += " xv-unk"
        shown = tok.replace("\n", "⏎").replace("\t", "⇥")
        parts.append(
            f"<span class='{cls}' style='{style}' title='{html.escape(title)}'>"
            f"{html.escape(shown)}</span>"
        )
    if len(enc.tokens) > MAX_CHIPS:
        parts.append(f" … (first {MAX_CHIPS} of {len(enc.tokens):,} tokens shown)")
    return "".join(parts)


def _rel_error(v: float, truth: float) -> float:
    with np.errstate(all="ignore"):
        return float(abs(v - truth) / abs(truth) * 100) if truth else float(abs(v))


def _fmt(v: float) -> str:
    return "invalid" if not math.isfinite(v) else f"{v:.6g}"


class NumbersPage(pn.viewable.Viewer):
    """Tokenizations, model answers, OOD sweep, orbit prediction and benchmark table."""

    text = param.String(default=DEFAULT_TEXT, doc="text to tokenize")
    question = param.String(default="4.5*3.2", doc="a product a*b for the models")
    b_value = param.Number(default=3.0, bounds=(1.0, 9.99), doc="second operand of the sweep")
    orbit_seed = param.Integer(default=0, bounds=(0, 999), doc="which test system")

    def __init__(self, assets: str | Path | None = None, **params) -> None:
        super().__init__(**params)
        self.assets = str(assets if assets is not None else ASSETS)
        self.text_input = pn.widgets.TextAreaInput.from_param(
            self.param.text, name="Text", height=110, sizing_mode="stretch_width",
            css_classes=["xv-text"],
        )  # fmt: skip
        self.question_input = pn.widgets.TextInput.from_param(
            self.param.question,
            name="Ask a product (the models were trained on a, b in [1, 10))",
            css_classes=["xv-question"],
        )
        self.tokens_pane = pn.pane.HTML("", sizing_mode="stretch_width")
        self.answers_pane = pn.pane.HTML("", sizing_mode="stretch_width")
        self.message = pn.pane.Alert("", alert_type="warning", visible=False)
        self._update_tokens()
        self._update_answers()

    # -- tokenization ---------------------------------------------------------------
    @param.depends("text", watch=True)
    def _update_tokens(self) -> None:
        try:
            self._tokens()
        except Exception as exc:  # the server must never error on user input
            self.tokens_pane.object = f"<b style='color:#a00'>Error: {html.escape(str(exc))}</b>"

    def _tokens(self) -> None:
        from scifm.xval.demo import tokenize_all

        res = tokenize_all(self.text)
        if res.error:
            self.tokens_pane.object = (
                f"<div class='xv-msg' style='color:#a00'><b>{html.escape(res.error)}</b></div>"
            )
            return
        rows = []
        for scheme, enc in res.encodings.items():
            n_round = sum(s != "exact" for s in enc.status)
            rows.append(
                f"<div class='xv-scheme' data-scheme='{scheme}' style='margin:6px 0'>"
                f"<b>{scheme}</b> — {len(enc):,} tokens, {len(enc.numbers)} numbers, "
                f"{n_round} not exact<br>{chips_html(enc, scheme)}</div>"
            )
        notes = "".join(f"<div style='color:#a60'>{html.escape(n)}</div>" for n in res.notes)
        legend = (
            "<div style='font-size:12px'>Chips: <span class='xv-chip xv-num'>number</span> "
            "<span class='xv-chip xv-num' style='background:#ffd27f'>rounded to 3 digits</span> "
            "<span class='xv-chip xv-num' style='background:#ff9c9c'>out of range</span> "
            "(hover a number for its value)</div>"
        )
        self.tokens_pane.object = CHIP_CSS + notes + legend + "".join(rows)

    # -- questions ------------------------------------------------------------------
    @param.depends("question", watch=True)
    def _update_answers(self) -> None:
        try:
            self._answers()
        except Exception as exc:  # the server must never error on user input
            self.answers_pane.object = f"<b style='color:#a00'>Error: {html.escape(str(exc))}</b>"

    def _answers(self) -> None:
        from scifm.xval.demo import answer, parse_question

        parsed = parse_question(self.question)
        if isinstance(parsed, str):
            self.answers_pane.object = f"<div style='color:#a00'><b>{html.escape(parsed)}</b></div>"
            return
        a, b = parsed
        models = load_models("ood", self.assets)
        if not models:
            self.answers_pane.object = (
                "<b>No shipped models in assets/xval (run python -m scifm.xval.assets).</b>"
            )
            return
        truth = a * b
        warn = ""
        if not (1.0 <= a < 10.0 and 1.0 <= b < 10.0):
            warn = (
                "<div style='color:#a60'>Outside the training range [1, 10): expect errors.</div>"
            )
        if not all(math.isfinite(x) and abs(x) < 1e30 for x in (a, b)):
            warn = (
                "<div style='color:#a00'>These numbers are absurdly large for the models; "
                "their answers are meaningless.</div>"
            )
        answers = answer(models, a, b)
        rows = "".join(
            f"<tr class='xv-answer' data-scheme='{s}'><td style='text-align:left'>{s}</td>"
            f"<td>{_fmt(v)}</td><td>{_fmt(_rel_error(v, truth))}%</td></tr>"
            for s, v in answers.items()
        )
        self.answers_pane.object = (
            CHIP_CSS + warn + f"<div>True value: <b>{_fmt(truth)}</b></div><table class='xv'>"
            "<tr><th style='text-align:left'>encoding</th><th>answer</th><th>error</th></tr>"
            f"{rows}</table>"
        )

    # -- plots ----------------------------------------------------------------------
    @param.depends("b_value")
    def sweep_plot(self):
        from scifm.xval.demo import ood_sweep

        models = load_models("ood", self.assets)
        if not models:
            return pn.pane.Markdown("No shipped ood models found.")
        grid = np.arange(1.0, 15.0, 0.05)
        res = ood_sweep(models, self.b_value, grid)
        curves = [hv.Curve((res["a"], res["truth"]), "a", "a*b", label="truth").opts(
            color=COLORS["truth"], line_dash="dashed")]  # fmt: skip
        for s in models:
            curves.append(hv.Curve((res["a"], res[s]), "a", "a*b", label=s).opts(color=COLORS[s]))
        hole = hv.VSpan(4.0, 5.0).opts(color="#999", alpha=0.2)
        extrap = hv.VSpan(10.0, 15.0).opts(color="#f90", alpha=0.1)
        return (hole * extrap * hv.Overlay(curves)).opts(
            title=f"a*{self.b_value:.3g}; grey: held-out a in [4, 5); orange: a beyond training",
            width=760, height=360, legend_position="top_left", show_grid=True,
        )  # fmt: skip

    @param.depends("orbit_seed")
    def orbit_plot(self):
        from scifm.xval.demo import orbit_prediction

        models = load_models("orbits", self.assets)
        if not models:
            return pn.pane.Markdown("No shipped orbit models found.")
        res = orbit_prediction(models, self.orbit_seed)
        layers = [hv.Scatter(([0.0], [0.0]), label="star").opts(color="gold", size=14)]
        for p in range(res["orbits"].shape[1]):
            o = res["orbits"][:, p]
            layers.append(hv.Curve((o[:, 0], o[:, 1])).opts(color="#bbb"))
            r = res["recorded"][:, p]
            layers.append(hv.Scatter((r[:-1, 0], r[:-1, 1]), label="given" if p == 0 else "")
                          .opts(color="#444", size=6))  # fmt: skip
            layers.append(hv.Scatter(([r[-1, 0]], [r[-1, 1]]), label="truth" if p == 0 else "")
                          .opts(color="black", marker="x", size=14))  # fmt: skip
            for s, pred in res["predicted"].items():
                layers.append(hv.Scatter(([pred[p, 0]], [pred[p, 1]]), label=s if p == 0 else "")
                              .opts(color=COLORS[s], size=10))  # fmt: skip
        return hv.Overlay(layers).opts(
            title="Predicted next position of each planet", width=520, height=480,
            data_aspect=1, legend_position="right", show_grid=True,
        )  # fmt: skip

    # -- benchmark ------------------------------------------------------------------
    def benchmark_table(self):
        import pandas as pd

        if not BENCHMARK.exists():
            return pn.pane.Markdown("No benchmark results yet: run `python benchmarks/xval.py`.")
        data = json.loads(BENCHMARK.read_text())
        rows = []
        for task, per in data["tasks"].items():
            for scheme, budgets in per.items():
                for budget, agg in budgets.items():
                    for split, m in agg["splits"].items():
                        rows.append({
                            "task": task, "split": split, "encoding": scheme, "budget": budget,
                            "steps": int(agg["steps"]), "R2": m["r2"], "MSE": m["mse"],
                            "exact %": 100 * m["exact"], "outliers %": 100 * m["outlier_rate"],
                            "tokens/sample": agg["tokens_per_sample"],
                            "samples/s": agg["samples_per_s"], "mem MB": agg["peak_memory_mb"],
                        })  # fmt: skip
        df = pd.DataFrame(rows)
        table = pn.widgets.Tabulator(
            df, disabled=True, height=360, show_index=False, sizing_mode="stretch_width",
            pagination=None, groupby=["task"],
        )  # fmt: skip
        meta = data["meta"]
        return pn.Column(pn.pane.Markdown(f"Measured {meta['date']} on {meta['machine']}."), table)

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(
                "## xVal: one token per number\nxVal writes every number as the token "
                "`[NUM]` and multiplies its embedding by the (scaled) value; the digit "
                "schemes P10, P1000, B1999 and FP15 write 3 significant digits and an exponent."
            ),
            self.text_input, self.tokens_pane,
            pn.pane.Markdown("### Ask the five models"), self.question_input, self.answers_pane,
            pn.pane.Markdown("### Out of distribution: a*b over a range of a"),
            pn.widgets.FloatSlider.from_param(self.param.b_value, name="b", step=0.01),
            self.sweep_plot,
            pn.pane.Markdown("### Planetary orbits: the last recorded position, predicted"),
            pn.widgets.IntSlider.from_param(self.param.orbit_seed, name="system"),
            self.orbit_plot,
            pn.pane.Markdown("### Benchmark (benchmarks/results/xval.json)"),
            self.benchmark_table(),
            sizing_mode="stretch_width",
        )  # fmt: skip


def page() -> pn.template.BaseTemplate:
    view = NumbersPage()
    return make_template(TITLE, main=[view], slug=SLUG)
