"""Publishing the review desk's outbox (paysentry/desk/outbox.py) to Kafka: `label.confirmed` events to
the inbound `labels` topic (ingest takes them like any event), `case.resolved` records to
`cases.resolved`.

A round claims the oldest unsent rows, sends them in order (idempotent producer, acks from every
replica), waits for Kafka to acknowledge all of them and only then marks them sent in the same
transaction that claimed them. A publisher that dies before that mark leaves the rows unsent: the next
round sends them again. Nothing is lost; a label sent twice has the same event id and the engine counts
it once; an ERP deduplicates `case.resolved` by `record_id`.

Runs in every worker with a desk database (stream/cases_agent.py) and as `paysentry cases publish
[--follow]` (this module's `publish`, or `python -m stream.desk_publish`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaProducer
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from paysentry.desk import outbox
from stream.settings import StreamSettings, settings_error
from stream.sinks import ensure_topics

log = logging.getLogger(__name__)
console = Console(stderr=True)
CRASH_AFTER_SEND = "crash_after_send"  # PAYSENTRY_OUTBOX_FAULT: die after Kafka's ack, before the mark (tests)
FAULT_ENV = "PAYSENTRY_OUTBOX_FAULT"


def _no_fault() -> None:
    pass


def _crash() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind: what a crash leaves is the test


def fault_from_env() -> Callable[[], None]:
    """The crash tests' fault (`PAYSENTRY_OUTBOX_FAULT=crash_after_send`); unset in production: none."""
    return _crash if os.environ.get(FAULT_ENV, "") == CRASH_AFTER_SEND else _no_fault


class OutboxPublisher:
    def __init__(self, settings: StreamSettings, sessions: sessionmaker[Session], batch: int = 200,
                 after_send: Callable[[], None] = _no_fault) -> None:  # fmt: skip
        self.settings, self.sessions, self.batch = settings, sessions, batch
        self.producer: AIOKafkaProducer | None = None
        self.sent = 0
        self.after_send = after_send  # called once Kafka acknowledged a round, before its rows are marked

    async def start(self) -> None:
        if self.producer is None:
            producer = AIOKafkaProducer(**self.settings.aiokafka_kwargs(), acks="all", enable_idempotence=True)
            await producer.start()
            self.producer = producer

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def drain(self) -> int:
        """Publish everything unsent; the number of rows published."""
        total = 0
        while True:
            count = await self.round()
            total += count
            if count < self.batch:
                return total

    async def round(self) -> int:
        """One batch: claim, send, wait for every acknowledgement, mark sent, commit."""
        await self.start()
        assert self.producer is not None
        session = self.sessions()
        try:
            rows = await asyncio.to_thread(outbox.claim_unsent, session, self.batch)
            if not rows:
                await asyncio.to_thread(session.rollback)
                return 0
            pending = []
            for row in rows:
                topic, key, value = outbox.message_of(row, self.settings.desk_base_url)
                pending.append(await self.producer.send(self.settings.topic(topic), value, key=key))
            await asyncio.gather(*pending)  # raises if Kafka did not take one: nothing is marked
            self.after_send()
            await asyncio.to_thread(_mark_and_commit, session, [row.id for row in rows])
            self.sent += len(rows)
            return len(rows)
        except BaseException:
            await asyncio.to_thread(session.rollback)
            raise
        finally:
            await asyncio.to_thread(session.close)


def _mark_and_commit(session: Session, ids: list[int]) -> None:
    outbox.mark_sent(session, ids)
    session.commit()


publish_app = typer.Typer(no_args_is_help=False, help="Publish the review desk's verdicts to Kafka.")


@publish_app.command("publish")
def publish(
    follow: Annotated[bool, typer.Option("--follow/--once", help="keep publishing new verdicts")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="with --follow: seconds between rounds")] = 1.0,
) -> None:
    """Send the desk's unsent labels (to `labels`) and resolutions (to `cases.resolved`); a row is marked
    sent only after Kafka acknowledged it. The database is PAYSENTRY_DATABASE_URL."""
    from paysentry.desk.db import open_database
    from paysentry.desk.settings import DeskSettings

    try:
        settings = StreamSettings()
    except ValueError as exc:
        console.print(f"error: {settings_error(exc)}", markup=False)
        raise typer.Exit(2) from None
    url = settings.database_url.get_secret_value() if settings.database_url else DeskSettings().database_url
    engine, sessions = open_database(url)
    try:
        sent = asyncio.run(_publish(settings, sessions, follow, interval))
    except KeyboardInterrupt:
        sent = -1
    finally:
        engine.dispose()
    if sent >= 0:
        console.print(f"published {sent} records")


async def _publish(settings: StreamSettings, sessions: sessionmaker[Any], follow: bool, interval: float) -> int:
    await ensure_topics(settings, settings.replication)
    publisher = OutboxPublisher(settings, sessions, after_send=fault_from_env())
    try:
        while True:
            await publisher.drain()
            if not follow:
                return publisher.sent
            await asyncio.sleep(interval)
    finally:
        with contextlib.suppress(Exception):
            await publisher.stop()


if __name__ == "__main__":
    publish_app()
