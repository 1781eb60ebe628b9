"""Plain aiokafka helpers beside Faust: declaring the topics, reading back what a partition emitted,
reading an output topic (`paysentry tail`, tests, the benchmark)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream.ingest import NUDGE
from stream.settings import StreamSettings
from stream.topics import DEADLETTER, ENGINE, EVENT_ID_HEADER, INBOUND, OUTBOUND

SHORT_RETENTION_MS = str(6 * 3600 * 1000)  # progress nudges are worthless after a few hours


def topic_plan(settings: StreamSettings) -> dict[str, tuple[int, dict[str, str]]]:
    """Every topic the app uses (Faust adds its own changelogs): full name -> (partitions, config)."""
    plan: dict[str, tuple[int, dict[str, str]]] = {}
    for name in (*INBOUND, ENGINE, *OUTBOUND):
        plan[settings.topic(name)] = (1 if name == DEADLETTER else settings.partitions, {})
    plan[settings.topic(NUDGE)] = (settings.partitions, {"retention.ms": SHORT_RETENTION_MS})
    return plan


async def ensure_topics(settings: StreamSettings, replication: int = 1) -> None:
    """Create the topics that are missing (a topic that exists keeps its partitions)."""
    admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs(), request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, replication, topic_configs=config)
            for name, (partitions, config) in topic_plan(settings).items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing, timeout_ms=15000)
        await _wait_for_leaders(admin, list(topic_plan(settings)))
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(names)
        if all(t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
               for t in described):  # fmt: skip
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"topics have no leader after {timeout}s")
        await asyncio.sleep(0.1)


async def standalone_consumer(settings: StreamSettings) -> AIOKafkaConsumer:
    """A started client outside any consumer group (it reads offsets and records, commits nothing)."""
    consumer = AIOKafkaConsumer(**settings.aiokafka_kwargs(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    return consumer


class OutputReader:
    """Reads back the event ids a partition of `decisions` or `alerts` holds from an offset on.

    One client for every read-back (a new owner reads two topics per partition it takes over): starting
    a client costs a connection and a metadata round trip, which a partition's first events would wait for.
    """

    def __init__(self, settings: StreamSettings) -> None:
        self.settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()  # one read-back at a time: the client is assigned one partition per read

    async def event_ids(self, short_name: str, partition: int, start: int) -> set[str]:
        tp = TopicPartition(self.settings.topic(short_name), partition)
        async with self._lock:
            consumer = await self._client()
            try:
                consumer.assign([tp])
                end = (await consumer.end_offsets([tp]))[tp]
                ids: set[str] = set()
                if start >= end:
                    return ids
                consumer.seek(tp, start)
                while await consumer.position(tp) < end:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    for message in batch.get(tp, []):
                        for name, value in message.headers or ():
                            if name == EVENT_ID_HEADER:
                                ids.add(value.decode())
                return ids
            except BaseException:
                await self._drop()  # a client that failed mid-read is not trusted with the next one
                raise

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            self._consumer = await standalone_consumer(self.settings)
        return self._consumer

    async def _drop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


async def read_topic(
    settings: StreamSettings, short_name: str, *, from_beginning: bool = True, idle_timeout: float | None = None
) -> AsyncIterator[Any]:
    """Every record of a topic, all partitions; stops after `idle_timeout` seconds without one."""
    consumer = AIOKafkaConsumer(
        settings.topic(short_name),
        **settings.aiokafka_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(1000 * (idle_timeout or 1.0)))
            if not batch and idle_timeout is not None:
                return
            for messages in batch.values():
                for message in messages:
                    yield message
    finally:
        await consumer.stop()


class BrokerOffsets:
    """Offsets asked of the broker with clients of their own (Faust's consumer thread answers only
    between two fetches, and not in the middle of a rebalance)."""

    def __init__(self, settings: StreamSettings) -> None:
        self.settings = settings
        self._probe: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    async def probe(self) -> AIOKafkaConsumer:
        if self._probe is None:
            self._probe = await standalone_consumer(self.settings)
        return self._probe

    async def warm(self) -> None:
        await self.probe()
        await self._admin_client()

    async def _admin_client(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = AIOKafkaAdminClient(**self.settings.aiokafka_kwargs())
            await admin.start()
            self._admin = admin
        return self._admin

    async def end(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict(await (await self.probe()).end_offsets(tps))

    async def resume_points(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Where the group resumes each partition: its committed offset, or the earliest one when it has
        none or it was deleted (`auto_offset_reset="earliest"`)."""
        admin = await self._admin_client()
        committed = await admin.list_consumer_group_offsets(self.settings.group_id, partitions=tps)
        earliest = await (await self.probe()).beginning_offsets(tps)
        points: dict[TopicPartition, int] = {}
        for tp in tps:
            meta = committed.get(tp)
            offset = meta.offset if meta is not None and meta.offset >= 0 else earliest.get(tp)
            if offset is not None:
                points[tp] = max(offset, earliest.get(tp, 0))
        return points

    async def close(self) -> None:
        if self._probe is not None:
            await self._probe.stop()
        if self._admin is not None:
            await self._admin.close()
