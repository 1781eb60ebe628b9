"""The desk's transactional outbox on both databases: a verdict and its messages commit together."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from paysentry.desk import cases, importer, outbox
from paysentry.desk.approvals import ApprovalConfig
from paysentry.desk.db import Case, OutboxRecord
from stream.topics import CASES_RESOLVED, LABELS
from tests.desk.support import add_user, decision, get_user, later


def _open_case(db: Session, approvals: ApprovalConfig, payment_id: str = "P1", **kw: Any) -> Case:
    importer.import_decision(db, decision(payment_id, f"e-{payment_id}", **kw), approvals=approvals)
    db.commit()
    return db.scalars(select(Case).where(Case.payment_id == payment_id)).one()


def _rows(db: Session) -> list[OutboxRecord]:
    return list(db.scalars(select(OutboxRecord).order_by(OutboxRecord.id)))


def test_topic_names_are_the_streams() -> None:
    assert (outbox.LABELS_TOPIC, outbox.RESOLVED_TOPIC) == (LABELS, CASES_RESOLVED)


def test_rejecting_writes_a_label_and_a_resolution_with_the_verdict(db: Session, sessions, approvals) -> None:
    add_user(sessions, "ana", "analyst")
    case = _open_case(db, approvals, action="review")
    assert _rows(db) == []
    cases.reject(db, case, case.version, get_user(db, "ana"), verdict="fraud", typology="bec", reason="called")
    db.commit()
    label, resolved = _rows(db)
    assert (label.topic, label.record_id, label.message_key) == ("labels", f"desk-label:{case.id}:1", "P1")
    assert label.payload["type"] == "label.confirmed"
    assert (label.payload["verdict"], label.payload["typology"], label.payload["labeled_by"]) == ("fraud", "bec", "ana")
    assert (resolved.topic, resolved.record_id) == ("cases.resolved", f"desk-case:{case.id}:1")
    assert (resolved.payload["outcome"], resolved.payload["payee_account_masked"]) == ("rejected", "****1234")
    assert label.sent_at is None and resolved.sent_at is None
    assert outbox.unsent_count(db) == 2


def test_a_verdict_rolled_back_leaves_no_message(db: Session, sessions, approvals) -> None:
    add_user(sessions, "ana", "analyst")
    case = _open_case(db, approvals, action="review")
    cases.reject(db, case, case.version, get_user(db, "ana"), verdict="fraud", typology=None, reason=None)
    db.rollback()
    assert _rows(db) == []
    assert db.get(Case, case.id).state == "open"  # type: ignore[union-attr]


def test_an_approval_that_does_not_close_the_case_writes_nothing(db: Session, sessions, approvals) -> None:
    add_user(sessions, "lead1", "lead")
    add_user(sessions, "lead2", "lead")
    case = _open_case(db, approvals, action="hold", amount="60000.00")  # two leads must approve
    outcome = cases.release(db, case, case.version, get_user(db, "lead1"), verdict="legit", typology=None,
                            reason=None, approvals=approvals)  # fmt: skip
    db.commit()
    assert outcome == "approved" and _rows(db) == []
    cases.release(db, case, case.version, get_user(db, "lead2"), verdict="legit", typology=None, reason="ok",
                  approvals=approvals)  # fmt: skip
    db.commit()
    assert [(r.topic, r.payload.get("verdict")) for r in _rows(db)] == [
        ("labels", "legit"),
        ("cases.resolved", "legit"),
    ]


def test_a_reopened_case_closed_again_is_a_new_round_with_new_ids(db: Session, sessions, approvals) -> None:
    add_user(sessions, "ana", "analyst")
    case = _open_case(db, approvals, action="review")
    cases.reject(db, case, case.version, get_user(db, "ana"), verdict="error", typology=None, reason=None)
    db.commit()
    importer.import_decision(db, decision("P1", "e-again", action="hold", event_time=later(60)), approvals=approvals)
    db.commit()
    assert case.round == 2
    cases.reject(db, case, case.version, get_user(db, "ana"), verdict="fraud", typology=None, reason=None)
    db.commit()
    assert [r.record_id for r in _rows(db)] == [
        f"desk-label:{case.id}:1", f"desk-case:{case.id}:1", f"desk-label:{case.id}:2", f"desk-case:{case.id}:2",
    ]  # fmt: skip


def test_claim_in_order_and_mark_sent_once(db: Session, sessions: sessionmaker[Session], approvals) -> None:
    add_user(sessions, "ana", "analyst")
    for payment in ("P1", "P2", "P3"):
        case = _open_case(db, approvals, payment, action="review")
        cases.reject(db, case, case.version, get_user(db, "ana"), verdict="fraud", typology=None, reason=None)
        db.commit()
    claimed = outbox.claim_unsent(db, limit=4)
    assert [r.id for r in claimed] == sorted(r.id for r in claimed) and len(claimed) == 4
    outbox.mark_sent(db, [r.id for r in claimed])
    db.commit()
    db.expire_all()
    first_sent = {r.id: r.sent_at for r in _rows(db) if r.sent_at is not None}
    outbox.mark_sent(db, list(first_sent))  # marking again changes nothing
    db.commit()
    db.expire_all()
    assert len(first_sent) == 4
    assert {r.id: r.sent_at for r in _rows(db) if r.sent_at is not None} == first_sent
    assert [r.message_key for r in outbox.claim_unsent(db)] == ["P3", "P3"]
    db.rollback()


def test_message_gets_the_base_url_and_keeps_the_payment_as_key(db: Session, sessions, approvals) -> None:
    add_user(sessions, "ana", "analyst")
    case = _open_case(db, approvals, action="review")
    cases.reject(db, case, case.version, get_user(db, "ana"), verdict="fraud", typology=None, reason=None)
    db.commit()
    label, resolved = _rows(db)
    topic, key, value = outbox.message_of(resolved, "https://desk.example.com/")
    assert (topic, key) == ("cases.resolved", b"P1")
    assert orjson.loads(value)["case_url"] == f"https://desk.example.com/cases/{case.id}"
    assert orjson.loads(outbox.message_of(resolved)[2])["case_url"] == f"/cases/{case.id}"
    assert orjson.loads(outbox.message_of(label, "https://desk.example.com")[2]) == label.payload


@pytest.mark.parametrize("verdict", ["fraud", "error"])
def test_the_label_is_a_contract_event(db: Session, sessions, approvals, verdict: str) -> None:
    from paysentry.contract import parse_event

    add_user(sessions, "ana", "analyst")
    case = _open_case(db, approvals, action="review")
    cases.reject(db, case, case.version, get_user(db, "ana"), verdict=verdict, typology="t", reason=None)
    db.commit()
    label = _rows(db)[0]
    event = parse_event(outbox.message_of(label)[2], account_key=b"k")
    assert (event.type, event.payment_id, event.verdict) == ("label.confirmed", "P1", verdict)
    assert db.scalar(select(func.count(OutboxRecord.id))) == 2
