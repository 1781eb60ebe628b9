"""Where the drop folder publishes: an events file (the embedded stream `paysentry replay` reads) or the
inbound Kafka topics (the live stream), behind one small interface the ledger can rely on.

Both report a *position* (bytes of the events file; the end offset of each inbound partition) and can
list the events written after a position, which is how a restart finds a batch that reached the sink
but not the ledger. Kafka records go out as `paysentry produce` sends them: to the topic of their type,
keyed by payment (or vendor) id, with the record's place in its file as `ps-seq`, plus its event id.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import orjson

from paysentry.connectors.ledger import EventKey

Positions = dict[str, int]
_QUIET_POLLS = 3  # empty polls of a second in a row before a partition is taken as read to its end
_GIVE_UP_POLLS = 60


class Sink(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def positions(self) -> Positions: ...
    async def publish(self, batch: list[tuple[int, dict[str, Any]]]) -> Positions: ...
    async def published_since(self, positions: Positions) -> set[EventKey]: ...


def _key(value: bytes) -> EventKey | None:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    return str(data.get("type")), str(data.get("event_id"))


class FileSink:
    """Appends JSON Lines to an events file, flushed to disk (fsync) after every batch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        self._drop_torn_line()

    async def stop(self) -> None:
        return None

    def _drop_torn_line(self) -> None:
        """A crash in the middle of a write leaves a last line without its newline: it was never recorded
        as published, so it is cut off here and written again whole."""
        with self.path.open("r+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            step = 64 * 1024
            end = size
            while end > 0:
                start = max(0, end - step)
                handle.seek(start)
                chunk = handle.read(end - start)
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    handle.truncate(start + newline + 1)
                    return
                end = start
            handle.truncate(0)

    async def positions(self) -> Positions:
        return {"file": self.path.stat().st_size}

    async def publish(self, batch: list[tuple[int, dict[str, Any]]]) -> Positions:
        with self.path.open("ab") as handle:
            start = handle.tell()
            try:
                handle.write(b"".join(orjson.dumps(event) + b"\n" for _, event in batch))
                handle.flush()
                os.fsync(handle.fileno())
            except OSError:  # a full disk: leave no part of the batch behind, it is written again later
                handle.truncate(start)
                raise
            return {"file": handle.tell()}

    async def published_since(self, positions: Positions) -> set[EventKey]:
        found: set[EventKey] = set()
        with self.path.open("rb") as handle:
            handle.seek(positions.get("file", 0))
            for line in handle:
                key = _key(line)
                if key is not None:
                    found.add(key)
        return found


async def partitions_of(kafka: dict[str, Any], topics: list[str]) -> list[Any]:
    """Every partition of `topics`, as the broker describes them (a plain consumer has no metadata yet)."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka, request_timeout_ms=15000)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]


class KafkaSink:
    """Publishes to the inbound topics with an idempotent producer (acks from every in-sync replica)."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings  # stream.settings.StreamSettings
        self.producer: Any = None
        self.topics: list[str] = []

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        from stream.sinks import ensure_topics
        from stream.topics import INBOUND

        await ensure_topics(self.settings, self.settings.replication)
        self.topics = [self.settings.topic(name) for name in INBOUND]
        self.producer = AIOKafkaProducer(**self.settings.aiokafka_kwargs(), acks="all", enable_idempotence=True)
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def _consumer(self) -> Any:
        from aiokafka import AIOKafkaConsumer

        # A position no longer on the broker (retention) reads from the earliest kept: reading more is harmless.
        consumer = AIOKafkaConsumer(
            **self.settings.aiokafka_kwargs(), group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        return consumer

    async def positions(self) -> Positions:
        parts = await partitions_of(self.settings.aiokafka_kwargs(), self.topics)
        consumer = await self._consumer()
        try:
            ends = await consumer.end_offsets(parts)
            return {f"{tp.topic}:{tp.partition}": offset for tp, offset in ends.items()}
        finally:
            await consumer.stop()

    async def publish(self, batch: list[tuple[int, dict[str, Any]]]) -> Positions:
        from stream.topics import EVENT_ID_HEADER, SEQ_HEADER, key_for_record, topic_for_type

        pending = []
        for seq, event in batch:
            headers = [(SEQ_HEADER, str(seq).encode()), (EVENT_ID_HEADER, str(event["event_id"]).encode())]
            topic = self.settings.topic(topic_for_type(event.get("type")))
            pending.append(
                await self.producer.send(topic, orjson.dumps(event), key=key_for_record(event), headers=headers)
            )
        reached: Positions = {}
        for future in pending:
            metadata = await future  # acknowledged: written to every in-sync replica
            part = f"{metadata.topic}:{metadata.partition}"
            reached[part] = max(reached.get(part, 0), metadata.offset + 1)
        return reached

    async def published_since(self, positions: Positions) -> set[EventKey]:
        from aiokafka import TopicPartition

        parts = {}
        for part, offset in positions.items():
            topic, _, partition = part.rpartition(":")
            parts[TopicPartition(topic, int(partition))] = offset
        found: set[EventKey] = set()
        if not parts:
            return found
        consumer = await self._consumer()
        try:
            consumer.assign(list(parts))
            ends = await consumer.end_offsets(list(parts))
            behind = {tp: start for tp, start in parts.items() if start < ends[tp]}
            for tp, start in behind.items():
                consumer.seek(tp, start)
            quiet = 0
            while behind:
                batches = await consumer.getmany(*behind, timeout_ms=1000)
                for tp, records in batches.items():
                    for record in records:
                        key = _key(record.value or b"")
                        if key is not None:
                            found.add(key)
                    if records and records[-1].offset + 1 >= ends[tp]:
                        del behind[tp]
                quiet = 0 if batches else quiet + 1
                if quiet >= _QUIET_POLLS:
                    # Nothing more comes: only markers (another producer's transactions) are left before the
                    # end. The position is trusted only then: it can run ahead of records still buffered.
                    for tp in list(behind):
                        if await consumer.position(tp) >= ends[tp]:
                            del behind[tp]
                if quiet >= _GIVE_UP_POLLS:  # the file stays in the folder and is tried again on the next look
                    raise RuntimeError(f"could not read back {len(behind)} partition(s) to their end")
            return found
        finally:
            await consumer.stop()
