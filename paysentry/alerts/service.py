"""Wiring for the live stream and the CLI: dispatcher from settings, the tick loop, and send-test.

The stream runs one `AlertService` per worker, all on one Redis:

    service = AlertService.from_settings(AlertSettings(), dead_letter=send_to_dead_letter_topic)

    @app.agent(alerts_topic)
    async def alerts(decisions):
        async for decision in decisions:
            await service.handle_decision(decision)

    @app.timer(interval=5.0)
    async def alerts_tick():
        await service.tick()          # also picks up an edited routes file (a bad one is ignored)

Notification timing runs on the wall clock here (processing time); the dispatcher itself only ever
uses the `now` it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from paysentry.alerts.channels import Channel, DeliveryError
from paysentry.alerts.config import ChannelName, RoutesConfig
from paysentry.alerts.delivery import DeadLetterSink
from paysentry.alerts.dispatcher import AlertDispatcher, TickReport
from paysentry.alerts.email_channel import EmailChannel
from paysentry.alerts.loader import RoutesHolder
from paysentry.alerts.model import Alert, build_alert
from paysentry.alerts.notification import Notification
from paysentry.alerts.redis_store import RedisStore
from paysentry.alerts.routing import all_channels
from paysentry.alerts.settings import AlertSettings
from paysentry.alerts.sms_channel import SmsChannel
from paysentry.alerts.store import KVStore
from paysentry.alerts.templates import render_email, render_sms
from paysentry.audit import AuditLog
from paysentry.contract import Decision, PaymentSummary


def utcnow() -> datetime:
    return datetime.now(UTC)


def real_channels(settings: AlertSettings) -> dict[str, Channel]:
    return {"email": EmailChannel(settings), "sms": SmsChannel(settings)}


def as_decision(value: Decision | Mapping[str, Any] | bytes | str) -> Decision:
    if isinstance(value, Decision):
        return value
    if isinstance(value, bytes | str):
        return Decision.model_validate(orjson.loads(value))
    return Decision.model_validate(dict(value))


class AlertService:
    def __init__(self, dispatcher: AlertDispatcher, holder: RoutesHolder | None = None):
        self.dispatcher = dispatcher
        self.holder = holder

    @classmethod
    def from_settings(
        cls,
        settings: AlertSettings | None = None,
        *,
        dead_letter: DeadLetterSink | None = None,
        store: KVStore | None = None,
        channels: Mapping[str, Channel] | None = None,
    ) -> AlertService:
        settings = settings or AlertSettings()
        holder = RoutesHolder(settings.alerts_routes_file)
        store = store or RedisStore.from_url(settings.redis_url, settings.alerts_redis_prefix)
        dispatcher = AlertDispatcher(
            holder,
            store,
            channels or real_channels(settings),
            dead_letter=dead_letter,
            audit=AuditLog(settings.audit_log_path),
        )
        return cls(dispatcher, holder)

    async def handle_decision(
        self, decision: Decision | Mapping[str, Any] | bytes | str, now: datetime | None = None
    ) -> Alert | None:
        return await self.dispatcher.submit_decision(as_decision(decision), now or utcnow())

    async def tick(self, now: datetime | None = None) -> TickReport:
        if self.holder is not None:
            self.holder.reload_if_changed()
        return await self.dispatcher.tick(now or utcnow())

    async def close(self) -> None:
        await self.dispatcher.close()
        await self.dispatcher.store.close()


def sample_decision(severity: str = "critical") -> Decision:
    action = {"critical": "block", "high": "hold"}.get(severity, "review")
    return Decision.model_validate(
        {
            "payment_id": "TEST-0001", "event_id": "evt-test-0001", "event_time": "2024-01-01T09:00:00+00:00",
            "event_type": "payment.approved", "vendor_id": "V-TEST", "company_code": "1000", "action": action,
            "risk_score": 0.9, "severity": severity, "model_score": 0.8, "ruleset_version": "test",
            "rule_hits": [{"rule_id": "send_test", "severity": severity, "action": action,
                           "reason": "a test notification sent with `paysentry alerts send-test`"}],
            "explanation": {"payment": PaymentSummary(
                amount="12345.67", currency="EUR", channel="sepa", payee_account_masked="****4321",
                payee_bank="TEST BANK", invoice_id="INV-TEST-1", po_id="PO-TEST-1", created_by="test-user",
                approved_by=["test-approver"]).to_dict()},
        }
    )  # fmt: skip


@dataclass
class SendResult:
    channel: str
    recipients: list[str]
    ok: bool
    detail: str


async def send_test(
    config: RoutesConfig,
    receiver_name: str,
    channels: Mapping[str, Channel],
    only: ChannelName | None = None,
    now: datetime | None = None,
) -> list[SendResult]:
    """Render a sample alert with the receiver's templates and send it on its channels right away
    (no grouping, no quiet hours, no rate limit)."""
    receiver = config.receiver(receiver_name)
    alert = build_alert(sample_decision(), min_action="allow")
    assert alert is not None
    now = now or utcnow()
    n = Notification(
        id=Notification.make_id("test", receiver.name, None, [alert.alert_id], now), kind="test",
        receiver=receiver.name, alerts=[alert], created_at=now, new_alert_ids=[alert.alert_id],
        note="This is a test notification; nothing needs to be done.",
    )  # fmt: skip
    results = []
    for name in [only] if only else all_channels(receiver):
        target = receiver.email if name == "email" else receiver.sms
        if target is None:
            results.append(SendResult(name, [], False, f"receiver {receiver.name} has no {name}"))
            continue
        template = config.templates.get(target.template)
        rendered = (render_email if name == "email" else render_sms)(n, template, config.global_)
        batches = [list(target.to)] if name == "email" else [[number] for number in target.to]
        for recipients in batches:
            try:
                provider_id = await channels[name].send(rendered, recipients, thread_id=n.id)
                results.append(SendResult(name, recipients, True, provider_id))
            except DeliveryError as exc:
                results.append(SendResult(name, recipients, False, exc.reason))
    return results
