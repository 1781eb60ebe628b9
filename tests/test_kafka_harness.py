"""The real Kafka broker from the harness: create a topic, produce keyed records, consume them back."""

from __future__ import annotations

import asyncio
import base64
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from devservices.kafka import KafkaBroker, KafkaHarnessError, random_cluster_id, start_kafka
from tests.harness.kafka_fixtures import KafkaTopics

pytestmark = pytest.mark.kafka

# With Kafka's murmur2 partitioner over 3 partitions these keys land on partitions 0, 1, 2 and 0.
KEYS = [b"vendor-1", b"globex", b"vendor-2", b"acme"]
PER_KEY = 3


async def test_roundtrip_keyed_messages(kafka_bootstrap: str, kafka_topics: KafkaTopics) -> None:
    topic = await kafka_topics.create("payments", partitions=3)
    assert topic.startswith(kafka_topics.prefix)

    sent_partition: dict[bytes, set[int]] = defaultdict(set)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(PER_KEY):
            for key in KEYS:
                meta = await producer.send_and_wait(topic, key=key, value=b"%s:%d" % (key, i))
                sent_partition[key].add(meta.partition)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{kafka_topics.prefix}group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[tuple[int, bytes, bytes]] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < len(KEYS) * PER_KEY:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    received.extend((tp.partition, r.key, r.value) for r in records if r.key and r.value)
    finally:
        await consumer.stop()

    assert len(received) == len(KEYS) * PER_KEY

    got_partition: dict[bytes, set[int]] = defaultdict(set)
    values: dict[bytes, list[bytes]] = defaultdict(list)
    for partition, key, value in received:
        got_partition[key].add(partition)
        values[key].append(value)

    partitioner = DefaultPartitioner()
    for key in KEYS:
        # Every record of a key went to one partition, the one Kafka's default partitioner picks,
        # and came back from that partition in the order it was produced.
        assert len(sent_partition[key]) == 1
        assert got_partition[key] == sent_partition[key]
        assert got_partition[key] == {partitioner(key, [0, 1, 2], [0, 1, 2])}
        assert values[key] == [b"%s:%d" % (key, i) for i in range(PER_KEY)]
    assert set().union(*got_partition.values()) == {0, 1, 2}


def test_random_cluster_id_shape() -> None:
    for _ in range(50):
        cid = random_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_start_timeout_cleans_up(tmp_path: Path) -> None:
    with pytest.raises(KafkaHarnessError, match="did not start"):
        start_kafka(tmp_path, timeout=0.2)
    assert list(tmp_path.iterdir()) == []  # the data dir is gone, and with it the broker's files


def test_broker_object(kafka_broker: KafkaBroker) -> None:
    assert kafka_broker.running
    assert kafka_broker.bootstrap.startswith("127.0.0.1:")
    assert (kafka_broker.data_dir / "data" / "meta.properties").is_file()
