"""The plain Kafka clients of bench/stream_throughput.py: publish a stream as `paysentry produce` does,
collect the decision records' timestamps, and read the inbound topics with one consumer and no Faust."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from paysentry.contract import parse_event
from stream.settings import StreamSettings
from stream.topics import DECISIONS, INBOUND, SEQ_HEADER, key_for_record, topic_for_type


async def produce(settings: StreamSettings, lines: list[bytes], rate: float) -> dict[str, int]:
    """Publish the stream as `paysentry produce` does, at `rate` events/s (0: at once); every record's
    timestamp is its produce time. Returns event id -> produce timestamp (ms)."""
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), acks="all", linger_ms=5, enable_idempotence=True)
    await producer.start()
    stamps: dict[str, int] = {}
    started = time.perf_counter()
    try:
        for seq, line in enumerate(lines, start=1):
            data = orjson.loads(line)
            now = int(time.time() * 1000)
            stamps[data["event_id"]] = now
            await producer.send(settings.topic(topic_for_type(data.get("type"))), line, key=key_for_record(data),
                                headers=[(SEQ_HEADER, str(seq).encode())], timestamp_ms=now)  # fmt: skip
            if rate > 0:
                ahead = started + seq / rate - time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()
    return stamps


async def collect_decisions(
    settings: StreamSettings, expect: int, timeout: float, out: dict[str, int], check: Callable[[], None]
) -> None:
    """Event id -> timestamp (ms) of every decision record, until `expect` arrived or `timeout` passed."""
    consumer = AIOKafkaConsumer(settings.topic(DECISIONS), **settings.aiokafka_kwargs(), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            check()  # raises if the worker died
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for message in messages:
                    out.setdefault(orjson.loads(message.value)["event_id"], message.timestamp)
    finally:
        await consumer.stop()


async def raw_client(settings: StreamSettings, total: int) -> tuple[int, int, float]:
    """Consume and decode the inbound topics with one plain aiokafka consumer: (records, bad, seconds)."""
    consumer = AIOKafkaConsumer(*(settings.topic(t) for t in INBOUND), **settings.aiokafka_kwargs(), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
    key = settings.require_hash_key()
    await consumer.start()
    seen = bad = 0
    try:
        await consumer.getmany(timeout_ms=0)  # join, fetch metadata: not part of the rate
        await consumer.seek_to_beginning()
        started = time.perf_counter()
        while seen < total:
            batch = await consumer.getmany(timeout_ms=2000, max_records=5000)
            if not batch:
                break
            for messages in batch.values():
                for message in messages:
                    try:
                        parse_event(message.value, account_key=key)
                    except ValueError:
                        bad += 1
                    seen += 1
        return seen, bad, time.perf_counter() - started
    finally:
        await consumer.stop()
