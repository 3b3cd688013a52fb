"""Every tutorial notebook: paired with its py:percent script, stored without outputs,
executed top to bottom with small parameters (``SCIFM_SMALL=1``), with a live dashboard
or widget; and one tutorial run in a real JupyterLab in chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
LAB_NOTEBOOK = "01_xval_numbers"  # the tutorial the JupyterLab test runs (~10 s small)
LIVE = ("LiveLoss", "TokenizationComparer", "RolloutViewer", "GalaxyExplorer", "widgets.")


def _sources(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ should hold the tutorials"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_paired_and_clean(path: Path):
    script = path.with_suffix(".py")
    assert script.is_file(), f"{path.name} needs its py:percent twin {script.name}"
    nb = nbformat.read(path, as_version=4)
    twin = jupytext.read(script)
    assert _sources(nb) == _sources(twin), f"{path.name} and {script.name} differ: re-sync them"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} is stored with outputs"
            assert cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_has_a_live_dashboard_or_widget_and_states_its_device(path: Path):
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells
                     if c.cell_type == "code")  # fmt: skip
    assert any(name in code for name in LIVE), f"{path.name}: no dashboard or widget"
    assert "pn.extension(" in code, f"{path.name}: call pn.extension() for Panel in Jupyter"
    assert "pick_device()" in code and "print(" in code and "device" in code


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_small(path: Path, tmp_path: Path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("SCIFM_SMALL", "1")
    monkeypatch.setenv("SCIFM_NB_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    # the kernel inherits os.environ (patched above) and runs in notebooks/
    resources = {"metadata": {"path": str(path.parent)}}
    NotebookClient(nb, timeout=600, kernel_name="python3", resources=resources).execute()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_settings(root: Path) -> None:
    """User settings of the test's JupyterLab: every cell kept in the DOM (no windowing,
    so the test can find any output), no news or update checks (nothing to fetch)."""
    for name, value in {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                        "checkForUpdates": False},
    }.items():  # fmt: skip
        path = root / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@pytest.fixture
def lab_url(tmp_path: Path) -> Iterator[str]:
    """JupyterLab on a free port (no token, no browser) in a temp root holding a copy of
    the xVal tutorial, with a kernel named "scifm" that runs this interpreter."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK_DIR / f"{LAB_NOTEBOOK}.ipynb", root)
    kernel = tmp_path / "jupyter" / "kernels" / "scifm"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (scifm)", "language": "python",
    }))  # fmt: skip
    _lab_settings(tmp_path / "settings")
    env = {
        **os.environ, "SCIFM_SMALL": "1", "SCIFM_NB_OUT": str(tmp_path), "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1", "JUPYTER_PATH": str(tmp_path / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }  # fmt: skip
    port = _free_port()
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}",
         "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", f"--ServerApp.root_dir={root}",
         "--ServerApp.port_retries=0", "--ServerApp.allow_root=True",
         "--LabApp.extension_manager=readonly"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/api", timeout=5):
                    break
            except OSError as exc:
                if proc.poll() is not None or time.time() > deadline:
                    text = (tmp_path / "lab.log").read_text()[-2000:]
                    raise RuntimeError(f"JupyterLab did not start:\n{text}") from exc
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.browser
@pytest.mark.notebook
def test_lab_runs_a_tutorial_and_its_dashboard_follows_a_widget(
    lab_url, _browser, screenshot_dir, tmp_path
):
    """Open the xVal tutorial in JupyterLab, run every cell, type into the embedded
    tokenization comparer and see its chips follow (the kernel computes them)."""
    from playwright.sync_api import expect

    slow = 120_000  # ms: JupyterLab, a kernel importing torch and Panel, a busy machine
    context = _browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(slow)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    try:
        page.goto(f"{lab_url}/lab/tree/{LAB_NOTEBOOK}.ipynb")
        notebook = page.locator(".jp-NotebookPanel .jp-Notebook").first
        expect(notebook).to_contain_text("xVal: numbers as one scaled token", timeout=slow)
        expect(page.get_by_text("Python (scifm) | Idle").first).to_be_visible(timeout=slow)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        # the last cell prints each trained model's answer to one held-out question
        expect(notebook).to_contain_text("p1000 [", timeout=2 * slow)
        # the last cell (training on a JSON-lines file) has printed and the kernel is idle:
        # the widget is used after the run, as a reader would (a kernel busy running cells
        # handles comm messages only between cells)
        expect(notebook).to_contain_text("validation:", timeout=2 * slow)
        expect(page.get_by_text("Python (scifm) | Idle").first).to_be_visible(timeout=slow)
        # no cell still queued or running ("[*]"): the status bar can read Idle between cells
        expect(page.locator(".jp-InputPrompt", has_text="[*]")).to_have_count(0, timeout=slow)
        schemes = page.locator(".xv-scheme")
        expect(schemes.first).to_contain_text("32 tokens", timeout=slow)  # the notebook's text
        box = page.locator(".xv-text textarea").first
        wanted = "19 tokens, 3 numbers"
        box.fill("speed = 299792458, t1 = .5-2")
        box.press("Tab")  # leaving the box sends its value (a change event) at once
        try:
            expect(schemes.first).to_contain_text(wanted, timeout=slow // 2)
        except AssertionError:
            # CI once saw the chips not follow a filled box (2026-12-02, no cause in the log):
            # say so, then type as a person does (keystrokes, then the typing pause) once more
            console.append("warning: the chips did not follow fill + Tab; typing again")
            box.fill("")
            box.press_sequentially("speed = 299792458, t1 = .5-2", delay=20)
            expect(schemes.first).to_contain_text(wanted, timeout=slow)
            warnings.warn("the comparer followed only the second, typed entry", stacklevel=1)
        answers = page.locator(".xv-answer")  # the second comparer asks the trained models
        expect(answers).to_have_count(2, timeout=slow)
        box.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=str(screenshot_dir / "lab_xval.png"))
    except AssertionError:
        page.screenshot(path=str(screenshot_dir / "lab_xval_failed.png"), full_page=True)
        print("\n".join(console[-40:]))  # shown by pytest with the failure
        print("-- JupyterLab's log (tail) --")
        print((tmp_path / "lab.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        context.close()
