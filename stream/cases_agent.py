"""The review desk in the worker: cases filled live from `decisions`, verdicts published back.

Enabled when the desk's database is set (PAYSENTRY_DATABASE_URL). Every worker then runs

- the **cases agent** on `decisions` (the app's consumer group shares its partitions): each decision goes
  through `paysentry.desk.importer.import_decision`, idempotent by decision event id, so a redelivered
  record changes nothing and the cases equal what `paysentry cases import` makes from replay's decisions
  file. A record that is not a decision (or that the database refuses) goes to the dead-letter topic
  with its reason, topic, partition and offset (never its content) and the agent goes on; while the
  database cannot be reached the record is retried with backoff, not dropped. A delivery guard (the
  one in front of the engine's agents, stream/delivery.py) gives it each partition once and in order.
- the **outbox publisher** (stream/desk_publish.py), unless PAYSENTRY_DESK_PUBLISH=false.

Database calls run in a worker thread, off the event loop that keeps the consumer's heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from stream.desk_publish import OutboxPublisher, fault_from_env
from stream.topics import DEADLETTER, DECISIONS

if TYPE_CHECKING:
    from paysentry.desk.approvals import ApprovalConfig
    from stream.app import StreamApp

log = logging.getLogger(__name__)
MAX_RECORD_BYTES = 512 * 1024
RETRY_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)


class CaseImporter:
    """Imports one `decisions` record; says why when it cannot."""

    def __init__(self, sessions: sessionmaker[Session], approvals: ApprovalConfig) -> None:
        self.sessions, self.approvals = sessions, approvals
        self.imported = self.duplicates = self.refused = 0

    def handle(self, value: Any) -> str | None:
        """None when the decision is stored (or was already); the reason when it cannot be. Raises
        OperationalError and the like when the database is unreachable (the caller retries)."""
        from paysentry.desk.importer import InvalidDecision, import_decision

        if not isinstance(value, bytes) or not value:
            return "empty record (no value)"
        if len(value) > MAX_RECORD_BYTES:
            return f"record larger than {MAX_RECORD_BYTES} bytes"
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError:
            return "record is not JSON"
        if not isinstance(record, dict):
            return "record is not a JSON object"
        with self.sessions() as session:
            try:
                new = import_decision(session, record, approvals=self.approvals, actor="stream")
                session.commit()
            except InvalidDecision as exc:
                session.rollback()
                return f"not a decision: {exc}"[:400]
            except (OperationalError, DisconnectionError):
                session.rollback()
                raise
            except DBAPIError as exc:  # a value this database refuses: the record's fault, not the database's
                session.rollback()
                if exc.connection_invalidated:
                    raise
                return f"the desk's database refused the decision: {type(exc.orig).__name__}"
        if new:
            self.imported += 1
        else:
            self.duplicates += 1
        return None


def register_cases(stream_app: StreamApp) -> None:
    settings = stream_app.settings
    if settings.database_url is None:
        return
    from paysentry.desk.approvals import load_or_builtin
    from paysentry.desk.db import open_database
    from paysentry.desk.settings import DeskSettings

    app = stream_app.app
    approvals = load_or_builtin(DeskSettings().approvals_path)  # a broken file stops the worker's start
    engine, sessions = open_database(settings.database_url.get_secret_value())
    importer = CaseImporter(sessions, approvals)
    publisher = OutboxPublisher(settings, sessions, after_send=fault_from_env())
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    decisions = app.topic(settings.topic(DECISIONS), partitions=settings.partitions, **raw)
    deadletter = app.topic(settings.topic(DEADLETTER), **raw)
    guard = stream_app.guard  # covers `decisions` too: the engine's agents and this one, one guard

    async def import_one(event: Any) -> None:
        message = event.message
        for attempt in range(10**9):
            try:
                reason = await asyncio.to_thread(importer.handle, event.value)
                break
            except (OperationalError, DisconnectionError, DBAPIError) as exc:  # unreachable: wait, keep it
                delay = RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)]
                log.warning("desk database unavailable (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
        if reason is not None:
            importer.refused += 1
            await deadletter.send(key=DECISIONS.encode(), value=orjson.dumps({
                "source": "cases", "reason": reason, "topic": message.topic, "partition": message.partition,
                "offset": message.offset}))  # fmt: skip

    @app.agent(decisions, name="desk-cases")
    async def cases_agent(stream: Any) -> None:
        async for event in stream.noack().events():
            if await guard.admit(event):
                await import_one(event)
                event.ack()

    if settings.desk_publish:

        @app.timer(interval=settings.desk_publish_seconds, name="desk-outbox")
        async def publish() -> None:
            try:
                await publisher.drain()
            except Exception as exc:  # Kafka or the database away: the rows stay unsent for the next round
                log.warning("desk outbox not published this round: %r", exc)

    @app.timer(interval=10.0, name="desk-status")
    async def status() -> None:
        log.info("desk cases: imported %d, already known %d, refused %d; outbox published %d",
                 importer.imported, importer.duplicates, importer.refused, publisher.sent)  # fmt: skip

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _close(sender: Any, **kwargs: Any) -> None:
        await publisher.stop()
        engine.dispose()
