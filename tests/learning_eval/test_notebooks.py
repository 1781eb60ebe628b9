"""The notebooks run end to end on small data, with their plots rendered (matplotlib Agg)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 900  # seconds per cell: generous, the machine is shared


def run_notebook(name: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("PAYSENTRY_NOTEBOOK_SIZE", "small")
    monkeypatch.setenv("PAYSENTRY_NOTEBOOK_OUT", str(out))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    client = NotebookClient(
        notebook, timeout=TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    return notebook


def outputs_of(notebook: nbformat.NotebookNode) -> list[dict]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]


def test_retrain_notebook_trains_evaluates_registers_and_shadows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = run_notebook("retrain.ipynb", tmp_path, monkeypatch)
    outputs = outputs_of(notebook)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the ROC/PR figure is rendered"
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert sorted(p.name for p in (tmp_path / "registry").iterdir())  # a signed version and its history
    history = [o["data"]["text/plain"] for o in outputs if "text/plain" in o.get("data", {})][-1]
    assert "shadow" in history and "card-fraud-lr" in history


def test_exploration_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = run_notebook("explore_features.ipynb", tmp_path, monkeypatch)
    outputs = outputs_of(notebook)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the histogram is rendered"
    assert any("ModelReport(" in o.get("text", "") for o in outputs)
