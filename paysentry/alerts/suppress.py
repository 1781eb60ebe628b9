"""Why an alert is not notified right now: acknowledged, silenced, or inhibited by a stronger alert."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from paysentry.alerts.config import InhibitRule, RoutesConfig
from paysentry.alerts.matchers import matches_all
from paysentry.alerts.model import Alert
from paysentry.alerts.notification import Silence, short_hash
from paysentry.alerts.state import AlertState


def inhibit_mark(rule: InhibitRule, labels: Mapping[str, str]) -> str:
    """The key shared by a source alert and the targets it mutes: the rule, and the values of its
    `equal` labels."""
    signature = "|".join(
        [
            ";".join(str(m) for m in rule.source_matchers),
            ";".join(str(m) for m in rule.target_matchers),
            ",".join(rule.equal),
        ]
    )
    values = [f"{name}={labels.get(name, '')}" for name in sorted(rule.equal)]
    return short_hash(signature, *values)


def silenced_by(silences: list[Silence], labels: Mapping[str, str], now: datetime) -> Silence | None:
    for silence in silences:
        if silence.mutes(dict(labels), now):
            return silence
    return None


class Suppressor:
    def __init__(self, state: AlertState, config: Callable[[], RoutesConfig]):
        self.state = state
        self.config = config

    async def note_sources(self, alert: Alert, received_at: datetime) -> None:
        """Remember that this alert mutes matching targets while it is active."""
        cfg = self.config()
        for rule in cfg.inhibit_rules:
            if matches_all(rule.source_matchers, alert.labels):
                await self.state.mark_inhibitor(inhibit_mark(rule, alert.labels), received_at + cfg.global_.alert_ttl)

    async def inhibited(self, alert: Alert, now: datetime) -> str | None:
        for index, rule in enumerate(self.config().inhibit_rules):
            if not matches_all(rule.target_matchers, alert.labels):
                continue
            if matches_all(rule.source_matchers, alert.labels):
                continue  # an alert never mutes itself
            if await self.state.inhibitor_active(inhibit_mark(rule, alert.labels), now):
                equal = ",".join(f"{k}={alert.labels.get(k, '')}" for k in rule.equal)
                return f"inhibited: by inhibit rule {index + 1} ({equal})"
        return None

    async def reasons(self, alerts: list[Alert], now: datetime) -> dict[str, str]:
        """alert id → why it is suppressed, for the suppressed ones."""
        if not alerts:
            return {}
        acks = await self.state.acks([a.alert_id for a in alerts])
        silences = await self.state.silences(now)
        out: dict[str, str] = {}
        for alert in alerts:
            if alert.alert_id in acks:
                out[alert.alert_id] = f"acked: by {acks[alert.alert_id].by}"
                continue
            silence = silenced_by(silences, alert.labels, now)
            if silence is not None:
                out[alert.alert_id] = f"silenced: by {silence.id} ({silence.created_by})"
                continue
            why = await self.inhibited(alert, now)
            if why:
                out[alert.alert_id] = why
        return out
