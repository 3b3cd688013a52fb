"""The dashboard components outside the app: the live loss curve, the rollout viewer on
trajectories and on a notebook's rollouts, the stylesheet shipped as package data, and
app pages that hold no computation and no CSS."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from scifm.dashboards import STYLESHEET, LiveLoss, Rollout, RolloutViewer

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p for p in (ROOT / "app" / "pages").glob("*.py") if p.stem != "__init__")


def test_stylesheet_is_package_data_and_holds_every_class_the_components_use():
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "dashboards/*.css" in cfg["tool"]["setuptools"]["package-data"]["scifm"]
    for cls in (".xv-chip", ".xv-rounded", ".mpp-panel", ".gx img", ".scifm-error"):
        assert cls in STYLESHEET, cls


def test_live_loss_grows_per_series_and_by_stage():
    live = LiveLoss("t", min_interval=0.0)
    for step in (1, 2, 3):
        live.series("a")({"step": step, "loss": 1.0 / step})
    live({"step": 1, "loss": 0.5, "stage": "align"})
    live({"step": 2, "lr": 1e-3})  # no loss in this record: ignored
    assert live.data["a"] == ([1.0, 2.0, 3.0], [1.0, 0.5, 1 / 3])
    assert live.data["align"] == ([1.0], [0.5])
    fig = live.pane.object
    assert {r.name for r in fig.renderers if r.visible} == {"a", "align"}
    assert sorted(i.label for i in fig.legend[0].items if i.visible) == ["a", "align"]
    assert live.sources["a"].data["step"] == [1.0, 2.0, 3.0]
    # a redraw, or a new series, changes properties only: no model is made after display
    lines = list(fig.renderers)
    live.series("b")({"step": 1, "loss": 2.0})
    assert list(fig.renderers) == lines and live.sources["b"].data["value"] == [2.0]
    live.series("a")({"step": 4, "loss": 0.25})
    assert live.pane.object is fig and list(fig.renderers) == lines
    assert live.sources["a"].data["value"] == [1.0, 0.5, 1 / 3, 0.25]


def test_live_loss_is_a_train_callback():
    from scifm.core import DatasetBatches, TrainConfig, train
    from scifm.core.testing import TinyConfig, TinyMLP, mse_loss, regression_data

    cfg = TinyConfig()
    data = DatasetBatches(regression_data(cfg, 64, seed=0), batch_size=16, seed=1)
    live = LiveLoss(min_interval=60.0)  # throttled: flush() must draw the last points
    tc = TrainConfig(steps=6, lr=1e-3, log_every=2, progress=False)
    train(TinyMLP(cfg), mse_loss, data, tc, device="cpu", callback=live)
    live.flush()
    assert live.data["loss"][0] == [2.0, 4.0, 6.0]
    assert live.sources["loss"].data["step"] == [2.0, 4.0, 6.0]


class _Traj:  # the two attributes of a scifm.pde trajectory the viewer reads
    def __init__(self, n_frames: int) -> None:
        self.fields = torch.linspace(0, 1, 2 * n_frames * 2 * 8 * 8).reshape(2, n_frames, 2, 8, 8)
        self.field_names = ["u", "v"]


def test_viewer_plays_trajectories_without_a_model():
    view = RolloutViewer.from_trajectories({"a": _Traj(5), "b": _Traj(3)}, index=1)
    assert view.sidebar() == [] and view.param.shown.objects == ["a", "b"]
    assert view.shown == "a" and view.player.end == 4
    assert view.frames_pane.object.count("<img") == 1  # truth only
    view.frame = 4
    assert "u, step 5 of 5" in view.frames_pane.object
    view.shown = "b"
    assert view.player.end == 2 and "b: u, step 1 of 3" in view.frames_pane.object
    view.field = "v"
    assert "b: v, step 1 of 3" in view.frames_pane.object
    assert not view.run() and "No model given" in view.message.object
    view.__panel__()


def test_viewer_shows_a_notebooks_rollouts_with_errors_and_curves():
    truth = torch.rand(1, 4, 2, 8, 8)
    preds = {"pretrained": truth + 0.01, "scratch": truth + 0.5}
    roll = Rollout.from_tensors("held out", ["rho", "p"], truth, preds)
    assert roll.truth.shape == (4, 2, 8, 8)
    assert np.all(roll.nrmse["scratch"] > roll.nrmse["pretrained"])
    view = RolloutViewer(rollouts={roll.label: roll})
    assert view.frames_pane.object.count("<img") == 5  # truth, 2 x (prediction, error)
    assert "pretrained NRMSE" in view.frames_pane.object
    assert len(view.curve_pane.object) == 2  # one NRMSE curve per model
    with pytest.raises(ValueError, match="preds\\['x'\\]"):
        Rollout.from_tensors("bad", ["rho", "p"], truth, {"x": truth[:, :2]})


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_app_pages_hold_no_computation_and_no_css(path: Path):
    """A page module: constants, imports, pn.extension, one page(), optionally a warm_up()
    hook that calls the library, and (landing) a Viewer of links; no numpy/torch/holoviews,
    no <style> or CSS, no loops over data."""
    src = path.read_text()
    tree = ast.parse(src)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names} | {n.module.split(".")[0] for n in ast.walk(tree)
                                     if isinstance(n, ast.ImportFrom) and n.module}  # fmt: skip
    assert not imported & {"numpy", "torch", "holoviews", "pandas", "matplotlib"}, imported
    assert "<style" not in src and "{" not in "".join(
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ), f"{path.name} holds CSS or markup with style rules"
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(funcs) - {"warm_up"} == {"page"}, f"{path.name}: page() expected, found {funcs}"
    if "warm_up" in funcs:  # the server's optional start hook: one call into the library
        body = [n for n in funcs["warm_up"].body
                if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]  # fmt: skip
        assert len(body) <= 2 and isinstance(body[-1], ast.Return), (
            f"{path.name}: warm_up() should only call the library"
        )


def test_dashboards_sit_on_top_one_idea_each(scifm_imports):
    """Nothing in the library imports the dashboards; each dashboard module draws on at
    most one idea (the ideas still never meet)."""
    lib = ROOT / "lib" / "scifm"
    for file in lib.rglob("*.py"):
        if "dashboards" not in file.parts:
            bad = {m for m in scifm_imports([file]) if m.startswith("scifm.dashboards")}
            assert not bad, f"{file.relative_to(lib)} imports {bad}"
    for file in (lib / "dashboards").glob("*.py"):
        ideas = {m.split(".")[1] for m in scifm_imports([file])} & {"xval", "mpp", "astroclip"}
        assert len(ideas) <= 1, f"dashboards/{file.name} imports several ideas: {ideas}"
