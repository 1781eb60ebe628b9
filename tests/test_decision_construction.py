"""`Decision.from_checked` (how the core builds its decisions) gives what pydantic's `model_construct` gives."""

from __future__ import annotations

from typing import Any

from paysentry.contract import Decision, RuleHit


def _values() -> dict[str, Any]:
    hit = RuleHit(rule_id="duplicate_payment", severity="high", action="hold", reason="paid twice",
                  labels={"typology": "duplicate_payment"}, annotations={"summary": "twice"})  # fmt: skip
    return {
        "payment_id": "PAY-1",
        "event_id": "E-1",
        "event_time": "2026-03-02T10:00:00+01:00",
        "event_type": "payment.released",
        "vendor_id": "V1",
        "company_code": "DE01",
        "action": "hold",
        "risk_score": 0.7,
        "severity": "high",
        "rule_hits": [hit],
        "shadow_hits": [],
        "model_score": 0.12,
        "explanation": {"features": {"amount_base": 1200.0}, "payment": {"amount": "1200.00"}},
        "ruleset_version": "sha256:0123456789abcdef",
        "model_version": "hst-00000000",
    }


def test_from_checked_equals_model_construct() -> None:
    built = Decision.from_checked(_values())
    constructed = Decision.model_construct(**_values())
    assert built == constructed
    assert built.to_json() == constructed.to_json()
    assert built.model_fields_set == constructed.model_fields_set
    assert built.model_dump() == constructed.model_dump()
    assert Decision.model_validate_json(built.to_json()) == constructed


def test_from_checked_decisions_copy_and_compare_like_any_decision() -> None:
    built = Decision.from_checked(_values())
    changed = built.model_copy(update={"action": "block"})
    assert changed.action == "block" and built.action == "hold"
    assert changed != built
    assert repr(built).startswith("Decision(payment_id='PAY-1'")
