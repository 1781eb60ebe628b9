"""Offline feature tables and model evaluation use the stream's own code, and the notebook runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.training import RELEASE_TYPOLOGIES, evaluate_online, feature_rows, feature_rows_from_file, load_labels
from paysentry.core import EmptyRuleset
from paysentry.feature_catalog import FEATURES
from paysentry.params import CompanyParams
from paysentry.simulate import SimulationConfig, write_simulation
from tests.builders import at, parse, release

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


class InstantSla(EmptyRuleset):
    """A settlement SLA under a second: a release is overdue at its own event time."""

    def company(self, company_code: str | None) -> CompanyParams:
        return CompanyParams(settlement_sla_hours=0.0001)


def test_feature_rows_include_the_timer_decisions_due_by_the_last_event() -> None:
    events = [parse(release("FIRST", at(0))), parse(release("LAST", at(1)))]
    rows = feature_rows(events, InstantSla())
    assert [(row["event_type"], row["payment_id"]) for row in rows] == [
        ("payment.released", "FIRST"), ("sla.unsettled", "FIRST"), ("payment.released", "LAST"),
        ("sla.unsettled", "LAST"),  # due at the last event's own time: fired by the final advance
    ]  # fmt: skip
