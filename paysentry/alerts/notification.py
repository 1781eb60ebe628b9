"""What the dispatcher hands around: notifications, deliveries (one notification on one channel to its
recipients), outcomes, silences and acknowledgements."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from paysentry.alerts.config import ChannelName
from paysentry.alerts.matchers import Matcher, matches_all
from paysentry.alerts.model import Alert
from paysentry.contract import Severity, severity_rank

NotificationKind = Literal["firing", "repeat", "escalation", "digest", "quiet_digest", "rate_summary", "test"]
OutcomeStatus = Literal["sent", "retrying", "failed", "suppressed", "deferred"]


def short_hash(*parts: str, length: int = 16) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


class Notification(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: NotificationKind
    receiver: str
    alerts: list[Alert]
    created_at: datetime
    group_key: str | None = None
    group_labels: dict[str, str] = Field(default_factory=dict)
    new_alert_ids: list[str] = Field(default_factory=list)
    note: str | None = None
    folded: int = 0  # digests and summaries: how many notifications they stand for

    @property
    def severity(self) -> Severity:
        return max((a.severity for a in self.alerts), key=severity_rank, default="info")

    @property
    def alert_ids(self) -> list[str]:
        return [a.alert_id for a in self.alerts]

    @property
    def top(self) -> Alert:
        """The alert a one-line summary is about: highest severity, then highest risk."""
        return max(self.alerts, key=lambda a: (a.rank, a.risk_score))

    @staticmethod
    def make_id(kind: str, receiver: str, group_key: str | None, alert_ids: list[str], at: datetime) -> str:
        return "n-" + short_hash(kind, receiver, group_key or "", ",".join(sorted(alert_ids)), at.isoformat(),
                                 length=10)  # fmt: skip


class Delivery(BaseModel):
    """One notification on one channel; SMS has one delivery per phone number, email one per message."""

    id: str
    notification: Notification
    channel: ChannelName
    recipients: list[str]
    template: str = "default"
    attempts: int = 0
    last_error: str | None = None
    fallback_for: str | None = None  # the receiver whose delivery failed, when this is a fallback

    @staticmethod
    def make_id(notification_id: str, receiver: str, channel: str, recipients: list[str]) -> str:
        return "d-" + short_hash(notification_id, receiver, channel, ",".join(recipients), length=16)


class Outcome(BaseModel):
    at: datetime
    status: OutcomeStatus
    reason: str
    receiver: str | None = None
    channel: str | None = None
    kind: str | None = None
    notification_id: str | None = None
    delivery_id: str | None = None
    alert_ids: list[str] = Field(default_factory=list)
    attempt: int | None = None
    provider_id: str | None = None

    @property
    def reason_code(self) -> str:
        """The reason without its details, for counting ("silenced", "rate_limited", …)."""
        return self.reason.split(":", 1)[0].split(" ", 1)[0]


class Silence(BaseModel):
    id: str
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime

    def parsed(self) -> list[Matcher]:
        return [Matcher.parse(m) for m in self.matchers]

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: dict[str, str], now: datetime) -> bool:
        """True if active and matching. A stored matcher that no longer parses (written by an older
        version, or by hand in Redis) mutes nothing: an alert delivered beats one silently lost."""
        if not self.active(now):
            return False
        try:
            return matches_all(self.parsed(), labels)
        except ValueError:
            return False


class Ack(BaseModel):
    alert_id: str
    by: str
    comment: str = ""
    at: datetime


class StoredAlert(BaseModel):
    alert: Alert
    received_at: datetime
