"""Offline feature tables and model evaluation use the stream's own code, and the notebook runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.catalog import FEATURES
from models.training import RELEASE_TYPOLOGIES, evaluate_online, feature_rows_from_file, load_labels
from paysentry.simulate import SimulationConfig, write_simulation

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("sim")
    write_simulation(SimulationConfig(days=20, seed=3), work / "events.jsonl", work / "labels.jsonl")
    return work / "events.jsonl", work / "labels.jsonl"


def test_feature_rows_carry_the_catalog_and_the_decision(simulated: tuple[Path, Path]) -> None:
    rows = feature_rows_from_file(simulated[0])
    assert rows and set(FEATURES) <= set(rows[0])
    assert {"action", "risk_score", "model_score"} <= set(rows[0])
    assert {row["event_type"] for row in rows} >= {"payment.released", "psp.settled"}


def test_the_online_model_ranks_labelled_payments_above_chance(simulated: tuple[Path, Path]) -> None:
    rows = feature_rows_from_file(simulated[0])
    report = evaluate_online(rows, load_labels(simulated[1], RELEASE_TYPOLOGIES), warmup=200)
    assert report.positives > 10
    assert report.roc_auc is not None and report.roc_auc > 0.65


def test_the_notebook_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = json.loads((ROOT / "notebooks" / "explore_features.ipynb").read_text())
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "notebook", "exec"), namespace)  # noqa: S102
    assert len(namespace["rows"]) > 1000 and namespace["labels"]
