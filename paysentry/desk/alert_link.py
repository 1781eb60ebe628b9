"""The desk and the alerts share one acknowledgement: the alerts' state in Redis (paysentry/alerts).

A payment's alerts are found from its decisions: an alert's id is `alert_id_for(payment_id, rule ids)`
(paysentry/alerts/model.py), so each flagged decision the desk imported names the alert it raised.
Taking a case (start review, being assigned it) or closing it acknowledges those alerts, exactly as
`paysentry alerts ack` does (the same record, the same alerts audit log): they stop repeating and do not
escalate. The other way round, the case page reads the alerts' state, so an alert acknowledged from the
command line shows as acknowledged, and lists the notifications that went out for them.

Off unless PAYSENTRY_REDIS_URL is set. Redis answers within a couple of seconds or the desk goes on
without it: a case is never held up by the alerts' state, and the page says the state is unavailable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import FastAPI
from sqlalchemy.orm import Session

from paysentry.alerts.model import alert_id_for
from paysentry.alerts.redis_store import RedisStore
from paysentry.alerts.settings import AlertSettings
from paysentry.alerts.state import AlertState
from paysentry.audit import AuditLog
from paysentry.desk import audit
from paysentry.desk.cases import FLAGGED
from paysentry.desk.db import Case
from paysentry.desk.queries import case_decisions

log = logging.getLogger(__name__)
T = TypeVar("T")
REDIS_TIMEOUT = 2.0
OUTCOMES_SCANNED = 1000  # the newest notification outcomes read for "alerts sent" (the list holds 10,000)


def case_alert_ids(session: Session, case: Case) -> list[str]:
    """The ids of the alerts the case's flagged decisions raised, oldest first, each once."""
    ids: list[str] = []
    for decision in case_decisions(session, case.payment_id):
        if decision.action in FLAGGED:
            rule_ids = [str(h.get("rule_id")) for h in decision.record.get("rule_hits") or [] if isinstance(h, dict)]
            alert_id = alert_id_for(case.payment_id, rule_ids or ["model"])
            if alert_id not in ids:
                ids.append(alert_id)
    return ids


@dataclass
class AlertView:
    """One alert as the case page shows it."""

    alert_id: str
    severity: str
    rule_id: str
    received_at: datetime
    acked_by: str | None = None
    acked_at: datetime | None = None
    ack_comment: str = ""
    sent: list[str] = field(default_factory=list)  # "email 2026-11-30 09:12", newest first


class AlertLink:
    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings

    def _run(self, action: Callable[[AlertState], Awaitable[T]]) -> T:
        """Run `action` on a fresh connection (each request thread has its own event loop)."""

        async def run() -> T:
            store = RedisStore.from_url(
                self.settings.redis_url, self.settings.alerts_redis_prefix,
                socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT,
            )  # fmt: skip
            try:
                return await action(AlertState(store, audit=AuditLog(self.settings.audit_log_path)))
            finally:
                await store.close()

        return asyncio.run(run())

    def views(self, alert_ids: list[str]) -> list[AlertView] | None:
        """The alerts still in Redis with their acknowledgements and sent notifications; None when
        Redis cannot be read."""

        async def read(state: AlertState) -> list[AlertView]:
            stored = await state.get_alerts(alert_ids)
            acks = await state.acks(list(stored))
            views = {}
            for alert_id, item in stored.items():
                ack = acks.get(alert_id)
                views[alert_id] = AlertView(
                    alert_id=alert_id, severity=item.alert.severity, rule_id=item.alert.rule_id,
                    received_at=item.received_at, acked_by=ack.by if ack else None, acked_at=ack.at if ack else None,
                    ack_comment=ack.comment if ack else "",
                )  # fmt: skip
            if views:
                for outcome in await state.outcomes(OUTCOMES_SCANNED):
                    if outcome.status != "sent":
                        continue
                    for alert_id in set(outcome.alert_ids) & set(views):
                        views[alert_id].sent.append(f"{outcome.channel or '?'} {outcome.at:%Y-%m-%d %H:%M}")
            return [views[i] for i in alert_ids if i in views]

        try:
            return self._run(read)
        except Exception as exc:  # Redis away or slow: the page goes on without the alerts' state
            log.warning("alert state not read: %s", type(exc).__name__)
            return None

    def acknowledge(self, alert_ids: list[str], by: str, comment: str) -> list[str] | None:
        """Acknowledge the alerts that are in Redis and not acknowledged yet; the ids acknowledged, or
        None when Redis cannot be reached."""

        async def ack(state: AlertState) -> list[str]:
            known = await state.get_alerts(alert_ids)
            already = await state.acks(list(known))
            now = datetime.now(UTC)
            done = []
            for alert_id in known:
                if alert_id not in already:
                    await state.ack(alert_id, by, comment, now)
                    done.append(alert_id)
            return done

        try:
            return self._run(ack)
        except Exception as exc:
            log.warning("alerts not acknowledged: %s", type(exc).__name__)
            return None


def alert_link(app: FastAPI) -> AlertLink | None:
    """The app's link to the alerts' Redis (made once), or None when PAYSENTRY_REDIS_URL is not set."""
    if not hasattr(app.state, "alert_link"):
        settings = AlertSettings()
        app.state.alert_link = AlertLink(settings) if "redis_url" in settings.model_fields_set else None
    link: AlertLink | None = app.state.alert_link
    return link


def acknowledge_case_alerts(
    link: AlertLink | None, session: Session, case: Case, user_name: str, why: str, client: str | None = None
) -> list[str] | None:
    """Acknowledge the case's alerts in the user's name (`why`: what they did in the desk), and say so
    in the desk's audit log. The caller commits."""
    if link is None:
        return None
    done = link.acknowledge(case_alert_ids(session, case), f"desk:{user_name}", f"case {case.id}: {why}")
    if done:
        audit.record(session, actor=user_name, action="alert.ack", target=f"case:{case.id}", client=client,
                     after={"alerts": done, "why": why})  # fmt: skip
    return done


def alerts_for_page(link: AlertLink | None, session: Session, case: Case) -> dict[str, Any]:
    """What the case page shows of the alerts: `enabled`, `alerts` (None when Redis is unavailable)."""
    if link is None:
        return {"enabled": False, "alerts": []}
    return {"enabled": True, "alerts": link.views(case_alert_ids(session, case))}
