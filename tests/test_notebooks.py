"""Every tutorial notebook: paired with its py:percent script, stored without outputs,
and executed top to bottom with small parameters (``SCIFM_SMALL=1``)."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


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
