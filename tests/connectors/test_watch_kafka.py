"""The drop folder publishing to the inbound topics of a real Kafka broker: a watcher killed in the
middle of a file loses nothing and publishes nothing twice, and the same file dropped again adds nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from paysentry.connectors.cli import FAULT_ENV
from paysentry.connectors.sinks import partitions_of
from stream.settings import StreamSettings
from stream.sinks import topic_plan
from stream.topics import ERP, EVENT_ID_HEADER, PSP, SEQ_HEADER
from tests.connectors.support import SAMPLES
from tests.harness.kafka_fixtures import delete_topics

pytestmark = pytest.mark.kafka
ENTRY = "from paysentry.connectors.cli import connect_app; connect_app()"


async def _records(bootstrap: str, topics: list[str]) -> list[tuple[str, dict, dict, bytes]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        parts = await partitions_of({"bootstrap_servers": bootstrap}, topics)
        assert len(parts) == 2 * len(topics)
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        begins = await consumer.beginning_offsets(parts)
        expected = sum(ends[tp] - begins[tp] for tp in parts)  # one idempotent producer: no markers
        for tp in parts:
            consumer.seek(tp, begins[tp])
        found: list[tuple[str, dict, dict, bytes]] = []
        for _ in range(60):  # only a guard against a hang: a read finishes as soon as everything is in
            if len(found) >= expected:
                break
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for record in records:
                    found.append((tp.topic, orjson.loads(record.value), dict(record.headers), record.key))
        assert len(found) == expected
        return found
    finally:
        await consumer.stop()


async def test_crash_restart_and_duplicate_against_kafka(tmp_path: Path, kafka_bootstrap: str,
                                                         kafka_topic_prefix: str) -> None:  # fmt: skip
    folder = tmp_path / "drop"
    folder.mkdir()
    for name in ("pain001_v03.xml", "pain002_v03.xml"):
        shutil.copy(SAMPLES / name, folder / name)
        os.utime(folder / name, (time.time() - 60, time.time() - 60))
    env = {**os.environ, "PAYSENTRY_TOPIC_PREFIX": kafka_topic_prefix, "PAYSENTRY_PARTITIONS": "2"}
    command = [sys.executable, "-c", ENTRY, "watch", str(folder), "--kafka", kafka_bootstrap, "--once",
               "--batch", "1", "--settle", "0"]  # fmt: skip
    erp, psp = kafka_topic_prefix + ERP, kafka_topic_prefix + PSP
    try:
        crashed = subprocess.run(command, env={**env, FAULT_ENV: "published:2"}, capture_output=True, timeout=180)
        assert crashed.returncode == -9, crashed.stderr[-2000:]
        early = await _records(kafka_bootstrap, [erp, psp])
        assert len(early) == 2, (early, crashed.stderr[-3000:])  # out, but not in the ledger
        restarted = subprocess.run(command, env=env, capture_output=True, timeout=180)
        assert restarted.returncode == 0, restarted.stderr[-2000:]
        assert b"done pain001_v03.xml: published 1 (payment.released 3), 2 already out" in restarted.stderr
        shutil.copy(SAMPLES / "pain001_v03.xml", folder / "again.xml")
        os.utime(folder / "again.xml", (time.time() - 60, time.time() - 60))
        again = subprocess.run(command, env=env, capture_output=True, timeout=180)
        assert again.returncode == 0 and b"duplicate again.xml" in again.stderr
        records = await _records(kafka_bootstrap, [erp, psp])
        ids = Counter((event["type"], event["event_id"]) for _, event, _, _ in records)
        assert len(ids) == 6 and set(ids.values()) == {1}  # nothing lost, nothing twice
        assert Counter(topic for topic, _, _, _ in records) == {erp: 3, psp: 3}
        for _, event, headers, key in records:
            assert headers[EVENT_ID_HEADER] == event["event_id"].encode() and int(headers[SEQ_HEADER]) >= 1
            assert key == event["payment_id"].encode()
        assert sorted(p.name for p in (folder / "done").iterdir()) == ["again.xml", "pain001_v03.xml",
                                                                       "pain002_v03.xml"]  # fmt: skip
    finally:
        names = list(topic_plan(StreamSettings(topic_prefix=kafka_topic_prefix, partitions=2)))
        await delete_topics(kafka_bootstrap, names)
