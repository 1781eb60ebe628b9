"""Pytest fixtures for the real Kafka broker (see devservices/kafka.py).

Fixtures:

``kafka_broker`` (session)
    The :class:`KafkaBroker`, started on first use and stopped when the session ends.
``kafka_bootstrap`` (session) -> str
    ``"127.0.0.1:PORT"``. Set ``PAYSENTRY_TEST_KAFKA_BOOTSTRAP`` to use a broker that is already
    running (``scripts/kafka.sh start``, docker compose) instead of starting one.
``kafka_topic_prefix`` (function) -> str
    A prefix unique to this test, e.g. ``"t3f9c2a1d-test-roundtrip."``.
``kafka_topics`` (function, async) -> :class:`KafkaTopics`
    ``await kafka_topics.create("payments", partitions=3)`` creates ``<prefix>payments`` and returns
    that name; the topics it created are deleted after the test.

The module-level coroutines :func:`create_topics` and :func:`delete_topics` do the same for code that
has only a bootstrap address.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from devservices.kafka import KafkaBroker, start_kafka

BOOTSTRAP_ENV = "PAYSENTRY_TEST_KAFKA_BOOTSTRAP"
_TOPIC_READY_TIMEOUT_S = 15.0


@contextlib.asynccontextmanager
async def _admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


def _raise_for_errors(errors: list[tuple[Any, ...]], *, ignore: tuple[int, ...] = ()) -> None:
    for entry in errors:
        topic, code = entry[0], entry[1]
        if code and code not in ignore:
            message = entry[2] if len(entry) > 2 and entry[2] else ""
            raise for_code(code)(f"topic {topic!r}: {message}".rstrip(": "))


async def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    configs: Mapping[str, str] | None = None,
    exist_ok: bool = False,
) -> None:
    """Create ``{name: partitions}`` topics (replication factor 1) and wait until every partition
    has a leader, so producers and consumers can use them at once."""
    async with _admin(bootstrap) as admin:
        resp = await admin.create_topics(
            [NewTopic(name, n, 1, topic_configs=dict(configs or {})) for name, n in topics.items()],
            timeout_ms=10000,
        )
        _raise_for_errors(resp.topic_errors, ignore=(36,) if exist_ok else ())  # 36: TopicAlreadyExists
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _TOPIC_READY_TIMEOUT_S
        while True:
            described = await admin.describe_topics(list(topics))
            ready = {
                t["topic"]
                for t in described
                if t["error_code"] == 0
                and len(t["partitions"]) >= topics[t["topic"]]
                and all(p["leader"] >= 0 for p in t["partitions"])
            }
            if ready >= set(topics):
                return
            if loop.time() > deadline:
                raise TimeoutError(f"topics not ready after {_TOPIC_READY_TIMEOUT_S}s: {set(topics) - ready}")
            await asyncio.sleep(0.05)


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Delete topics; missing ones are ignored."""
    if not names:
        return
    async with _admin(bootstrap) as admin:
        resp = await admin.delete_topics(names, timeout_ms=10000)
        _raise_for_errors(resp.topic_error_codes, ignore=(3,))  # 3: UnknownTopicOrPartition


class KafkaTopics:
    """Creates topics named ``<prefix><name>`` for one test and remembers them for cleanup."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.created: list[str] = []

    def name(self, name: str) -> str:
        """The full topic name for ``name``, without creating it."""
        return f"{self.prefix}{name}"

    async def create(self, name: str, partitions: int = 1, *, configs: Mapping[str, str] | None = None) -> str:
        full = self.name(name)
        await create_topics(self.bootstrap, {full: partitions}, configs=configs)
        self.created.append(full)
        return full


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = start_kafka(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    override = os.environ.get(BOOTSTRAP_ENV)
    if override:
        return override
    broker: KafkaBroker = request.getfixturevalue("kafka_broker")
    return broker.bootstrap


@pytest.fixture
def kafka_topic_prefix(request: pytest.FixtureRequest) -> str:
    test = re.sub(r"[^A-Za-z0-9-]+", "-", request.node.name).strip("-")[:80]
    return f"t{uuid.uuid4().hex[:8]}-{test}."


@pytest.fixture
async def kafka_topics(kafka_bootstrap: str, kafka_topic_prefix: str) -> AsyncIterator[KafkaTopics]:
    topics = KafkaTopics(kafka_bootstrap, kafka_topic_prefix)
    yield topics
    with contextlib.suppress(Exception):  # cleanup is best effort: the broker's data is temporary
        await delete_topics(kafka_bootstrap, topics.created)
