"""Importing decisions: every decision is stored (allowed ones answer the ERP and make a vendor's
history), and a flagged one (`review`, `hold`, `block`) opens its payment's case or updates it.

`import_decision(session, decision_dict) -> bool` is the one entry point: the CLI's `cases import`, the
API's POST /api/v1/decisions and a live consumer of the `decisions` topic all call it. It is
idempotent by the decision's event id (also when two importers race: the database's unique keys
decide), and a new flagged decision on a closed case reopens it. The caller commits.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from paysentry.contract import MAX_DECISION_BYTES, Decision, action_rank, mask_account, severity_rank
from paysentry.desk import audit
from paysentry.desk.approvals import ApprovalConfig
from paysentry.desk.cases import CLOSED, FLAGGED, case_summary
from paysentry.desk.db import Case, DecisionRecord, utcnow

_BUILTIN_APPROVALS = ApprovalConfig()


class InvalidDecision(ValueError):
    """A decision record that is not a decision.schema.json decision; the message says why."""


# Columns a decision fills, and how long each may be (PostgreSQL refuses longer text; SQLite would not).
_ID_LIMITS = {"payment_id": 128, "event_id": 160, "vendor_id": 64, "company_code": 32, "event_type": 32}
_CURRENCY = re.compile(r"[A-Z]{3}")


def _parse_decision(raw: dict[str, Any]) -> tuple[Decision, dict[str, Any]]:
    """The decision and its JSON-ready record, or InvalidDecision. Bounded in size and depth, no NUL
    characters and no NaN (neither can be stored in PostgreSQL), identifiers within their columns."""
    try:
        encoded = orjson.dumps(raw)
    except (orjson.JSONEncodeError, TypeError) as exc:  # nested too deep, a value that is not JSON
        raise InvalidDecision(f"not a JSON decision: {str(exc)[:100]}") from None
    if len(encoded) > MAX_DECISION_BYTES:
        raise InvalidDecision(f"decision larger than {MAX_DECISION_BYTES} bytes")
    if b"\\u0000" in encoded:
        raise InvalidDecision("decision contains a NUL character")
    try:
        decision = Decision.model_validate(orjson.loads(encoded))  # NaN and infinities read back as null
        event_time = datetime.fromisoformat(decision.event_time)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidDecision(f"{where}: {first['msg']}"[:300]) from None
    except ValueError:
        raise InvalidDecision("event_time: not an RFC 3339 time") from None
    if event_time.tzinfo is None:
        raise InvalidDecision("event_time: needs an offset")
    for name, limit in _ID_LIMITS.items():
        value = getattr(decision, name)
        if value is not None and not 0 < len(value) <= limit:
            raise InvalidDecision(f"{name}: must be 1 to {limit} characters")
    return decision, orjson.loads(orjson.dumps(decision.model_dump(mode="json")))


def _payment_facts(record: dict[str, Any]) -> dict[str, Any]:
    """The decision's payment summary, fitted to the case's columns (masked account, bounded text)."""
    payment = record.get("explanation", {}).get("payment")
    payment = dict(payment) if isinstance(payment, dict) else {}
    if payment.get("payee_account_masked"):
        payment["payee_account_masked"] = mask_account(str(payment["payee_account_masked"]))
    for name, limit in (("vendor_name", 256), ("created_by", 64)):
        if payment.get(name) is not None:
            payment[name] = str(payment[name])[:limit]
    if not (isinstance(payment.get("currency"), str) and _CURRENCY.fullmatch(payment["currency"])):
        payment["currency"] = None
    approvers = payment.get("approved_by")
    payment["approved_by"] = [str(a)[:64] for a in approvers[:20]] if isinstance(approvers, list) else []
    return payment


def _amount(text: Any) -> Decimal | None:
    try:
        amount = Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and 0 <= amount < Decimal("1e15") else None


def import_decision(
    session: Session, decision: dict[str, Any], *, approvals: ApprovalConfig | None = None, actor: str = "import"
) -> bool:
    """Store one decision (a dict shaped like decision.schema.json) and open or update its payment's
    case when it is flagged. False when the decision's event id was imported before (nothing changes).
    Raises InvalidDecision for a record that is not a decision."""
    parsed, record = _parse_decision(decision)
    if session.scalar(select(DecisionRecord.id).where(DecisionRecord.event_id == parsed.event_id)) is not None:
        return False
    event_time = datetime.fromisoformat(parsed.event_time)
    payment = _payment_facts(record)
    if "payment" in record.get("explanation", {}):
        record["explanation"]["payment"] = payment
    row = DecisionRecord(
        event_id=parsed.event_id,
        payment_id=parsed.payment_id,
        vendor_id=parsed.vendor_id,
        company_code=parsed.company_code,
        event_type=parsed.event_type,
        event_time=event_time,
        action=parsed.action,
        severity=parsed.severity,
        risk_score=parsed.risk_score,
        model_score=parsed.model_score,
        record=record,
    )
    try:
        with session.begin_nested():  # a concurrent importer may store the same event first
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    if parsed.action in FLAGGED:
        _open_or_update_case(session, parsed, payment, event_time, approvals or _BUILTIN_APPROVALS, actor)
    return True


def _open_or_update_case(
    session: Session,
    decision: Decision,
    payment: dict[str, Any],
    event_time: datetime,
    approvals: ApprovalConfig,
    actor: str,
) -> None:
    erp_users = [u for u in [payment.get("created_by"), *(payment.get("approved_by") or [])] if u]
    rules = {hit.rule_id for hit in decision.rule_hits}
    case = session.scalar(select(Case).where(Case.payment_id == decision.payment_id))
    if case is None:
        case = Case(
            payment_id=decision.payment_id,
            company_code=decision.company_code,
            vendor_id=decision.vendor_id,
            vendor_name=payment.get("vendor_name"),
            amount=_amount(payment.get("amount")),
            currency=payment.get("currency"),
            payee_account_masked=payment.get("payee_account_masked"),
            action=decision.action,
            severity=decision.severity,
            risk_score=decision.risk_score,
            rule_ids=_rule_field(rules),
            erp_users=sorted(set(erp_users)),
            state="open",
            opened_at=event_time,
            due_at=approvals.payment_run(decision.company_code).next_after(event_time),
            version=1,
            round=1,
        )
        try:
            with session.begin_nested():
                session.add(case)
                session.flush()
        except IntegrityError:  # another importer opened it meanwhile: update that one instead
            case = session.scalars(select(Case).where(Case.payment_id == decision.payment_id)).one()
        else:
            audit.record(session, actor=actor, action="case.opened", target=f"case:{case.id}", after=case_summary(case))
            return
    before = case_summary(case)
    case.vendor_name = case.vendor_name or payment.get("vendor_name")
    case.amount = case.amount if case.amount is not None else _amount(payment.get("amount"))
    case.currency = case.currency or payment.get("currency")
    case.payee_account_masked = payment.get("payee_account_masked") or case.payee_account_masked
    if action_rank(decision.action) > action_rank(case.action):
        case.action = decision.action
    if decision.severity and (case.severity is None or severity_rank(decision.severity) > severity_rank(case.severity)):
        case.severity = decision.severity
    case.risk_score = max(case.risk_score, decision.risk_score)
    case.rule_ids = _rule_field(rules | {r for r in case.rule_ids.split(",") if r})
    case.erp_users = sorted(set(case.erp_users) | set(erp_users))
    action = "case.updated"
    if case.state in CLOSED:
        action = "case.reopened"  # new evidence after a resolution: people look again
        case.state, case.verdict, case.resolved_at, case.resolved_by = "open", None, None, None
        case.resolution_reason = None
        case.round += 1
    case.version += 1
    case.updated_at = utcnow()
    session.flush()
    audit.record(session, actor=actor, action=action, target=f"case:{case.id}", before=before, after=case_summary(case))


def _rule_field(rules: set[str], limit: int = 1024) -> str:
    """ ",a,b," (so a rule filter is one bounded LIKE), as many whole ids as fit the column."""
    field = ","
    for rule in sorted(r.replace(",", "_") for r in rules):
        if len(field) + len(rule) + 1 > limit:
            break
        field += rule + ","
    return field
