"""The dashboard's figures, computed from what the desk stores, with SQL aggregates only.

Where each figure comes from (docs: the period is [start, end) of decision time; `days` back from the
end, which defaults to the end of the day of the newest decision the desk holds, so a replayed month
shows as it was, not as empty "last 30 days"):
- decisions by action and per day: `desk_decisions` (every imported decision);
- screened releases: the `payment.released` decisions, counted and summed from their payment summary
  (amount, currency, channel), by currency, company and channel;
- flagged payments per rule and each rule's precision: the cases opened in the period (one per flagged
  payment) by rule, with their verdicts: precision = (fraud + error) / (fraud + error + legit), as in
  the KPI report;
- case outcomes: the cases opened in the period by state and verdict;
- the review backlog (open or in review, whatever the period) and its age against the clock now;
- the reconciliation worklist: cases flagged by the settlement rules (amount mismatch, unsettled past
  the SLA, orphan settlement), newest first, each linking to its case.
Company and channel filter all of them (the channel is the decision's payment summary's). An
analytics KPI file (`PAYSENTRY_DESK_KPIS_FILE`, the `kpis.json` of `paysentry report kpis` or of the
demo) adds the platform's view: its headline, failure rate by channel and reconciliation counts, over
the file's own period.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Numeric, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session

from paysentry.desk.db import Case, DecisionRecord, utcnow

RECONCILIATION_RULES = {
    "settlement_mismatch": "amount mismatch",
    "unsettled_sla": "unsettled past SLA",
    "orphan_settlement": "orphan settlement",
}
ACTIONS = ("allow", "review", "hold", "block")
POSITIVE = ("fraud", "error")
AGE_BUCKETS = (("under 1 day", 1), ("1 to 3 days", 3), ("3 to 7 days", 7), ("over 7 days", None))
MAX_DAYS_SHOWN = 92
MAX_RULE_GROUPS = 2000
MAX_WORKLIST = 100
MAX_OPTIONS = 100
_AMOUNT = r"^[0-9]{1,15}(\.[0-9]{1,6})?$"


class DashboardFilters(BaseModel):
    """The dashboard's query parameters (page, panel and API)."""

    model_config = ConfigDict(extra="ignore")

    days: int = Field(default=30, ge=0, le=3650)  # 0: everything
    to: date | None = None  # the last day shown; default: the newest decision's day
    company: str | None = Field(default=None, max_length=32)
    channel: str | None = Field(default=None, max_length=32)
    refresh: int = Field(default=30, ge=2, le=3600)  # seconds between the page's updates

    @classmethod
    def from_query(cls, params: dict[str, str]) -> DashboardFilters:
        """Empty form fields mean "any" (or the default)."""
        return cls.model_validate({k: v for k, v in params.items() if v != ""})

    def query(self) -> str:
        from urllib.parse import urlencode

        values = {k: v for k, v in self.model_dump(mode="json").items() if v is not None}
        return urlencode(values)


def _payment_field(name: str) -> ColumnElement[str]:
    return DecisionRecord.record[("explanation", "payment", name)].as_string()


def _day(session: Session, column: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def period_of(session: Session, filters: DashboardFilters) -> tuple[datetime | None, datetime]:
    """[start, end): `days` days up to the end of `to`, or of the newest decision's day."""
    last_day = filters.to
    if last_day is None:
        newest = session.scalar(select(func.max(DecisionRecord.event_time)))
        last_day = (newest or utcnow()).astimezone(UTC).date()
    end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=UTC)
    return (end - timedelta(days=filters.days) if filters.days else None), end


def _decision_scope(filters: DashboardFilters, start: datetime | None, end: datetime) -> list[ColumnElement[bool]]:
    where = [DecisionRecord.event_time < end]
    if start is not None:
        where.append(DecisionRecord.event_time >= start)
    if filters.company:
        where.append(DecisionRecord.company_code == filters.company)
    if filters.channel:
        where.append(_payment_field("channel") == filters.channel)
    return where


def _case_filters(filters: DashboardFilters) -> list[ColumnElement[bool]]:
    where = []
    if filters.company:
        where.append(Case.company_code == filters.company)
    if filters.channel:
        paid_on = select(DecisionRecord.payment_id).where(_payment_field("channel") == filters.channel)
        where.append(Case.payment_id.in_(paid_on))
    return where


def _case_period(start: datetime | None, end: datetime) -> list[ColumnElement[bool]]:
    return [Case.opened_at < end] + ([Case.opened_at >= start] if start is not None else [])


