"""`paysentry evaluate` on tiny hand-built streams whose answers are known."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from paysentry.contract import Decision, RuleHit
from paysentry.evaluation import (
    Collector,
    EvaluationError,
    StreamRun,
    Windows,
    evaluate,
    measure,
)
from paysentry.evaluation_cli import evaluation_app
from paysentry.rulebook import load_rulebook
from tests.builders import raw, release, settle, vendor

DAY0 = datetime(2026, 11, 2, tzinfo=UTC)


def when(days: float, hours: float = 10) -> str:
    return (DAY0 + timedelta(days=days, hours=hours)).isoformat()


def label(payment_id: str, at: str, verdict: str = "fraud", typology: str | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"payment_id": payment_id, "verdict": verdict, "company_code": "US01"}
    if typology:
        fields["typology"] = typology
    return raw("label.confirmed", at, **fields)


def paid(payment_id: str, day: float, hours: float = 10, **fields: Any) -> list[dict[str, Any]]:
    """A release and its settlement an hour later (so no settlement timer fires)."""
    amount = fields.get("amount", "1000.00")
    return [release(payment_id, when(day, hours), **fields), settle(payment_id, when(day, hours + 1), amount)]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


@pytest.fixture
def stream(tmp_path: Path) -> tuple[Path, Path]:
    """Day 0 trains; the test window is day 1 with five payments:
    T1 self-approved and labelled fraud (caught), T2 self-approved and never labelled (a false
    positive), T3 labelled fraud but unremarkable (missed), T4 and T5 plain. T1's label arrives after
    the window; T3's inside it."""
    events = [vendor("V1", when(-30), "111122223333")]
    events += [row for i in range(4) for row in paid(f"W{i}", 0, 9 + i)]
    events += paid("T1", 1, 9, approved_by=["u-clerk"], created_by="u-clerk")
    events += paid("T2", 1, 10, approved_by=["u-ann"], created_by="u-ann")
    events += paid("T3", 1, 11, created_by="u-bob")
    events += paid("T4", 1, 12, created_by="u-cat")
    events += paid("T5", 1, 13, created_by="u-dan")
    labels = [label("T1", when(9), typology="self_approval"), label("T3", when(1, 15), typology="other")]
    return write(tmp_path / "events.jsonl", events), write(tmp_path / "labels.jsonl", labels)


def test_known_answers_per_typology(stream: tuple[Path, Path]) -> None:
    events, labels = stream
    report = evaluate(events, labels, load_rulebook(None), Windows(train_days=1, test_days=1), k=1)
    summary = report["summary"]
    assert summary["payments"] == 5
    assert summary["positives"] == 2
    assert summary["flagged"] == 2
    assert summary["recall"] == 0.5
    assert summary["precision"] == 0.5
    assert summary["fpr"] == pytest.approx(1 / 3, abs=1e-6)
    assert summary["test_from"] == (DAY0 + timedelta(days=1)).isoformat()
    self_approval = report["typologies"]["self_approval"]
    assert self_approval | {"missed": []} == {
        "labelled": 1, "caught": 1, "recall": 1.0, "recall_own": 1.0, "flagged": 2,
        "precision": 0.5, "false_positives": 1, "fpr": pytest.approx(1 / 3, abs=1e-6), "missed": [],
        "caught_incident": 1, "recall_incident": 1.0, "missed_incident": [],
    }  # fmt: skip
    assert report["typologies"]["other"]["recall"] == 0.0
    assert report["typologies"]["other"]["missed"] == ["T3"]
    # Only the label known before the window's end reached the engine; both count as truth.
    assert summary["labels_seen_by_engine"] == 1
    # Card-precision@1 on the only test day: the riskiest payer is one of the two self-approvers.
    (day,) = report["days"]
    assert day["payers"] == 5 and day["fraud_payers"] == 2


def test_flag_at_hold_ignores_reviews(stream: tuple[Path, Path], tmp_path: Path) -> None:
    events, labels = stream
    report = evaluate(events, labels, load_rulebook(None), Windows(train_days=1, test_days=1), flag_at="block")
    assert report["summary"]["flagged"] == 0  # self_approval holds; nothing blocks
    assert report["summary"]["recall"] == 0.0


