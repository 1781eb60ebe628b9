"""The daily data validation job: once per period, on one worker, reconcile what the ERP released with
what the payment platform did (paysentry/analytics/reconcile.py), publish the findings as gauges and
alert on each class above its threshold (paysentry/analytics/validation.py, config/validation.yaml).

Which worker: the Faust leader (`on_leader=True`), so one run per period whatever the number of
workers. What it sees: the leader owns only some partitions of the engine's state, so it does not
reconcile from its own decision stage; it reads the inbound topics (`erp.payments`, `psp.events`, every
partition) from `sla_hours + lookback` before the period up to their current end, with a client of its
own, and runs the same validation as `paysentry report reconcile` on those events. The records go to a
temporary file first (one per line, each bounded as the contract bounds events), so memory stays bounded
whatever a day holds; the validation runs in a thread, away from the worker's event loop.

The period is aligned on the interval (for a day: 00:00 to 00:00 UTC, the day before the run), so a run
repeated in the same period (a new leader after a rebalance, a restart) validates the same period and
its alerts have the same ids: the alert dispatcher does not notify twice.

Settings (environment, prefix PAYSENTRY_VALIDATION_): ENABLED (default true), INTERVAL (seconds,
default 86400), CONFIG (thresholds file, default config/validation.yaml), LOOKBACK_HOURS (default 24).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from paysentry.alerts.model import Alert
from paysentry.analytics.reconcile import ReconcileBuilder, reconcile_lines
from paysentry.analytics.sources import bounded_lines
from paysentry.analytics.validation import (
    ValidationConfig,
    default_validation_path,
    load_validation_config,
    over_threshold,
    publish_metrics,
    validation_alert,
)
from paysentry.decode import MAX_RECORD_BYTES
from stream.reasons import exception_reason
from stream.settings import StreamSettings
from stream.topics import ERP, PSP

if TYPE_CHECKING:
    from stream.app import StreamApp

log = logging.getLogger(__name__)
Submit = Callable[[Alert], Awaitable[bool]]


class ValidationJobSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYSENTRY_VALIDATION_", extra="ignore")

    enabled: bool = True
    interval: float = Field(default=86_400.0, ge=10.0, le=31 * 86_400.0, description="seconds between runs")
    config: Path | None = Field(default=None, description="thresholds file (default config/validation.yaml)")
    lookback_hours: float = Field(default=24.0, ge=0, le=24 * 60, description="read this much before sla_hours")


@dataclass(frozen=True)
class Period:
    start: float
    end: float

    @classmethod
    def before(cls, now: float, interval: float) -> Period:
        """The last whole period before `now`, aligned on multiples of `interval` since 1970 (UTC)."""
        end = (now // interval) * interval
        return cls(end - interval, end)


async def _partitions(settings: StreamSettings, topics: list[str]) -> list[TopicPartition]:
    """The partitions of those topics that exist (a consumer's cached metadata may not know them yet)."""
    admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs(), request_timeout_ms=15000)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        if topic["error_code"] == 0
        for partition in sorted(topic["partitions"], key=lambda p: p["partition"])
    ]


async def spool_topics(settings: StreamSettings, names: tuple[str, ...], since: float, out: Path) -> int:
    """Every record of the topics from time `since` (record timestamps) to their end now, one per line
    in `out`; returns how many. A record longer than the contract allows is written as it is and refused
    when read back, with the others' line numbers kept."""
    partitions = await _partitions(settings, [settings.topic(n) for n in names])
    if not partitions:
        return 0
    consumer = AIOKafkaConsumer(**settings.aiokafka_kwargs(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    written = 0
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.offsets_for_times({tp: int(since * 1000) for tp in partitions})
        todo = {}
        for tp in partitions:
            found = starts.get(tp)
            if found is not None and found.offset < ends[tp]:
                consumer.seek(tp, found.offset)
                todo[tp] = ends[tp]
        with out.open("wb") as handle:
            while todo:
                batch = await consumer.getmany(*todo, timeout_ms=1000)
                for tp, messages in batch.items():
                    for message in messages:
                        if message.offset >= todo.get(tp, -1):
                            continue
                        # a newline outside a JSON string is whitespace; inside one it is invalid anyway
                        value = (message.value or b"").replace(b"\n", b" ").replace(b"\r", b" ")
                        handle.write(value + b"\n")
                        written += 1
                for tp in list(todo):
                    if await consumer.position(tp) >= todo[tp]:
                        del todo[tp]
    finally:
        await consumer.stop()
    return written


def _validate_file(path: Path, period: Period, config: ValidationConfig) -> dict[str, Any]:
    builder = ReconcileBuilder(
        datetime.fromtimestamp(period.start, UTC), datetime.fromtimestamp(period.end, UTC), sla_hours=config.sla_hours
    )
    return reconcile_lines(bounded_lines(path, MAX_RECORD_BYTES), builder)


async def run_validation(
    settings: StreamSettings,
    job: ValidationJobSettings,
    config: ValidationConfig,
    submit: Submit,
    *,
    now: float | None = None,
    workdir: Path | None = None,
) -> tuple[dict[str, Any], list[Alert]]:
    """One run: validate the last period before `now`, publish the gauges, submit an alert per class
    above its threshold. Returns the result and the alerts submitted."""
    now = time.time() if now is None else now
    period = Period.before(now, job.interval)
    since = period.start - (config.sla_hours + job.lookback_hours) * 3600
    with tempfile.TemporaryDirectory(dir=workdir, prefix="validation-") as tmp:
        spool = Path(tmp) / "events.jsonl"
        records = await spool_topics(settings, (ERP, PSP), since, spool)
        result = await asyncio.to_thread(_validate_file, spool, period, config)
    publish_metrics(result)
    at = datetime.fromtimestamp(now, UTC).isoformat()
    alerts = [validation_alert(exceeded, result, config, at) for exceeded in over_threshold(result, config)]
    for alert in alerts:
        await submit(alert)
    log.info("data validation of %s: %d records read, findings %s, %d alerts",
             result["period"], records, result["counts"], len(alerts))  # fmt: skip
    return result, alerts


def register_validation(stream_app: StreamApp) -> None:
    """The job on the leader. Alerts go through an alert service of its own on the alerts' Redis (as
    the alerts agent's); with alerts disabled (PAYSENTRY_ALERTS_ENABLED=false) they are only logged."""
    from stream.alerts_agent import AlertsAgentSettings

    job = ValidationJobSettings()
    if not job.enabled:
        log.info("data validation job disabled (PAYSENTRY_VALIDATION_ENABLED=false)")
        return
    config = load_validation_config(job.config or default_validation_path())  # a bad file stops the worker here
    app, settings = stream_app.app, stream_app.settings
    send_alerts = AlertsAgentSettings().enabled

    @app.timer(interval=job.interval, on_leader=True, name="data-validation")
    async def validate() -> None:
        from paysentry.alerts.service import AlertService
        from paysentry.alerts.settings import AlertSettings

        services: list[AlertService] = []

        async def submit(alert: Alert) -> bool:
            if not send_alerts:
                log.warning("data validation alert (alerts disabled): %s", alert.rules[0].reason)
                return False
            if not services:
                services.append(AlertService.from_settings(AlertSettings()))
            return await services[0].dispatcher.submit(alert, datetime.now(UTC))

        try:
            await run_validation(settings, job, config, submit, workdir=settings.data_dir)
        except Exception as exc:  # the next period runs again; the findings stay in the topics
            log.error("data validation failed: %s", exception_reason(exc))
        finally:
            for service in services:
                await service.close()
