"""What a closed case teaches the engine and tells the ERP.

`label_event(case)`: a `label.confirmed` event of the contract (event.schema.json) with the verdict,
the typology, who decided (`labeled_by`) and when (`event_time`). Its `event_id` is
`desk-label:<case id>:<round>`, so exporting twice gives the same events and the engine counts each once.

`case_resolved(case, approvals)`: the desk's own record for the ERP (not a contract event), one JSON
object per released or rejected case:

    {
      "type": "case.resolved",
      "record_id": "desk-case:<case id>:<round>",   # stable: the same resolution, the same id
      "payment_id": "PAY-...",
      "company_code": "US01" | null,
      "vendor_id": "V10023" | null,
      "outcome": "released" | "rejected",          # released: the payment may go out
      "verdict": "legit" | "error" | "fraud",
      "typology": "duplicate_payment" | null,
      "resolved_by": "desk user name",
      "resolved_at": "2026-11-30T09:12:00.123+00:00",
      "reason": "text" | null,
      "approvals": [{"user": "...", "role": "lead", "at": "..."}],
      "amount": "7370.0000" | null, "currency": "USD" | null,
      "payee_account_masked": "****2496" | null,   # never the clear account
      "case_url": "https://desk.example.com/cases/12" | "/cases/12"
    }
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from paysentry.desk.db import Case
from paysentry.desk.queries import approval_list


def label_event(case: Case) -> dict[str, Any]:
    if case.state not in ("released", "rejected") or case.verdict is None or case.resolved_at is None:
        raise ValueError(f"case {case.id} is not closed")
    event: dict[str, Any] = {
        "type": "label.confirmed",
        "event_id": f"desk-label:{case.id}:{case.round}",
        "event_time": case.resolved_at.isoformat(),
        "payment_id": case.payment_id,
        "verdict": case.verdict,
        "labeled_by": (case.resolved_by or "desk")[:64],
    }
    if case.typology:
        event["typology"] = case.typology[:64]
    if case.vendor_id:
        event["vendor_id"] = case.vendor_id
    if case.company_code:
        event["company_code"] = case.company_code
    return event


def case_resolved(session: Session, case: Case, base_url: str = "") -> dict[str, Any]:
    if case.state not in ("released", "rejected") or case.resolved_at is None:
        raise ValueError(f"case {case.id} is not closed")
    return {
        "type": "case.resolved",
        "record_id": f"desk-case:{case.id}:{case.round}",
        "payment_id": case.payment_id,
        "company_code": case.company_code,
        "vendor_id": case.vendor_id,
        "outcome": case.state,
        "verdict": case.verdict,
        "typology": case.typology,
        "resolved_by": case.resolved_by,
        "resolved_at": case.resolved_at.isoformat(),
        "reason": case.resolution_reason,
        "approvals": approval_list(session, case),
        "amount": str(case.amount) if case.amount is not None else None,
        "currency": case.currency,
        "payee_account_masked": case.payee_account_masked,
        "case_url": f"{base_url.rstrip('/')}/cases/{case.id}",
    }


def closed_cases(session: Session, batch: int = 500) -> Iterator[Case]:
    last_id = 0
    while True:
        query = select(Case).where(Case.state.in_(("released", "rejected")), Case.id > last_id)
        rows = list(session.scalars(query.order_by(Case.id).limit(batch)).unique())
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id


def label_lines(session: Session) -> Iterator[bytes]:
    for case in closed_cases(session):
        yield orjson.dumps(label_event(case)) + b"\n"


def resolved_lines(session: Session, base_url: str = "") -> Iterator[bytes]:
    for case in closed_cases(session):
        yield orjson.dumps(case_resolved(session, case, base_url)) + b"\n"
