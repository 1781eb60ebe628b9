"""The alerts agent: decisions on the `alerts` topic become notifications (paysentry.alerts).

Every worker runs one; they share their state in Redis (groups, dedup keys, silences, acks, rate
counters), so each notification goes out once between them. Records are acknowledged only after the
dispatcher took them (at least once; the dispatcher deduplicates redeliveries by alert id). While Redis
is unreachable a record is retried with backoff; after the last try it goes to the dead-letter topic
with the reason, so nothing is dropped silently. Notifications that fail delivery for good go there too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson
from pydantic_settings import BaseSettings, SettingsConfigDict

from paysentry.alerts.service import AlertService
from paysentry.alerts.settings import AlertSettings
from stream.topics import ALERTS, DEADLETTER

if TYPE_CHECKING:
    from stream.app import StreamApp

log = logging.getLogger(__name__)


class AlertsAgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYSENTRY_ALERTS_", extra="ignore")

    enabled: bool = True
    tick_seconds: float = 5.0
    attempts: int = 5  # per alert record while Redis (or the dispatcher) fails
    backoff_seconds: float = 0.5


def register_alerts(stream_app: StreamApp) -> None:
    options = AlertsAgentSettings()
    if not options.enabled:
        log.info("alerts agent disabled (PAYSENTRY_ALERTS_ENABLED=false)")
        return
    app, settings = stream_app.app, stream_app.settings
    alerts_topic = app.topic(settings.topic(ALERTS), key_type=bytes, value_type=bytes, key_serializer="raw",
                             value_serializer="raw")  # fmt: skip
    deadletter = app.topic(settings.topic(DEADLETTER), key_type=bytes, value_type=bytes, key_serializer="raw",
                           value_serializer="raw")  # fmt: skip
    service: AlertService | None = None

    async def dead_letter(entry: dict[str, Any]) -> None:
        record = {"source": "alerts", "reason": entry.get("reason", "notification not delivered"), **entry}
        await deadletter.send(key=b"alerts", value=orjson.dumps(record, default=str))

    def current() -> AlertService:
        nonlocal service
        if service is None:  # on the worker's own event loop, once it runs
            service = AlertService.from_settings(AlertSettings(), dead_letter=dead_letter)
        return service

    async def submit(value: bytes) -> None:
        for attempt in range(1, options.attempts + 1):
            try:
                await current().handle_decision(value)
                return
            except Exception as exc:  # Redis down, a bad record: retry, then dead-letter
                if attempt == options.attempts:
                    log.error("alert record dead-lettered after %d attempts: %s", attempt, exc)
                    await deadletter.send(key=b"alerts", value=orjson.dumps({
                        "source": "alerts", "reason": f"alert not submitted: {exc}",
                        "record": value.decode("utf-8", "replace")}))  # fmt: skip
                    return
                await asyncio.sleep(options.backoff_seconds * 2 ** (attempt - 1))

    @app.agent(alerts_topic, name="alert-notifier")
    async def notify(stream: Any) -> None:
        async for value in stream:
            await submit(value)

    @app.timer(interval=options.tick_seconds, name="alert-tick")
    async def tick() -> None:
        try:
            await current().tick()
        except Exception as exc:  # a later tick retries; grouping state is in Redis
            log.warning("alert tick failed: %s", exc)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _close(sender: Any, **kwargs: Any) -> None:
        if service is not None:
            await service.close()
