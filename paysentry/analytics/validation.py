"""What a data validation run (reconcile.py) leads to: gauges, and an alert for each class whose count
for one company is above its threshold.

Thresholds live in a YAML file (config/validation.yaml), read through the bounded YAML loader and
validated (unknown keys refused, errors as `file:line:col: message`):

    sla_hours: 72
    default_threshold: 0            # alert when a class has more findings than this for a company
    thresholds: {redelivered_event: 50, invalid_event: 20}
    default_severity: high
    severity: {orphan_settlement: critical}
    runbook_url: https://wiki.example.com/paysentry/runbooks/data-validation

An alert goes through the alert routes like any other, with the labels `kind: data_validation`,
`class`, `company`, `count`, `severity` and `rule_id: data_validation.<class>`; its id is stable for a
class, company and validated period, so a run repeated for the same period does not notify twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from paysentry.alerts.model import Alert, AlertRule, PaymentFacts
from paysentry.alerts.redact import redact_text
from paysentry.analytics import metrics
from paysentry.analytics.findings import CLASSES, ClassName
from paysentry.contract import Severity
from paysentry.yamlsource import load_model_file

SUMMARIES = {
    "released_not_submitted": "payments released by the ERP and never submitted to the platform",
    "unsettled_past_sla": "payments submitted and without an outcome past the settlement SLA",
    "amount_mismatch": "payments settled for another amount than released",
    "orphan_settlement": "platform payments the ERP never announced",
    "duplicate_payment": "payments of an invoice (vendor, invoice, amount) already paid",
    "redelivered_event": "events delivered again with the same id",
    "missing_fields": "events refused for a missing required field",
    "invalid_event": "events refused by the contract",
}
IDS_IN_SUMMARY = 5


def _web_url(value: str | None) -> str | None:
    if value is not None and not (value.startswith(("https://", "http://")) and len(value) <= 300):
        raise ValueError("must be an http(s) URL of at most 300 characters")
    return value


class ValidationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sla_hours: float = Field(default=72.0, gt=0, le=24 * 365)
    default_threshold: int = Field(default=0, ge=0)
    thresholds: dict[ClassName, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    default_severity: Severity = "high"
    severity: dict[ClassName, Severity] = Field(default_factory=dict)
    runbook_url: Annotated[str | None, AfterValidator(_web_url)] = None

    def threshold(self, name: str) -> int:
        return self.thresholds.get(name, self.default_threshold)  # type: ignore[call-overload]

    def severity_of(self, name: str) -> Severity:
        return self.severity.get(name, self.default_severity)  # type: ignore[call-overload]


def default_validation_path() -> Path:
    """config/validation.yaml under the working directory, else the one shipped in the repository."""
    local = Path("config/validation.yaml")
    return local if local.is_file() else Path(__file__).resolve().parents[2] / "config" / "validation.yaml"


def load_validation_config(path: Path) -> ValidationConfig:
    """The thresholds at `path` (an empty file: the defaults), or InvalidSource with every problem as
    `file:line:col: message`."""
    return load_model_file(
        path,
        ValidationConfig,
        what="the validation file",
        expected="a mapping with thresholds and severities",
        empty_ok=True,
    )


@dataclass(frozen=True)
class Exceeded:
    """A class whose findings for one company are above the threshold."""

    name: str
    company: str
    count: int
    threshold: int
    examples: tuple[str, ...]


def over_threshold(result: dict[str, Any], config: ValidationConfig) -> list[Exceeded]:
    found = []
    for name in CLASSES:
        finding = result["classes"][name]
        limit = config.threshold(name)
        for company, count in finding["by_company"].items():
            if count > limit:
                examples = [
                    str(item.get("payment_id") or item.get("event_id") or f"line {item.get('line')}")
                    for item in finding["items"]
                    if (item.get("company") or "-") == company
                ]
                found.append(Exceeded(name, company, count, limit, tuple(examples[:IDS_IN_SUMMARY])))
    return found


def _period_label(result: dict[str, Any]) -> str:
    period = result["period"]
    return f"{period['from'] or 'start'}..{period['to'] or 'end'}"


def validation_alert(exceeded: Exceeded, result: dict[str, Any], config: ValidationConfig, at: str) -> Alert:
    """The alert for one exceeded threshold; `at` (RFC 3339) is when the run finished."""
    period = _period_label(result)
    ident = f"data_validation|{exceeded.name}|{exceeded.company}|{period}"
    severity = config.severity_of(exceeded.name)
    rule_id = f"data_validation.{exceeded.name}"
    keep = [exceeded.company, *exceeded.examples]
    first = f"; first: {', '.join(exceeded.examples)}" if exceeded.examples else ""
    summary = redact_text(
        f"{exceeded.count} {SUMMARIES[exceeded.name]} for company {exceeded.company} in {period} "
        f"(threshold {exceeded.threshold}){first}",
        keep,
    )
    labels = {
        "kind": "data_validation",
        "class": exceeded.name,
        "company": exceeded.company,
        "count": str(exceeded.count),
        "severity": severity,
        "rule_id": rule_id,
        "rule_ids": rule_id,
        "action": "review",
    }
    return Alert(
        alert_id=hashlib.sha256(ident.encode()).hexdigest()[:12],
        labels=labels,
        severity=severity,
        action="review",
        payment_id=f"validation:{exceeded.name}:{exceeded.company}",
        event_id=f"validation:{period}",
        event_time=at,
        event_type="data_validation",
        company_code=exceeded.company,
        rules=[
            AlertRule(rule_id=rule_id, severity=severity, action="review", reason=summary, runbook=config.runbook_url)
        ],  # fmt: skip
        payment=PaymentFacts(status_reason=summary, times={"validated": period, "run": at}),
    )


def publish_metrics(result: dict[str, Any]) -> None:
    """The run's counts as gauges (does nothing unless metrics are enabled: metrics.py)."""
    by_company: dict[str, dict[str, int]] = {name: result["classes"][name]["by_company"] for name in CLASSES}
    metrics.publish_validation(result["counts"], by_company)
