"""Reading cases: the queue's filters, a case's decisions, a vendor's history, and the ERP's question
"may this payment go out?". Every filter value is a bound parameter, never SQL text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from paysentry.desk.db import Approval, Case, DecisionRecord, User, utcnow

SORTS: dict[str, Any] = {"risk": Case.risk_score.desc(), "due": Case.due_at.asc(), "opened": Case.opened_at.asc()}


class CaseFilters(BaseModel):
    """The queue's filters (query parameters of the page and the API)."""

    model_config = ConfigDict(extra="ignore")

    state: str | None = Field(default=None, max_length=12)
    company: str | None = Field(default=None, max_length=32)
    vendor: str | None = Field(default=None, max_length=64)
    rule: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_.\-]*$")
    severity: str | None = Field(default=None, max_length=8)
    assignee: str | None = Field(default=None, max_length=64)
    min_age_hours: int | None = Field(default=None, ge=0, le=24 * 3650)
    sort: str = Field(default="risk", pattern=r"^(risk|due|opened)$")
    limit: int = Field(default=200, ge=1, le=1000)

    def cleaned(self) -> CaseFilters:
        """Empty form fields mean "any"."""
        data = {k: (None if v == "" else v) for k, v in self.model_dump().items()}
        return CaseFilters.model_validate(data)


def case_query(filters: CaseFilters, now: datetime | None = None) -> Select[Any]:
    query = select(Case)
    if filters.state == "active":
        query = query.where(Case.state.in_(("open", "in_review")))
    elif filters.state:
        query = query.where(Case.state == filters.state)
    if filters.company:
        query = query.where(Case.company_code == filters.company)
    if filters.vendor:
        query = query.where(Case.vendor_id == filters.vendor)
    if filters.rule:
        query = query.where(Case.rule_ids.contains(f",{filters.rule},", autoescape=True))
    if filters.severity:
        query = query.where(Case.severity == filters.severity)
    if filters.assignee == "-":
        query = query.where(Case.assignee_id.is_(None))
    elif filters.assignee:
        query = query.join(User, Case.assignee_id == User.id).where(User.name == filters.assignee)
    if filters.min_age_hours is not None:
        query = query.where(Case.opened_at <= (now or utcnow()) - timedelta(hours=filters.min_age_hours))
    return query.order_by(SORTS[filters.sort], Case.id).limit(filters.limit)


def list_cases(session: Session, filters: CaseFilters) -> list[Case]:
    return list(session.scalars(case_query(filters)).unique())


def case_decisions(session: Session, payment_id: str) -> list[DecisionRecord]:
    query = select(DecisionRecord).where(DecisionRecord.payment_id == payment_id)
    return list(session.scalars(query.order_by(DecisionRecord.event_time, DecisionRecord.id).limit(200)))


@dataclass(frozen=True)
class HistoryLine:
    payment_id: str
    event_time: datetime
    action: str
    amount: str | None
    currency: str | None
    payee_account_masked: str | None
    rule_ids: list[str]


def vendor_history(session: Session, vendor_id: str | None, *, days: int = 30, limit: int = 25) -> list[HistoryLine]:
    """The vendor's payments in the `days` before its latest decision, newest first (latest decision each)."""
    if not vendor_id:
        return []
    latest = session.scalar(select(func.max(DecisionRecord.event_time)).where(DecisionRecord.vendor_id == vendor_id))
    if latest is None:
        return []
    rows = session.scalars(
        select(DecisionRecord)
        .where(DecisionRecord.vendor_id == vendor_id, DecisionRecord.event_time >= latest - timedelta(days=days))
        .order_by(DecisionRecord.event_time.desc(), DecisionRecord.id.desc())
        .limit(limit * 8)
    )
    lines: dict[str, HistoryLine] = {}
    for row in rows:
        if row.payment_id in lines:
            continue
        payment = (row.record.get("explanation") or {}).get("payment") or {}
        lines[row.payment_id] = HistoryLine(
            payment_id=row.payment_id,
            event_time=row.event_time,
            action=row.action,
            amount=payment.get("amount"),
            currency=payment.get("currency"),
            payee_account_masked=payment.get("payee_account_masked"),
            rule_ids=[hit.get("rule_id", "") for hit in row.record.get("rule_hits", [])],
        )
        if len(lines) >= limit:
            break
    return list(lines.values())


def approval_list(session: Session, case: Case) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Approval).where(Approval.case_id == case.id, Approval.round == case.round).order_by(Approval.id)
    )
    return [{"user": a.user_name, "role": a.role, "at": a.created_at.isoformat()} for a in rows]


def case_dict(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "payment_id": case.payment_id,
        "company_code": case.company_code,
        "vendor_id": case.vendor_id,
        "vendor_name": case.vendor_name,
        "amount": str(case.amount) if case.amount is not None else None,
        "currency": case.currency,
        "payee_account_masked": case.payee_account_masked,
        "action": case.action,
        "severity": case.severity,
        "risk_score": case.risk_score,
        "rule_ids": [r for r in case.rule_ids.split(",") if r],
        "state": case.state,
        "verdict": case.verdict,
        "typology": case.typology,
        "assignee": case.assignee.name if case.assignee else None,
        "opened_at": case.opened_at.isoformat(),
        "due_at": case.due_at.isoformat() if case.due_at else None,
        "resolved_at": case.resolved_at.isoformat() if case.resolved_at else None,
        "resolved_by": case.resolved_by,
        "version": case.version,
    }


def payment_status(session: Session, payment_id: str) -> dict[str, Any] | None:
    """The ERP's question before a payment run. None when the desk has never seen the payment.

    `may_go_out` is true when the payment's latest decision is `allow` and no case was ever opened, or
    when its case was released (a later flagged decision reopens the case, which makes it false again)."""
    latest = session.scalars(
        select(DecisionRecord)
        .where(DecisionRecord.payment_id == payment_id)
        .order_by(DecisionRecord.event_time.desc(), DecisionRecord.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return None
    case = session.scalar(select(Case).where(Case.payment_id == payment_id))
    may_go_out = case.state == "released" if case else latest.action == "allow"
    return {
        "payment_id": payment_id,
        "may_go_out": may_go_out,
        "case_state": case.state if case else None,
        "latest_decision": {
            "event_id": latest.event_id,
            "event_type": latest.event_type,
            "event_time": latest.event_time.isoformat(),
            "action": latest.action,
            "risk_score": latest.risk_score,
            "rule_ids": [hit.get("rule_id") for hit in latest.record.get("rule_hits", [])],
        },
        "case": None
        if case is None
        else {
            "id": case.id,
            "state": case.state,
            "verdict": case.verdict,
            "released_by": case.resolved_by if case.state == "released" else None,
            "resolved_at": case.resolved_at.isoformat() if case.resolved_at else None,
            "approvals": approval_list(session, case),
        },
    }
