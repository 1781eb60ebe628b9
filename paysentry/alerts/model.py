"""Alerts: what a decision becomes when it needs a person.

`build_alert(decision)` turns a Decision whose action is at or above the threshold (default `review`)
into an Alert with labels for routing (severity, rule_id, rule_ids, company, vendor, channel, team,
action) and the facts a person needs to act (payment, every rule with its reason, scores). The alert id
is stable for a payment and its set of rules, so a redelivered or re-scored decision dedupes.
Free text is redacted here, once, so nothing downstream can leak a clear account number.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paysentry.alerts.redact import masked_account, redact_text
from paysentry.contract import Action, Decision, PaymentSummary, RuleHit, Severity, action_rank, severity_rank

_SEVERITY_FOR_ACTION: dict[str, Severity] = {"block": "critical", "hold": "high", "review": "medium"}
DATA_ALERT_TYPES = frozenset({"data_validation"})  # alerts raised over many payments, not one
MAX_EARLIER_FAILURES = 16  # payment ids an alert carries from a decision's channel incident (the core keeps 16)
MAX_PAYMENT_ID = 128  # the contract's longest payment id
# Text a producer may have filled freely; amounts, the masked account and times are handled on their own.
_PAYMENT_TEXT_FIELDS = ("currency", "channel", "payee_bank", "payee_country", "created_by", "vendor_name",
                        "invoice_id", "po_id", "due_date", "status_reason")  # fmt: skip


class AlertRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule_id: str
    severity: Severity
    action: Action
    reason: str
    runbook: str | None = None


class PaymentFacts(PaymentSummary):
    """The decision's payment summary, redacted, with its times gathered for display."""

    times: dict[str, str] = Field(default_factory=dict)


class ChannelIncident(BaseModel):
    """A flagged failure's channel and the payments that failed on it in the hour before: all to re-send."""

    model_config = ConfigDict(frozen=True)

    channel: str | None = None
    earlier_failures: list[str] = Field(default_factory=list)


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert_id: str
    labels: dict[str, str]
    severity: Severity
    action: Action
    payment_id: str
    event_id: str
    event_time: str
    event_type: str | None = None
    vendor_id: str | None = None
    company_code: str | None = None
    risk_score: float = 0.0
    model_score: float | None = None
    rules: list[AlertRule] = Field(default_factory=list)
    payment: PaymentFacts = PaymentFacts()
    ruleset_version: str | None = None
    incident: ChannelIncident | None = None  # absent in alerts stored before it existed

    @property
    def rule_id(self) -> str:
        return self.labels.get("rule_id", "")

    @property
    def about_a_payment(self) -> bool:
        """False for alerts about the data as a whole (a validation run), which have no case to open."""
        return self.event_type not in DATA_ALERT_TYPES

    @property
    def rank(self) -> int:
        return severity_rank(self.severity)


def alert_id_for(payment_id: str, rule_ids: list[str]) -> str:
    digest = hashlib.sha256(f"{payment_id}|{','.join(sorted(set(rule_ids)))}".encode()).hexdigest()
    return digest[:12]


def strongest_hit(hits: list[RuleHit]) -> RuleHit | None:
    best: RuleHit | None = None
    for hit in hits:
        if best is None or (severity_rank(hit.severity), action_rank(hit.action)) > (
            severity_rank(best.severity),
            action_rank(best.action),
        ):
            best = hit
    return best


def payment_summary_of(decision: Decision) -> PaymentSummary:
    """The payment summary a decision carries. Facts this model does not know or cannot read (a decision
    from another version of the core) are left out rather than costing the alert."""
    raw = decision.explanation.get("payment")
    data = {k: v for k, v in raw.items() if k in PaymentSummary.model_fields} if isinstance(raw, dict) else {}
    if isinstance(data.get("approved_by"), str):
        data["approved_by"] = [data["approved_by"]]
    try:
        return PaymentSummary.model_validate(data)
    except ValidationError as exc:
        unreadable = {error["loc"][0] for error in exc.errors() if error["loc"]}
        return PaymentSummary.model_validate({k: v for k, v in data.items() if k not in unreadable})


