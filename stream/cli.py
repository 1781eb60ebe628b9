"""`paysentry worker`, `paysentry produce`, `paysentry tail`: the live stream from the command line.

Settings come from the environment (PAYSENTRY_KAFKA_BROKERS, PAYSENTRY_TOPIC_PREFIX, ...; see
stream/settings.py); secrets are never printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from stream.faults import NO_FAULTS, FaultHook, FaultPoint
from stream.settings import StreamSettings, settings_error
from stream.topics import OUTBOUND, SEQ_HEADER, key_for_record, topic_for_type

console = Console(stderr=True)


def register_stream_commands(app: typer.Typer) -> None:
    from paysentry.desk.cli import cases_app
    from stream.desk_publish import publish as publish_desk_outbox

    app.command()(worker)
    app.command()(produce)
    app.command()(tail)
    cases_app.command("publish")(publish_desk_outbox)


def _settings() -> StreamSettings:
    """The settings, or one line saying which one is wrong (never its value) and exit status 2."""
    try:
        return StreamSettings()
    except ValueError as exc:  # pydantic's ValidationError included
        console.print(f"[red]error:[/] {settings_error(exc)}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def worker(
    loglevel: Annotated[str, typer.Option(help="debug, info, warning or error")] = "warning",
) -> None:
    """Start a Faust worker: ingest, decide, emit decisions and alerts (joins the other workers' group)."""
    from faust.worker import Worker

    from stream.app import create_app
    from stream.sinks import ensure_topics

    settings = _settings()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:  # keys are checked here, before anything is created on the broker
        stream_app = create_app(settings, faults=_faults_from(os.environ.get("PAYSENTRY_FAULT")))
    except ValueError as exc:
        console.print(f"[red]error:[/] {settings_error(exc)}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    loop.run_until_complete(ensure_topics(settings, settings.replication))
    # what start-up built (imported modules, rules, models) lives as long as the worker: out of the
    # collector's reach, a full collection no longer walks it (measured: stream/README.md)
    gc.collect()  # no garbage of start-up is kept for good
    gc.freeze()
    console.print(
        f"worker [bold]{settings.group_id}[/] on {', '.join(settings.brokers)}: {settings.partitions} partitions, "
        f"store {settings.store_url()}, alerts at [bold]{settings.alert_action}[/] and above"
    )
    Worker(stream_app.app, loglevel=loglevel, quiet=True, redirect_stdouts=False, loop=loop).execute_from_commandline()


class _SigkillAt:
    """Kill this worker at `point` of its n-th checkpoint of a partition: the crash tests' faults."""

    def __init__(self, point: str, after: int) -> None:
        self.point, self.after = point, after

    def armed(self, point: FaultPoint, checkpoint: int) -> bool:
        return point == self.point and checkpoint >= self.after

    def crash(self, point: FaultPoint) -> None:
        os.kill(os.getpid(), signal.SIGKILL)  # no shutdown of any kind: what a crash leaves behind is the test


def _faults_from(spec: str | None) -> FaultHook:
    """PAYSENTRY_FAULT=<point>:<n> (stream/faults.py lists the points); unset in production."""
    if not spec:
        return NO_FAULTS
    point, _, count = spec.partition(":")
    return _SigkillAt(point, int(count or 1))


def produce(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="events files (JSON Lines)")],
    rate: Annotated[float, typer.Option(help="events per second (0: as fast as possible)")] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Publish events files to the inbound topics (by event type), keyed by payment or vendor id."""
    lines = [line for path in files for line in path.read_bytes().splitlines() if line.strip()]
    settings = _settings()
    started = time.perf_counter()
    sent = asyncio.run(_produce(settings, lines, rate, quiet))
    elapsed = time.perf_counter() - started
    console.print(f"published {sent:,} records in {elapsed:.1f}s ({sent / elapsed if elapsed else 0:,.0f}/s)")


async def _produce(settings: StreamSettings, lines: list[bytes], rate: float, quiet: bool) -> int:
    from aiokafka import AIOKafkaProducer

    from stream.sinks import ensure_topics

    await ensure_topics(settings, settings.replication)
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), acks="all", linger_ms=5, enable_idempotence=True)
    await producer.start()
    progress = Progress(
        TextColumn("[bold blue]producing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, disable=quiet, transient=True,
    )  # fmt: skip
    started = time.perf_counter()
    try:
        with progress:
            task = progress.add_task("producing", total=len(lines))
            for seq, line in enumerate(lines, start=1):
                try:
                    data = orjson.loads(line)
                except orjson.JSONDecodeError:
                    data = None
                topic = topic_for_type(data.get("type") if isinstance(data, dict) else None)
                await producer.send(settings.topic(topic), line, key=key_for_record(data),
                                    headers=[(SEQ_HEADER, str(seq).encode())])  # fmt: skip
                if seq % 200 == 0:
                    progress.update(task, completed=seq)
                if rate > 0:
                    ahead = started + seq / rate - time.perf_counter()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            await producer.flush()
            progress.update(task, completed=len(lines))
    finally:
        await producer.stop()
    return len(lines)


def tail(
    topic: Annotated[str, typer.Argument(help=f"one of {', '.join(OUTBOUND)} (or any topic of the app)")] = "decisions",
    from_beginning: Annotated[bool, typer.Option("--from-beginning/--from-now")] = True,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="keep waiting for new records")] = True,
    idle: Annotated[float, typer.Option(help="with --no-follow: stop after this many quiet seconds")] = 2.0,
    count: Annotated[int | None, typer.Option(help="stop after this many records")] = None,
) -> None:
    """Print the records of an output topic as JSON Lines."""
    settings = _settings()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_tail(settings, topic, from_beginning, None if follow else idle, count))


async def _tail(
    settings: StreamSettings, topic: str, from_beginning: bool, idle: float | None, count: int | None
) -> None:
    from stream.sinks import read_topic

    seen = 0
    async for message in read_topic(settings, topic, from_beginning=from_beginning, idle_timeout=idle):
        sys.stdout.buffer.write((message.value or b"") + b"\n")
        sys.stdout.flush()
        seen += 1
        if count is not None and seen >= count:
            return
