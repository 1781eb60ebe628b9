"""KPIs on a small hand-built stream whose answers are known, and on the period boundaries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from paysentry.analytics import compute_kpis
from paysentry.contract import Decision, RuleHit
from tests.analytics.builders import HOUR, T0, Stream

DAY = timedelta(days=1)


def known_stream() -> Stream:
    s = Stream()
    eur = {"company_code": "DE01", "channel": "sepa", "currency": "EUR", "payee_country": "DE", "payee_bank": "B1"}
    usd = {"company_code": "US01", "channel": "ach", "currency": "USD", "payee_country": "US", "payee_bank": "B2"}
    s.payment("P1", timedelta(0), amount="100.00", **eur)
    s.add(
        "psp.settled", DAY, "P1", amount="100.00", fee="0.25", fee_currency="EUR", company_code="DE01", channel="sepa"
    )
    s.payment("P2", timedelta(0), amount="200.00", **usd)
    s.add("psp.failed", 3 * HOUR, "P2", amount="200.00", currency="USD", channel="ach", status_reason="R03 no account")
    s.payment("P3", HOUR, amount="50.00", **eur)
    s.add("psp.settled", 2 * DAY, "P3", amount="49.00", fee="0.25", fee_currency="EUR", channel="sepa")
    s.add("psp.settled", 2 * DAY, "ORPHAN", amount="75.00", currency="EUR", channel="sepa")
    s.payment("P5", 2 * HOUR, amount="10.00", **eur)  # released, never settled
    s.add("payment.created", 5 * DAY, "P6", amount="1.00", company_code="DE01")  # moves the clock past the SLA
    return s


@pytest.fixture
def known(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    stream = known_stream()
    duplicate = orjson.dumps(stream.events[0])
    invalid = orjson.dumps({"type": "payment.created", "event_id": "bad", "event_time": T0.isoformat(), "amount": "-5"})
    path = stream.write(tmp_path / "events.jsonl", [duplicate, invalid, b"not json"])
    return compute_kpis(path)


def test_payments_and_amounts(known: dict) -> None:  # type: ignore[type-arg]
    assert known["payments"] == {"created": 5, "released": 4, "cancelled": 0, "settled": 3, "failed": 1, "returned": 0}
    assert known["amount_by_currency"] == {"EUR": "160.00", "USD": "200.00"}
    assert known["by"]["company"]["DE01"]["payments"] == 3
    assert known["by"]["payee_bank"]["B2"]["amount_by_currency"] == {"USD": "200.00"}
    assert known["by"]["payee_country"]["US"]["failed"] == 1  # the platform event has no country: the ERP's is used


def test_processing_times(known: dict) -> None:  # type: ignore[type-arg]
    stages = known["processing_seconds"]
    assert stages["created_to_approved"]["count"] == 4
    assert stages["created_to_approved"]["p50"] == pytest.approx(3600, rel=0.03)
    assert stages["released_to_submitted"]["p99"] == pytest.approx(60, rel=0.03)
    # P1 settles 22 h after submission, P3 47 h - 2 h 1 min after its submission
    settle = stages["submitted_to_settled"]
    assert settle["count"] == 2
    assert settle["max"] == pytest.approx(DAY.total_seconds() * 2 - 3 * 3600 - 60, rel=0.001)
    assert settle["p50"] <= settle["p90"] <= settle["p99"] <= settle["max"]


def test_failures_fees_and_reconciliation(known: dict) -> None:  # type: ignore[type-arg]
    failure = known["failure_rate"]
    assert failure["overall"] == {"outcomes": 4, "failed": 1, "returned": 0, "rate": 0.25}
    assert failure["by_channel"]["ach"]["rate"] == 1.0
    assert failure["by_channel"]["sepa"]["rate"] == 0.0
    assert failure["reasons"] == {"R03 no account": 1}
    assert known["fees_by_channel"]["sepa"]["fees_by_currency"] == {"EUR": "0.50"}
    assert known["fees_by_channel"]["sepa"]["share_of_amount"]["EUR"] == pytest.approx(0.5 / 224, abs=1e-6)
    recon = known["reconciliation"]
    assert (recon["matched"], recon["amount_mismatch"]) == (1, 1)
    assert (recon["orphan_settlements"], recon["unsettled_past_sla"]) == (1, 1)


def test_exceptions(known: dict) -> None:  # type: ignore[type-arg]
    exceptions = known["exceptions"]
    assert exceptions["duplicates"] == 1
    assert exceptions["rejected"] == 2
    assert sum(exceptions["rejected_by_reason"].values()) == 2


def test_period_bounds(tmp_path: Path) -> None:
    path = known_stream().write(tmp_path / "events.jsonl")
    first_day = compute_kpis(path, end=T0 + DAY)  # P1's settlement is at T0 + 1 day: outside [start, end)
    assert first_day["payments"]["settled"] == 0
    assert first_day["payments"]["released"] == 4
    assert first_day["reconciliation"]["unsettled_past_sla"] == 0
    later = compute_kpis(path, start=T0 + DAY)
    assert later["payments"]["released"] == 0
    assert later["payments"]["settled"] == 3
    # the stage ends in the period: its start before the period still counts
    assert later["processing_seconds"]["submitted_to_settled"]["count"] == 2
    assert later["processing_seconds"]["created_to_approved"]["count"] == 0


def _decision(payment_id: str, at: str, rules: list[str], action: str = "review") -> bytes:
    hits = [RuleHit(rule_id=r, severity="high", action=action, reason="x") for r in rules]  # type: ignore[arg-type]
    decision = Decision(
        payment_id=payment_id,
        event_id=f"{payment_id}-{at}",
        event_time=at,
        event_type="payment.released",
        action=action if hits else "allow",
        risk_score=0.5,
        rule_hits=hits,
    )  # type: ignore[arg-type]
    return decision.to_json()


def test_decisions_and_rule_precision(tmp_path: Path) -> None:
    stream = known_stream()
    at = (T0 + HOUR).isoformat()
    stream.add("label.confirmed", 3 * DAY, "P1", verdict="fraud")
    stream.add("label.confirmed", 3 * DAY, "P3", verdict="legit")
    events = stream.write(tmp_path / "events.jsonl")
    lines = [
        _decision("P1", at, ["big"]),
        _decision("P1", at.replace("09:", "10:"), ["big"]),  # the same payment flagged twice counts once
        _decision("P3", at, ["big", "odd"]),
        _decision("P5", at, ["odd"]),
        _decision("P2", at, []),
        b"{not a decision",
    ]
    decisions = tmp_path / "decisions.jsonl"
    decisions.write_bytes(b"\n".join(lines) + b"\n")
    kpis = compute_kpis(events, decisions)
    result = kpis["decisions"]
    assert result["total"] == 5
    assert result["by_action"] == {"allow": 1, "review": 4}
    assert result["by_rule"] == {"big": 3, "odd": 2}
    precision = result["rule_precision"]
    assert precision["big"] == {
        "flagged_payments": 2,
        "confirmed": 1,
        "legit": 1,
        "unlabelled": 0,
        "precision": 0.5,
        "precision_unlabelled_as_legit": 0.5,
    }
    assert precision["odd"]["precision"] == 0.0 and precision["odd"]["unlabelled"] == 1
    assert kpis["exceptions"]["unreadable_decision_lines"] == 1


def test_without_decisions_the_section_is_empty(known: dict) -> None:  # type: ignore[type-arg]
    assert known["decisions"] is None


def test_money_is_exact(tmp_path: Path) -> None:
    stream = Stream()
    for index in range(3):
        stream.payment(f"P{index}", timedelta(minutes=index), amount="0.1", company_code="C")
    kpis = compute_kpis(stream.write(tmp_path / "events.jsonl"))
    assert Decimal(kpis["amount_by_currency"]["EUR"]) == Decimal("0.3")
