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

from pydantic import BaseModel, ConfigDict, Field

from paysentry.alerts.redact import masked_account, redact_text
from paysentry.contract import Action, Decision, RuleHit, Severity, action_rank, severity_rank

_SEVERITY_FOR_ACTION: dict[str, Severity] = {"block": "critical", "hold": "high", "review": "medium"}
_PAYMENT_TEXT_FIELDS = ("currency", "channel", "payee_bank", "payee_country", "created_by", "vendor_name",
                        "invoice_id", "po_id", "due_date")  # fmt: skip


class AlertRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule_id: str
    severity: Severity
    action: Action
    reason: str
    runbook: str | None = None


class PaymentFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: str | None = None
    currency: str | None = None
    channel: str | None = None
    payee_account_masked: str | None = None
    payee_bank: str | None = None
    payee_country: str | None = None
    created_by: str | None = None
    approved_by: list[str] = Field(default_factory=list)
    vendor_name: str | None = None
    invoice_id: str | None = None
    po_id: str | None = None
    due_date: str | None = None
    times: dict[str, str] = Field(default_factory=dict)


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

    @property
    def rule_id(self) -> str:
        return self.labels.get("rule_id", "")

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


def _payment_facts(decision: Decision, keep: list[str]) -> PaymentFacts:
    raw = decision.explanation.get("payment")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    facts: dict[str, Any] = {}
    if data.get("amount") is not None:
        facts["amount"] = str(data["amount"])
    for name in _PAYMENT_TEXT_FIELDS:
        if data.get(name) is not None:
            facts[name] = redact_text(str(data[name]), keep)
    facts["payee_account_masked"] = masked_account(
        str(data["payee_account_masked"]) if data.get("payee_account_masked") else None
    )
    approved = data.get("approved_by")
    if isinstance(approved, list):
        facts["approved_by"] = [redact_text(str(a), keep) for a in approved]
    elif approved:
        facts["approved_by"] = [redact_text(str(approved), keep)]
    times = {"event": decision.event_time}
    for key, value in data.items():
        if isinstance(value, str) and (key.endswith("_at") or key.endswith("_time")):
            times[key.removesuffix("_at").removesuffix("_time")] = value
    facts["times"] = times
    return PaymentFacts(**facts)


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
    )
