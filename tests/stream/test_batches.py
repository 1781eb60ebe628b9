"""Micro-batches on `engine.events`: the ingest stage sends the events it routes while records are queued
as one record per partition, and the decision stage decides a batch exactly as the same events sent one
by one, acknowledging the batch record only once a checkpoint covers every event in it. (No broker: a
dict plays the table and plain objects the Faust events, as in test_internal_records.py.)"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pytest

from stream.ingest import NUDGE, IngestStage
from stream.topics import ERP, VENDOR, Batch, InvalidEnvelope, Routed, Tick, decode_envelope, sign_envelope
from tests.stream.test_internal_records import IDLE, KEY, Record, _envelopes, _rig

NOW = datetime.fromisoformat("2026-11-29T12:00:00+00:00").timestamp()

# -- decision stage ------------------------------------------------------------------------------------


def _decided(envelopes: list[bytes]) -> tuple[list[str], list[Record]]:
    rig = _rig()
    for envelope in envelopes:
        rig.feed(envelope)
    rig.feed(IDLE)
    assert not rig.dead, rig.dead
    return rig.decided, rig.records


@pytest.mark.parametrize("size", [2, 5, 1000])
def test_a_batch_is_decided_as_its_events_one_by_one(size: int) -> None:
    envelopes = _envelopes()
    alone, _ = _decided(envelopes)
    batches = [Batch.encode_items(envelopes[i : i + size]) for i in range(0, len(envelopes), size)]
    together, records = _decided(batches)
    assert alone and together == alone
    assert all(record.acked for record in records)


def test_a_batch_record_is_acknowledged_only_when_a_checkpoint_covers_all_its_events() -> None:
    rig = _rig()
    rig.stage.checkpoint_events, rig.stage.checkpoint_seconds = 10_000, 3600.0
    envelopes = _envelopes()
    batch = rig.feed(Batch.encode_items(envelopes))
    rig.feed(IDLE)
    assert rig.decided and not batch.acked  # decided, but no checkpoint yet: a crash would redo it
    state = rig.stage.states[0]
    asyncio.run(rig.stage.checkpoint(state))
    rig.stage._ack(state)
    assert batch.acked


def test_a_batch_split_by_checkpoints_waits_for_the_last_one() -> None:
    rig = _rig()
    rig.stage.checkpoint_events, rig.stage.checkpoint_seconds = 3, 3600.0  # a checkpoint every 3 events
    envelopes = _envelopes()
    assert len(envelopes) > 3
    batch = rig.feed(Batch.encode_items(envelopes))
    rig.feed(IDLE)
    state = rig.stage.states[0]
    assert not batch.acked and state.awaiting  # the last events are not checkpointed yet
    asyncio.run(rig.stage.checkpoint(state))
    rig.stage._ack(state)
    assert batch.acked


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'{"k": "b", "items": {}}', "'items'"),
        (b'{"k": "b", "items": [{"k": "t", "g": 0, "low": null, "high": null}]}', "not an event"),
        (b'{"k": "b", "items": [{"k": "e", "ev": {}, "s": 7, "ts": 1, "q": null, "g": 0, "o": 0}]}', "'s'"),
        (b'{"k": "b", "items": [' + b",".join([b"1"] * 10_001) + b"]}", "at most"),
    ],
)
def test_malformed_batches_are_refused_whole(value: bytes, reason: str) -> None:
    with pytest.raises(InvalidEnvelope, match=reason):
        decode_envelope(value, key=KEY, signature=sign_envelope(KEY, value))
    rig = _rig()
    record = rig.feed(value)
    assert record.acked and len(rig.dead) == 1 and reason.strip("'") in rig.dead[0]["reason"]


def test_batch_round_trip() -> None:
    items = [Routed({"event_id": f"x{i}"}, "CN01", i, None, 0, i) for i in range(3)]
    value = Batch.encode_items([item.encode() for item in items])
    assert decode_envelope(value, key=KEY, signature=sign_envelope(KEY, value)) == Batch(tuple(items))
    single = Batch.encode_items([items[0].encode()])
    assert decode_envelope(single, key=KEY, signature=sign_envelope(KEY, single)) == items[0]


# -- ingest stage ---------------------------------------------------------------------------------------


@dataclass
class _InMessage:
    topic: str
    partition: int
    offset: int
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class _InRecord:
    message: _InMessage
    value: Any
    acked: bool = False

    def ack(self) -> None:
        self.acked = True


@dataclass
class _IngestRig:
    sent: list[tuple[int, bytes]] = field(default_factory=list)
    records: list[_InRecord] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)
    linger: float = 0.0
    now: list[float] = field(default_factory=lambda: [0.0])  # the stage's monotonic clock, moved by hand

    def __post_init__(self) -> None:
        async def send_engine(*, key: bytes, value: bytes, partition: int) -> None:
            self.sent.append((partition, value))

        async def send_deadletter(**kwargs: Any) -> None:
            raise AssertionError(f"dead-lettered: {kwargs}")

        self.stage = IngestStage(account_key=b"k", partitions=2, partition_of=lambda shard: 0 if shard == "CN01" else 1,
                                 routes={}, short_name=lambda topic: topic, send_engine=send_engine,
                                 send_deadletter=send_deadletter, clock=lambda: NOW, linger=self.linger,
                                 monotonic=lambda: self.now[0])  # fmt: skip

    def feed(self, topic: str, value: bytes, *, more: bool) -> _InRecord:
        return asyncio.run(self.handle(topic, value, more=more))

    async def handle(self, topic: str, value: bytes, *, more: bool) -> _InRecord:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        record = _InRecord(_InMessage(topic, 0, offset, value), value)
        self.records.append(record)
        await self.stage.handle(record, more=more)
        return record

    def batched_ids(self) -> list[list[str]]:
        """The event ids of each record sent to partition 0, in order."""
        out = []
        for partition, value in self.sent:
            data = orjson.loads(value)
            if partition == 0 and data["k"] != "t":
                out.append([item["ev"]["event_id"] for item in data["items"]] if data["k"] == "b" else
                           [data["ev"]["event_id"]])  # fmt: skip
        return out


def _vendor(n: int) -> bytes:
    return orjson.dumps({"event_id": f"v-{n}", "type": "vendor.updated", "event_time": f"2026-11-29T10:00:{n:02d}Z",
                         "vendor_id": f"V{n}"})  # fmt: skip


def test_ingest_batches_while_records_are_queued_and_acks_only_once_sent() -> None:
    rig = _IngestRig()
    first = [rig.feed(VENDOR, _vendor(n), more=True) for n in range(3)]
    assert not rig.sent and not any(record.acked for record in first)  # held in the outbox, not acknowledged
    last = rig.feed(VENDOR, _vendor(3), more=False)  # the queue ran dry: the batch goes out
    assert [partition for partition, _ in rig.sent] == [0, 1]  # one record per partition
    for _, value in rig.sent:
        data = orjson.loads(value)
        assert data["k"] == "b" and [item["ev"]["event_id"] for item in data["items"]] == [f"v-{n}" for n in range(4)]
    assert all(record.acked for record in [*first, last])


def test_a_tick_follows_the_events_it_vouches_for() -> None:
    rig = _IngestRig()
    rig.feed(VENDOR, _vendor(1), more=True)
    nudge = orjson.dumps({"generation": 1, "highwater": {ERP: 0, VENDOR: 1}, "start": {}})
    rig.feed(NUDGE, nudge, more=True)  # even with more records queued, the tick is not sent ahead of them
    kinds = [(partition, orjson.loads(value)["k"]) for partition, value in rig.sent]
    assert kinds == [(0, "e"), (1, "e"), (0, "t"), (1, "t")]
    tick = orjson.loads(rig.sent[-1][1])
    assert Tick(tick["g"], tick["low"], tick["high"]).source == 0
    assert all(record.acked for record in rig.records)


def test_revocation_sends_what_was_routed() -> None:
    rig = _IngestRig()
    record = rig.feed(VENDOR, _vendor(1), more=True)
    asyncio.run(rig.stage.forget({0}))
    assert [partition for partition, _ in rig.sent] == [
        0,
        1,
    ]  # both partitions got the vendor event before the group was dropped
    assert not record.acked  # the next owner processes it again (its id is recognised downstream)


def test_with_a_linger_a_steady_stream_still_travels_in_batches() -> None:
    """The queue runs dry after every record (a steady stream): the outbox waits the linger for more
    events rather than sending each alone, and its records are acknowledged once it is sent."""

    async def scenario() -> None:
        rig = _IngestRig(linger=0.01)
        first = await rig.handle(VENDOR, _vendor(0), more=False)
        second = await rig.handle(VENDOR, _vendor(1), more=False)
        assert not rig.sent and not first.acked and not second.acked  # waiting for the linger
        await rig.stage.flushed()
        assert rig.batched_ids() == [["v-0", "v-1"]]
        assert first.acked and second.acked
        third = await rig.handle(VENDOR, _vendor(2), more=False)  # a new linger starts with the next event
        await rig.stage.flushed()
        assert rig.batched_ids() == [["v-0", "v-1"], ["v-2"]] and third.acked

    asyncio.run(scenario())


def test_with_a_linger_a_busy_stream_sends_once_the_oldest_event_waited_it() -> None:
    """Records keep coming (the queue never runs dry): the batch goes out once its oldest event has
    waited the linger, not only when it is full."""

    async def scenario() -> None:
        rig = _IngestRig(linger=0.05)
        await rig.handle(VENDOR, _vendor(0), more=True)
        rig.now[0] += 0.01
        await rig.handle(VENDOR, _vendor(1), more=True)
        assert not rig.sent
        rig.now[0] += 0.05
        await rig.handle(VENDOR, _vendor(2), more=True)
        assert rig.batched_ids() == [["v-0", "v-1", "v-2"]]
        assert all(record.acked for record in rig.records)
        await rig.handle(VENDOR, _vendor(3), more=True)
        assert rig.batched_ids() == [["v-0", "v-1", "v-2"]]  # the next batch starts its own linger

    asyncio.run(scenario())


def test_without_a_linger_the_outbox_goes_out_when_the_queue_runs_dry() -> None:
    rig = _IngestRig(linger=0.0)
    rig.feed(VENDOR, _vendor(0), more=True)
    rig.now[0] += 10.0  # no linger: time does not matter, only the queue
    rig.feed(VENDOR, _vendor(1), more=True)
    assert not rig.sent
    rig.feed(VENDOR, _vendor(2), more=False)
    assert rig.batched_ids() == [["v-0", "v-1", "v-2"]] and rig.stage.flush_task is None


def test_the_decision_stage_reports_how_long_events_waited_for_order() -> None:
    rig = _rig()
    assert rig.stage.ordering_wait() == "no event yet"
    envelopes = _envelopes()
    for envelope in envelopes:
        rig.feed(envelope)
    rig.feed(IDLE)  # every ingest group idle: everything is released
    report = rig.stage.ordering_wait()
    assert report.startswith("p50 ") and f"over the last {len(envelopes):,} events" in report
