"""`recall_incident`: a payment named as an earlier failure by a flagged decision counts as caught."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from paysentry.contract import Action, Decision, RuleHit
from paysentry.evaluation import Collector, StreamRun, Windows, evaluate, measure
from paysentry.evaluation_cli import evaluation_app
from paysentry.rulebook import load_rulebook
from tests.builders import raw, release, settle
from tests.learning_eval.test_evaluation import label, when, write

SPIKE = "channel_failure_spike"


def failure(payment_id: str, action: Action | None = None, names: Any = None) -> Decision:
    """A psp.failed decision; with `action`, one rule hit at that action; `names`: its explanation's
    channel incident's earlier failures."""
    hits = [RuleHit(rule_id=SPIKE, severity="medium", action=action, reason="r", labels={"typology": SPIKE})
            for _ in [action] if action]  # fmt: skip
    explanation: dict[str, Any] = {}
    if names is not None:
        explanation["channel_incident"] = {"channel": "sepa", "earlier_failures": names}
    return Decision(
        payment_id=payment_id, event_id=f"e-{payment_id}", event_time=when(1), event_type="psp.failed",
        action=action or "allow", risk_score=0.45 if action else 0.0, rule_hits=hits,
        explanation=explanation,
    )  # fmt: skip


def run_of(*decisions: Decision, flag_at: str = "review") -> dict[str, Any]:
    collector = Collector(flag_at=flag_at)
    for decision in decisions:
        collector.add(decision)
    truth: dict[str, tuple[str, str | None]] = {p: ("error", SPIKE) for p in ("P-1", "P-2", "P-5", "P-6")}
    truth["P-4"] = ("legit", None)
    return measure(StreamRun(collector, truth, (0.0, float("inf"))), k=1)


def test_named_payments_count_for_recall_incident_only() -> None:
    report = run_of(
        failure("P-1"),  # failed before anything could flag
        failure("P-2", "review", ["P-1", "P-OUTSIDE"]),  # P-OUTSIDE has no decision in the window
        failure("P-4", "review", ["P-6", 17, None]),  # a legit failure flagged, naming P-6 (and junk)
        failure("P-5", names=["P-6"]),  # not flagged: names nobody
        failure("P-6"),
    )
    row, summary = report["typologies"][SPIKE], report["summary"]
    assert (row["labelled"], row["caught"], row["recall"]) == (4, 1, 0.25)
    assert (row["caught_incident"], row["recall_incident"]) == (3, 0.75)
    assert row["missed"] == ["P-1", "P-5", "P-6"] and row["missed_incident"] == ["P-5"]
    assert summary["recall"] == 0.25 and summary["recall_incident"] == 0.75
    assert summary["named"] == 2 and summary["named_positive"] == 2
    # precision and false-positive rate count flags only: P-4 is the one false positive
    assert summary["flagged"] == 2 and summary["precision"] == 0.5 and summary["fpr"] == 1.0
    assert row["precision"] == 0.5


def test_a_decision_below_flag_at_names_nobody() -> None:
    report = run_of(failure("P-1"), failure("P-2", "review", ["P-1"]), flag_at="hold")
    assert report["summary"]["recall_incident"] == 0.0 and report["summary"]["named"] == 0


@pytest.mark.parametrize("incident", ["P-1", {"earlier_failures": "P-1"}, {"channel": "sepa"}, None, [["P-1"]]])
def test_a_malformed_incident_names_nobody(incident: Any) -> None:
    decision = failure("P-2", "review")
    decision.explanation["channel_incident"] = incident
    report = run_of(failure("P-1"), decision)
    assert report["summary"]["named"] == 0


@pytest.fixture
def spike(tmp_path: Path) -> tuple[Path, Path]:
    """One sepa settlement then four sepa failures within 20 minutes, each to its own vendor: the
    default rulebook flags the second to the fourth; the first is only named."""
    events = []
    for i in range(5):
        events.append(release(f"P-{i}", when(0, 15), vendor=f"V{i}", channel="sepa", invoice_id=f"I-{i}",
                              payee_account=f"1111222233{i:02d}"))  # fmt: skip
    events.append(settle("P-0", when(0, 16), channel="sepa"))
    for i in range(1, 5):
        events.append(settle(f"P-{i}", when(0, 16 + i / 12), type_="psp.failed", channel="sepa",
                             status_reason="MS03 outage"))  # fmt: skip
    events.append(raw("psp.settled", when(0, 23), payment_id="P-X", amount="5.00", currency="USD", channel="ach"))
    labels = [label(f"P-{i}", when(0, 18), verdict="error", typology=SPIKE) for i in range(1, 5)]
    return write(tmp_path / "events.jsonl", events), write(tmp_path / "labels.jsonl", labels)


def test_evaluate_and_the_cli_report_both_recalls(spike: tuple[Path, Path], tmp_path: Path) -> None:
    events, labels = spike
    report = evaluate(events, labels, load_rulebook(None), Windows(train_days=0))
    row = report["typologies"][SPIKE]
    assert (row["recall"], row["recall_incident"]) == (0.75, 1.0)
    assert row["missed"] == ["P-1"] and row["missed_incident"] == []
    assert report["summary"]["named"] == 1 and report["summary"]["named_positive"] == 1
    out = tmp_path / "report.json"
    result = CliRunner().invoke(evaluation_app, ["evaluate", str(events), "--labels", str(labels),
                                                 "--train-days", "0", "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "recall_incident" in result.output
    assert orjson.loads(out.read_bytes())["typologies"][SPIKE]["recall_incident"] == 1.0
