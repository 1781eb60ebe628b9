"""The routes file (`config/routes.yaml`) as pydantic models.

The shape follows Alertmanager's configuration (a `route` tree with `matchers`, `group_by`,
`group_wait`, `group_interval`, `repeat_interval`, `continue`; `receivers`; `inhibit_rules`) and adds
what on-call needs on top: per-receiver severity policy, digests, quiet hours, rate limits and
fallbacks, escalation chains for unacknowledged alerts, and delivery retries.
Loading, `${ENV}` substitution and cross-checks live in `loader.py`.
"""

from __future__ import annotations

import os
import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from paysentry.alerts.durations import Duration
from paysentry.alerts.matchers import MatcherField
from paysentry.contract import Action, Severity

ChannelName = Literal["email", "sms"]
CHANNEL_NAMES: tuple[ChannelName, ...] = ("email", "sms")
ALL_LABELS = "..."
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _split_recipients(value: Any) -> Any:
    """Recipients may be given one per item or comma-separated (handy with one env var for a list);
    empty items (an unset `${VAR:-}`) are dropped."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if isinstance(item, str):
                out.extend(part.strip() for part in item.split(",") if part.strip())
            else:
                out.append(item)
        return out
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


def _phone(value: str) -> str:
    if not _E164.match(value):
        raise ValueError(f"{value!r} is not a phone number in E.164 form like '+4915112345678'")
    return value


EmailAddresses = Annotated[list[Annotated[str, AfterValidator(_email)]], BeforeValidator(_split_recipients)]
PhoneNumbers = Annotated[list[Annotated[str, AfterValidator(_phone)]], BeforeValidator(_split_recipients)]


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 may read 22:00 as 1320 minutes
        value = f"{value // 60:02d}:{value % 60:02d}"
    if not isinstance(value, str) or not re.match(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", value):
        raise ValueError("must be a time of day like '22:00'")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


ClockTime = Annotated[time, BeforeValidator(_clock)]


class EmailTarget(_Model):
    to: EmailAddresses = Field(min_length=1)
    template: str = "default"


class SmsTarget(_Model):
    to: PhoneNumbers = Field(min_length=1)
    template: str = "default"


class SeverityPolicy(_Model):
    """The lowest severity each channel is used for; a notification below every channel's minimum
    goes into the receiver's digest instead."""

    sms: Severity = "critical"
    email: Severity = "high"


class DigestPolicy(_Model):
    interval: Duration = timedelta(hours=4)
    channel: ChannelName | None = None  # default: email when the receiver has email, else sms


def _sms_only() -> list[ChannelName]:
    return ["sms"]


class QuietHours(_Model):
    """Between `start` and `end` (local time in `timezone`; may wrap past midnight) notifications on
    `channels` below `min_severity` are held and sent as one digest when quiet hours end."""

    start: ClockTime
    end: ClockTime
    timezone: str = "UTC"
    min_severity: Severity = "critical"
    channels: list[ChannelName] = Field(default_factory=_sms_only, min_length=1)
    digest_channel: ChannelName | None = None  # default: email when the receiver has email, else sms

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like 'Europe/Berlin')") from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are the same time")
        return self


class RateLimit(_Model):
    """At most `max` notifications per channel in each window of `per`; the excess is summarised in
    one message when the window ends."""

    max: int = Field(ge=1)
    per: Duration

    @field_validator("per")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return value


class Receiver(_Model):
    name: str = Field(min_length=1)
    email: EmailTarget | None = None
    sms: SmsTarget | None = None
    min_severity: SeverityPolicy = Field(default_factory=SeverityPolicy)
    digest: DigestPolicy = Field(default_factory=DigestPolicy)
    quiet_hours: QuietHours | None = None
    rate_limit: RateLimit | None = None
    fallback: str | None = None

    @model_validator(mode="after")
    def _has_channel(self) -> Receiver:
        if self.email is None and self.sms is None:
            raise ValueError("a receiver needs email or sms (or both)")
        return self

    def has(self, channel: str) -> bool:
        return getattr(self, channel, None) is not None


class Route(_Model):
    receiver: str | None = None
    matchers: list[MatcherField] = Field(default_factory=list)
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    escalation: str | None = None
    continue_: bool = Field(False, alias="continue")
    routes: list[Route] = Field(default_factory=list)

    @field_validator("group_by")
    @classmethod
    def _labels(cls, value: list[str] | None) -> list[str] | None:
        for label in value or []:
            if label != ALL_LABELS and not _LABEL_NAME.match(label):
                raise ValueError(f"{label!r} is not a label name")
        if value and ALL_LABELS in value and len(value) > 1:
            raise ValueError("'...' (group by all labels) cannot be combined with other labels")
        return value


class InhibitRule(_Model):
    source_matchers: list[MatcherField] = Field(min_length=1)
    target_matchers: list[MatcherField] = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)


class EscalationStep(_Model):
    after: Duration
    receiver: str


class Escalation(_Model):
    """Unacknowledged alerts at or above `min_severity` go to each step's receiver in turn, `after`
    the previous notification."""

    min_severity: Severity = "critical"
    steps: list[EscalationStep] = Field(min_length=1)


class DeliveryPolicy(_Model):
    max_attempts: int = Field(default=6, ge=1, le=30)
    backoff: Duration = timedelta(seconds=30)
    max_backoff: Duration = timedelta(minutes=15)
    timeout: Duration = timedelta(seconds=30)


class TemplateSet(_Model):
    """Text templates with `${placeholder}`s (see templates.PLACEHOLDERS); unset parts use the
    built-in default."""

    email_subject: str | None = None
    email_intro: str | None = None
    email_footer: str | None = None
    sms: str | None = None


def _desk_base_url_from_environment() -> str | None:
    return os.environ.get("PAYSENTRY_DESK_BASE_URL") or None


def _desk_base_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not re.fullmatch(r"https?://[^\s\"'<>]{1,190}", value):
        raise ValueError("must be an http(s) URL of at most 200 characters, like 'https://desk.example.com'")
    return value.rstrip("/")


class GlobalSettings(_Model):
    min_action: Action = "review"
    alert_ttl: Duration = timedelta(hours=24)
    runbook_base_url: str | None = None
    # Where the review desk is: alerts then link each payment to its case. Default PAYSENTRY_DESK_BASE_URL.
    desk_base_url: Annotated[str | None, AfterValidator(_desk_base_url)] = Field(
        default_factory=_desk_base_url_from_environment, validate_default=True
    )
    fallback_receiver: str | None = None
    cli: str = "paysentry alerts"
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)


class RoutesConfig(_Model):
    global_: GlobalSettings = Field(default_factory=GlobalSettings, alias="global")
    templates: dict[str, TemplateSet] = Field(default_factory=dict)
    route: Route
    receivers: list[Receiver] = Field(min_length=1)
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    escalations: dict[str, Escalation] = Field(default_factory=dict)

    def receiver(self, name: str) -> Receiver:
        for receiver in self.receivers:
            if receiver.name == name:
                return receiver
        raise KeyError(name)

    @property
    def receiver_names(self) -> list[str]:
        return [r.name for r in self.receivers]