def test_nothing_after_the_window_reaches_the_engine(stream: tuple[Path, Path], tmp_path: Path) -> None:
    events, labels = stream
    # Day 0 alone: the test window closes before the day-1 payments, so none of them is decided.
    report = evaluate(events, labels, load_rulebook(None), Windows(train_days=0, test_days=1))
    assert report["summary"]["payments"] == 4
    assert report["summary"]["positives"] == 0
    assert report["summary"]["roc_auc"] is None


def decision(payment_id: str, risk: float, day: int, payer: str, *hits: tuple[str, str]) -> Decision:
    rule_hits = [RuleHit(rule_id=rule, severity="high", action=action, reason="r", labels={"typology": rule})  # type: ignore[arg-type]
                 for rule, action in hits]  # fmt: skip
    return Decision(
        payment_id=payment_id, event_id=f"e-{payment_id}", event_time=when(day), action="allow",
        risk_score=risk, rule_hits=rule_hits, explanation={"payment": {"created_by": payer}},
    )  # fmt: skip


def test_ranking_and_card_precision_from_known_scores() -> None:
    collector = Collector()
    for d in (
        decision("A", 0.9, 0, "h1", ("x", "review")),
        decision("B", 0.8, 0, "h2"),
        decision("C", 0.3, 0, "h3"),
        decision("D", 0.1, 0, "h4"),
        decision("E", 0.7, 1, "h1"),
        decision("F", 0.2, 1, "h5", ("x", "allow")),  # an allow hit never flags
    ):
        collector.add(d)
    truth = {"A": ("fraud", "x"), "C": ("error", "x"), "F": ("legit", None)}
    report = measure(StreamRun(collector, truth, (0.0, float("inf"))), k=2)
    summary = report["summary"]
    # positives A (0.9) and C (0.3) against B 0.8, D 0.1, E 0.7, F 0.2: 6 of 8 pairs ordered right
    assert summary["roc_auc"] == 0.75
    assert summary["flagged"] == 1 and summary["precision"] == 1.0 and summary["recall"] == 0.5
    days = {row["day"]: row for row in report["days"]}
    assert days[date(2026, 11, 2).isoformat()]["precision"] == 0.5  # h1 (fraud), h2 (not) of the top 2
    assert days[date(2026, 11, 3).isoformat()]["precision"] == 0.0
    assert summary["card_precision_at_k"] == 0.25
    assert summary["card_precision_at_k_best"] == 0.5  # two positive payers on day one (k = 2), none on day two


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        (dict(train_days=1, test_from=DAY0), "not both"),
        (dict(train_days=-1), "must not be negative"),
        (dict(test_from=DAY0, test_to=DAY0), "after"),
        (dict(test_from=datetime(2026, 1, 1)), "timezone"),
    ],
)
def test_bad_windows_are_refused(windows: dict[str, Any], message: str) -> None:
    with pytest.raises(EvaluationError, match=message):
        Windows(**windows)


def test_cli_prints_tables_and_writes_json(stream: tuple[Path, Path], tmp_path: Path) -> None:
    events, labels = stream
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        evaluation_app,
        ["evaluate", str(events), "--labels", str(labels), "--from", "2026-11-03", "--to", "2026-11-04",
         "--json", str(out), "--k", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "self_approval" in result.output and "card-precision@1" in result.output
    report = orjson.loads(out.read_bytes())
    assert report["summary"]["payments"] == 5 and report["summary"]["recall"] == 0.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--labels", "missing.jsonl"], "no such file"),
        (["--rules", "no-such-dir"], "no such rules directory"),
        (["--from", "yesterday"], "not a date"),
        (["--train-days", "1", "--from", "2026-11-03"], "not both"),
        (["--flag-at", "allow"], "flag_at must be one of"),
        (["--json", "{events}"], "would overwrite an input"),
    ],
)
def test_cli_refuses_bad_input_in_one_line(stream: tuple[Path, Path], args: list[str], message: str) -> None:
    events, _ = stream
    args = [arg.format(events=events) for arg in args]
    result = CliRunner().invoke(evaluation_app, ["evaluate", str(events), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert events.stat().st_size > 0


def test_hostile_lines_are_counted_not_fatal(stream: tuple[Path, Path], tmp_path: Path) -> None:
    events, labels = stream
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(events.read_bytes() + b"{not json\n" + b'{"type": "payment.released"}\n' + b"[" * 5000 + b"\n")
    report = evaluate(bad, labels, load_rulebook(None), Windows(train_days=1, test_days=1))
    assert report["summary"]["rejected_lines"] == 3
    assert report["summary"]["payments"] == 5
