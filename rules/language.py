"""The shape of the YAML files in a rules directory, as pydantic models (unknown keys are refused).

A rules file, in the spirit of Prometheus alerting rules:

    groups:
      - name: duplicates
        labels: {team: ap-risk}            # merged into every rule's labels
        rules:
          - id: duplicate_payment           # stable: alerts, tests and audit records refer to it
            description: Same vendor, amount and invoice reference paid twice
            status: active                  # active | shadow | disabled
            severity: high                  # info | low | medium | high | critical
            action: hold                    # allow | review | hold | block
            on: [payment.released]          # event types; default every payment.* and psp.* event
            expr: duplicate_invoice and duplicate_invoice_days <= 30
            reason: "invoice {invoice_norm} already paid as {duplicate_of}"
            labels: {typology: duplicate_payment}
            annotations: {summary: ..., runbook_url: ...}

Named lists live in `lists.yaml` (name: [items]) or `lists/<name>.yaml` ([items]); both also accept
`{description: ..., items: [...]}`. Per-company parameters live in `companies.yaml`, keyed by company
code, with `default` applying to every company (and to events without a known company).
Rule unit tests live in `*.tests.yaml` files (see rules/testing.py).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from paysentry.contract import ACTIONS, EVENT_TYPES, SEVERITIES, Action, Severity
from paysentry.ports import TIMER_EVENT_TYPES

Status = Literal["active", "shadow", "disabled"]
SeverityName = Severity
ActionName = Action
assert SeverityName.__args__ == SEVERITIES and ActionName.__args__ == ACTIONS  # type: ignore[attr-defined]

SCORED_EVENT_TYPES: tuple[str, ...] = tuple(t for t in EVENT_TYPES if t.startswith(("payment.", "psp."))) + tuple(
    TIMER_EVENT_TYPES
)
DEFAULT_ON: tuple[str, ...] = tuple(t for t in EVENT_TYPES if t.startswith(("payment.", "psp.")))
RULE_ID = r"^[A-Za-z][A-Za-z0-9_.\-]{0,127}$"
NAME = r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$"
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

RuleId = Annotated[str, StringConstraints(pattern=RULE_ID)]
ListName = Annotated[str, StringConstraints(pattern=NAME)]


def _forbid() -> ConfigDict:
    return ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not LABEL_NAME.match(key):
            raise ValueError(f"label name {key!r} must be letters, digits and '_', not starting with a digit")
    return value


class RuleSpec(BaseModel):
    model_config = _forbid()

    id: RuleId
    description: str = ""
    status: Status = "active"
    severity: SeverityName
    action: ActionName
    on: list[str] | None = None
    expr: str
    reason: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value)

    @field_validator("on")
    @classmethod
    def _known_types(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("an empty list means the rule never runs; remove 'on' or name event types")
        for pattern in value:
            if not fnmatch.filter(SCORED_EVENT_TYPES, pattern):
                raise ValueError(
                    f"{pattern!r} matches no scored event type (payment.*, psp.*, {', '.join(TIMER_EVENT_TYPES)})"
                )
        return value

    def event_types(self) -> tuple[str, ...]:
        if self.on is None:
            return DEFAULT_ON
        return tuple(t for t in SCORED_EVENT_TYPES if any(fnmatch.fnmatchcase(t, p) for p in self.on))


class GroupSpec(BaseModel):
    model_config = _forbid()

    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    labels: dict[str, str] = Field(default_factory=dict)
    rules: list[dict[str, Any]]  # validated one by one, so one bad rule does not hide the others

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value)


class RulesFileSpec(BaseModel):
    model_config = _forbid()

    groups: list[dict[str, Any]]


ListItem = str | int | float


class ListSpec(BaseModel):
    model_config = _forbid()

    description: str = ""
    items: list[ListItem]


class ExpectSpec(BaseModel):
    """What one decision of a rule test must show. Pick the decision by event_id, or (for timer
    decisions) by payment_id and event_type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str | None = None
    payment_id: str | None = None
    event_type: str | None = None
    fires: list[str] = Field(default_factory=list)
    not_fires: list[str] = Field(default_factory=list)
    shadow_fires: list[str] = Field(default_factory=list)
    action: ActionName | None = None
    reason_contains: dict[str, str] = Field(default_factory=dict)


class TestCaseSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    events: list[dict[str, Any]]
    advance_to: AwareDatetime | None = None
    expect: list[ExpectSpec] = Field(default_factory=list)


class TestFileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)

    tests: list[dict[str, Any]]