def decisions_by_action(session: Session, where: list[ColumnElement[bool]]) -> dict[str, int]:
    rows = session.execute(select(DecisionRecord.action, func.count()).where(*where).group_by(DecisionRecord.action))
    counts = {action: 0 for action in ACTIONS}
    counts.update({action: count for action, count in rows})
    return counts


def decisions_per_day(session: Session, where: list[ColumnElement[bool]]) -> dict[str, Any]:
    day = _day(session, DecisionRecord.event_time)
    rows = session.execute(
        select(day, DecisionRecord.action, func.count())
        .where(*where)
        .group_by(day, DecisionRecord.action)
        .order_by(day.desc())
        .limit(MAX_DAYS_SHOWN * len(ACTIONS))
    ).all()
    days = sorted({str(d) for d, _, _ in rows})[-MAX_DAYS_SHOWN:]
    index = {d: i for i, d in enumerate(days)}
    series = {action: [0] * len(days) for action in ACTIONS}
    for d, action, count in rows:
        if str(d) in index and action in series:
            series[action][index[str(d)]] = count
    return {"days": days, "by_action": series}


def screened_releases(session: Session, where: list[ColumnElement[bool]]) -> dict[str, Any]:
    """Released payments the desk screened: counts and amounts (only well-formed amounts are summed)."""
    text = _payment_field("amount")
    amount = case((text.regexp_match(_AMOUNT), cast(text, Numeric(24, 6))), else_=None)
    released = [*where, DecisionRecord.event_type == "payment.released"]
    currency, channel = _payment_field("currency"), _payment_field("channel")
    by_currency = {
        cur or "unknown": {"payments": n, "amount": f"{total or 0:.2f}"}
        for cur, n, total in session.execute(
            select(currency, func.count(), func.sum(amount)).where(*released).group_by(currency).limit(MAX_OPTIONS)
        )
    }
    by_company = dict(
        session.execute(
            select(DecisionRecord.company_code, func.count())
            .where(*released)
            .group_by(DecisionRecord.company_code)
            .limit(MAX_OPTIONS)
        ).all()
    )
    by_channel = dict(
        session.execute(select(channel, func.count()).where(*released).group_by(channel).limit(MAX_OPTIONS)).all()
    )
    return {
        "payments": sum(v["payments"] for v in by_currency.values()),
        "by_currency": dict(sorted(by_currency.items())),
        "payments_by_company": {k or "unknown": v for k, v in sorted(by_company.items(), key=lambda kv: str(kv[0]))},
        "payments_by_channel": {k or "unknown": v for k, v in sorted(by_channel.items(), key=lambda kv: str(kv[0]))},
    }


def rule_precision(session: Session, where: list[ColumnElement[bool]]) -> dict[str, dict[str, Any]]:
    """Per rule: flagged payments (cases) and their verdicts, from one GROUP BY over the rule sets."""
    confirmed = func.sum(case((Case.verdict.in_(POSITIVE), 1), else_=0))
    legit = func.sum(case((Case.verdict == "legit", 1), else_=0))
    rows = session.execute(
        select(Case.rule_ids, func.count(), confirmed, legit)
        .where(*where)
        .group_by(Case.rule_ids)
        .limit(MAX_RULE_GROUPS)
    )
    rules: dict[str, dict[str, Any]] = {}
    for rule_ids, flagged, positive, negative in rows:
        for rule in (r for r in rule_ids.split(",") if r):
            row = rules.setdefault(rule, {"flagged_payments": 0, "confirmed": 0, "legit": 0})
            row["flagged_payments"] += flagged
            row["confirmed"] += positive or 0
            row["legit"] += negative or 0
    for row in rules.values():
        judged = row["confirmed"] + row["legit"]
        row["unlabelled"] = row["flagged_payments"] - judged
        row["precision"] = round(row["confirmed"] / judged, 4) if judged else None
    return dict(sorted(rules.items(), key=lambda kv: (-kv[1]["flagged_payments"], kv[0])))


def case_outcomes(session: Session, where: list[ColumnElement[bool]]) -> dict[str, Any]:
    rows = session.execute(
        select(Case.state, Case.verdict, func.count()).where(*where).group_by(Case.state, Case.verdict)
    )
    by_state: dict[str, int] = {}
    by_verdict: dict[str, int] = {}
    for state, verdict, count in rows:
        by_state[state] = by_state.get(state, 0) + count
        if verdict:
            by_verdict[verdict] = by_verdict.get(verdict, 0) + count
    return {"by_state": dict(sorted(by_state.items())), "by_verdict": dict(sorted(by_verdict.items()))}


