"""Decisions are built from checked parts without validating them again: they still are exactly what
the contract's models would have made of the same values."""

from __future__ import annotations

import random

from paysentry.contract import Decision, PaymentSummary
from paysentry.core import Engine
from paysentry.event_time import epoch
from paysentry.replay import Replayer
from paysentry.rulebook import load_rulebook
from paysentry.state import PROFILE_MEMORY, AccountProfile, CompanyProfile, PaymentRecord, VendorMaster, VendorProfile
from paysentry.windows import DAY
from tests.builders import KEY, at, parse, raw, release, settle, vendor


def _events() -> list[dict]:
    events: list[dict] = [vendor("V1", at(days=-40), "ACC00000001"), vendor("V2", at(days=-40), "ACC00000002")]
    for i in range(60):
        v = 1 + i % 2
        when = at(hours=i * 5)
        events.append(raw("payment.created", when, payment_id=f"P{i}", vendor_id=f"V{v}", amount=f"{900 + i}.50",
                          currency="USD", company_code="US01", invoice_id=f"INV-{i % 40}", po_id=f"PO-{i}",
                          due_date="2026-12-01", vendor_name="Acme Ltd", payee_bank="First Bank",
                          payee_country="US", approved_by=["u-a", "u-b"]))  # fmt: skip
        events.append(release(f"P{i}", at(hours=i * 5 + 1), amount=f"{900 + i}.50", vendor=f"V{v}",
                              payee_account=f"ACC0000000{v}", invoice_id=f"INV-{i % 40}"))  # fmt: skip
        if i % 4 == 0:
            events.append(settle(f"P{i}", at(hours=i * 5 + 3), amount=f"{900 + i}.50", status_reason="done"))
    events.append(settle("UNKNOWN", at(hours=400)))  # a platform payment no ERP event matches: a timer decides
    return events


def test_decisions_are_what_the_models_would_validate() -> None:
    replayer = Replayer(Engine(load_rulebook(None)), KEY)
    events = [parse(e) for e in _events()]
    end = epoch(events[-1].event_time) + 7 * DAY  # every timer due by then fires
    decisions = list(replayer.run(events, until=end))
    assert len(decisions) > 150
    assert any(d.event_type == "psp.unmatched" for d in decisions)  # timer decisions are built the same way
    assert any(d.rule_hits for d in decisions)
    for decision in decisions:
        validated = Decision.model_validate(decision.model_dump())
        assert validated.to_json() == decision.to_json()
        payment = decision.explanation["payment"]
        assert PaymentSummary.model_validate(payment).to_dict() == payment
    summaries = [d.explanation["payment"] for d in decisions]
    assert any({"po_id", "due_date", "payee_bank", "vendor_name", "approved_by"} <= set(s) for s in summaries)
    assert any("released_at" in s for s in summaries)


def _idle_past_as_written(entity: object, now: int) -> bool:
    last = entity.last_active()  # type: ignore[attr-defined]
    memory = entity.memory  # type: ignore[attr-defined]
    return memory is not None and last is not None and now > last + memory


def test_idle_past_takes_a_short_cut_to_the_same_answer() -> None:
    rng = random.Random(3)

    def maybe() -> int | None:
        return None if rng.random() < 0.3 else rng.randrange(0, 3 * PROFILE_MEMORY)

    for _ in range(3000):
        cls = rng.choice([VendorProfile, AccountProfile, CompanyProfile, PaymentRecord, VendorMaster])
        entity = cls(touched_at=maybe())
        for name in ("first_seen", "last_seen", "last_paid", "created_at", "released_at", "settled_at"):
            if hasattr(entity, name):
                setattr(entity, name, maybe())
        now = rng.randrange(0, 4 * PROFILE_MEMORY)
        assert entity.idle_past(now) == _idle_past_as_written(entity, now)
