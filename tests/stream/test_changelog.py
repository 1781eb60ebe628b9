"""Checkpoint writes go to the `shard-state` changelog as the Faust table writes them itself: the same
serialized key and value, the same partition, in the order written, and the local store updated at once
(tests/stream/test_failover.py recovers a taken-over partition from such a changelog on a real broker)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from stream.changelog import ChangelogBatch
from stream.checkpoint import apply_entities, write_checkpoint


def _table() -> Any:
    app = faust.App("changelog-test", broker="kafka://127.0.0.1:9", store="memory://", key_serializer="raw",
                    value_serializer="raw")  # fmt: skip
    return app.Table("shard-state", key_type=str, value_type=bytes, partitions=4)


def test_a_checkpoint_written_in_one_batch_is_what_the_table_would_have_sent_in_order() -> None:
    table = _table()
    table.data["CN01/p:GONE"] = b'{"payment_id":"GONE"}'
    sent: list[tuple[str, bytes, bytes | None, int, Any]] = []

    async def send(topic: str, key: bytes, value: bytes | None, partition: int, headers: Any) -> Any:
        sent.append((topic, key, value, partition, headers))
        future = asyncio.get_running_loop().create_future()
        future.set_result(type("Metadata", (), {"offset": len(sent) - 1})())
        return future

    entities = {"CN01/p:P1": b'{"payment_id":"P1"}', "CN01/p:GONE": b""}

    async def checkpoint() -> ChangelogBatch:
        batch = ChangelogBatch(table, send)
        write_checkpoint(batch, 2, 1, entities, {"decisions": 3})
        await batch.send(2)
        apply_entities(batch, entities.items())
        await batch.send(2)
        batch.persisted(2)
        return batch

    batch = asyncio.run(checkpoint())
    assert not batch.pending
    changelog = table.changelog_topic
    assert {topic for topic, *_ in sent} == {changelog.get_topic_name()} and {s[3] for s in sent} == {2}
    keys = [changelog.prepare_key(key, table.key_serializer)[0] for key in ("~ckpt/2/1/0", "~ckpt/2", "CN01/p:P1")]
    assert [key for _, key, *_ in sent] == [*keys, changelog.prepare_key("CN01/p:GONE", table.key_serializer)[0]]
    assert sent[2][2] == b'{"payment_id":"P1"}' and sent[3][2] is None  # the deletion is a tombstone
    # the local store holds what the changelog says, as after the table's own writes
    assert table.data["CN01/p:P1"] == b'{"payment_id":"P1"}' and "CN01/p:GONE" not in table.data
    assert table.get("~ckpt/2") is not None