def review_backlog(session: Session, where: list[ColumnElement[bool]], now: datetime) -> dict[str, Any]:
    """Open and in-review cases (any period) by age now, the overdue ones (past their due time), the oldest."""
    columns: list[Any] = [func.count(), func.min(Case.opened_at), func.sum(case((Case.due_at < now, 1), else_=0))]
    lower: datetime | None = None
    for _name, days in AGE_BUCKETS:
        upper = now - timedelta(days=days) if days is not None else None
        bounds = [Case.opened_at <= lower] if lower is not None else []
        bounds += [Case.opened_at > upper] if upper is not None else []
        columns.append(func.sum(case((and_(*bounds), 1), else_=0)) if bounds else func.count())
        lower = upper
    active = [*where, Case.state.in_(("open", "in_review"))]
    total, oldest, overdue, *buckets = session.execute(select(*columns).where(*active)).one()
    return {
        "open": total,
        "overdue": overdue or 0,
        "oldest_opened_at": oldest.isoformat() if oldest else None,
        "oldest_age_hours": round((now - oldest).total_seconds() / 3600, 1) if oldest else None,
        "by_age": {name: count or 0 for (name, _), count in zip(AGE_BUCKETS, buckets, strict=True)},
    }


def reconciliation_worklist(session: Session, where: list[ColumnElement[bool]]) -> dict[str, Any]:
    """Cases flagged by a settlement rule: counts per kind and the newest MAX_WORKLIST, each with its case."""
    matches = {rule: Case.rule_ids.contains(f",{rule},", autoescape=True) for rule in RECONCILIATION_RULES}
    counts = session.execute(select(*(func.sum(case((m, 1), else_=0)) for m in matches.values())).where(*where)).one()
    rows = session.scalars(
        select(Case).where(*where, or_(*matches.values())).order_by(Case.opened_at.desc(), Case.id).limit(MAX_WORKLIST)
    ).unique()
    items = []
    for row in rows:
        rules = {r for r in row.rule_ids.split(",") if r}
        items.append({
            "kinds": [label for rule, label in RECONCILIATION_RULES.items() if rule in rules],
            "case_id": row.id, "case_url": f"/cases/{row.id}", "payment_id": row.payment_id,
            "company_code": row.company_code, "vendor_name": row.vendor_name,
            "amount": str(row.amount) if row.amount is not None else None, "currency": row.currency,
            "state": row.state, "opened_at": row.opened_at.isoformat(),
        })  # fmt: skip
    return {
        "counts": {label: count or 0 for label, count in zip(RECONCILIATION_RULES.values(), counts, strict=True)},
        "items": items,
    }


def filter_options(session: Session) -> dict[str, list[str]]:
    companies = session.scalars(
        select(DecisionRecord.company_code)
        .where(DecisionRecord.company_code.is_not(None))
        .distinct()
        .limit(MAX_OPTIONS)
    )
    channel = _payment_field("channel")
    channels = session.scalars(select(channel).where(channel.is_not(None)).distinct().limit(MAX_OPTIONS))
    return {"companies": sorted(c for c in companies if c), "channels": sorted(c for c in channels if c)}


def desk_kpis(session: Session, filters: DashboardFilters, now: datetime | None = None) -> dict[str, Any]:
    """Every figure of the dashboard as one JSON-ready dict (the page's panel and GET /api/v1/kpis)."""
    now = now or utcnow()
    start, end = period_of(session, filters)
    decided = _decision_scope(filters, start, end)
    cases_in_period = [*_case_filters(filters), *_case_period(start, end)]
    return {
        "schema": "paysentry.desk.kpis/1",
        "generated_at": now.isoformat(),
        "period": {"from": start.isoformat() if start else None, "to": end.isoformat()},
        "filters": {"company": filters.company, "channel": filters.channel},
        "decisions": {
            "by_action": decisions_by_action(session, decided),
            "per_day": decisions_per_day(session, decided),
        },
        "screened_releases": screened_releases(session, decided),
        "rules": rule_precision(session, cases_in_period),
        "cases": case_outcomes(session, cases_in_period),
        "backlog": review_backlog(session, _case_filters(filters), now),
        "reconciliation": reconciliation_worklist(session, cases_in_period),
    }


def kpis_file_setting() -> Path | None:
    """`PAYSENTRY_DESK_KPIS_FILE`, read when the app starts."""
    import os

    value = os.environ.get("PAYSENTRY_DESK_KPIS_FILE", "").strip()
    return Path(value) if value else None