def _payment_facts(decision: Decision, keep: list[str]) -> PaymentFacts:
    summary = payment_summary_of(decision)
    # Invoice and PO numbers are identifiers people search the ERP with (SAP's are 10 digits): kept as
    # they are, like the payment id, where free text has its digit runs masked.
    keep = [*keep, *(v for v in (summary.invoice_id, summary.po_id) if v)]
    facts: dict[str, Any] = summary.model_dump(exclude_none=True)
    for name in _PAYMENT_TEXT_FIELDS:
        if name in facts:
            facts[name] = redact_text(facts[name], keep)
    facts["payee_account_masked"] = masked_account(summary.payee_account_masked)
    if summary.approved_by is not None:
        facts["approved_by"] = [redact_text(a, keep) for a in summary.approved_by]
    times = {"event": decision.event_time}
    if summary.released_at is not None:
        times["released"] = summary.released_at
    facts["times"] = times
    return PaymentFacts(**facts)


def channel_incident_of(decision: Decision, keep: list[str]) -> ChannelIncident | None:
    """The decision's channel incident (earlier failures on its channel), or None. Payment ids are
    identifiers, kept as they are; what is not one (from another version, or damaged) is left out."""
    raw = decision.explanation.get("channel_incident")
    named = raw.get("earlier_failures") if isinstance(raw, dict) else None
    if not isinstance(named, list):
        return None
    ids = [p for p in named if isinstance(p, str) and 0 < len(p) <= MAX_PAYMENT_ID][-MAX_EARLIER_FAILURES:]
    if not ids:
        return None
    channel = raw.get("channel") if isinstance(raw, dict) else None
    channel = redact_text(channel[:MAX_PAYMENT_ID], keep) if isinstance(channel, str) and channel else None
    return ChannelIncident(channel=channel, earlier_failures=ids)


def build_alert(decision: Decision, *, min_action: Action = "review") -> Alert | None:
    """The alert for a decision, or None when its action is below `min_action`."""
    if action_rank(decision.action) < action_rank(min_action):
        return None
    keep = [v for v in (decision.payment_id, decision.vendor_id, decision.company_code, decision.event_id) if v]
    hits = list(decision.rule_hits)
    top = strongest_hit(hits)
    severity: Severity = decision.severity or (top.severity if top else _SEVERITY_FOR_ACTION[decision.action])
    rule_ids = [h.rule_id for h in hits] or ["model"]
    payment = _payment_facts(decision, keep)
    labels: dict[str, str] = {}
    if top is not None:
        labels.update({k: redact_text(v, keep) for k, v in top.labels.items()})
    team = next((h.labels["team"] for h in ([top] if top else []) + hits if h.labels.get("team")), None)
    labels.update(
        severity=severity,
        rule_id=top.rule_id if top else "model",
        rule_ids=",".join(sorted(set(rule_ids))),
        action=decision.action,
    )
    optional = {
        "company": decision.company_code,
        "vendor": decision.vendor_id,
        "channel": payment.channel or (top.labels.get("channel") if top else None),
        "team": team,
    }
    labels.update({k: v for k, v in optional.items() if v})
    rules = [
        AlertRule(
            rule_id=h.rule_id,
            severity=h.severity,
            action=h.action,
            reason=redact_text(h.reason, keep),
            runbook=h.annotations.get("runbook_url") or h.annotations.get("runbook"),
        )
        for h in sorted(hits, key=lambda h: (-severity_rank(h.severity), -action_rank(h.action)))
    ]
    return Alert(
        alert_id=alert_id_for(decision.payment_id, rule_ids),
        labels=labels,
        severity=severity,
        action=decision.action,
        payment_id=decision.payment_id,
        event_id=decision.event_id,
        event_time=decision.event_time,
        event_type=decision.event_type,
        vendor_id=decision.vendor_id,
        company_code=decision.company_code,
        risk_score=decision.risk_score,
        model_score=decision.model_score,
        rules=rules,
        payment=payment,
        ruleset_version=decision.ruleset_version,
        incident=channel_incident_of(decision, keep),
    )
