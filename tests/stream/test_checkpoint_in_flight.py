"""A checkpoint's broker round trips run beside the next events: while one is in flight the partition keeps
deciding (reading the entities the checkpoint is still writing), and what it covers is acknowledged only
once the broker has it. (No broker: a dict plays the table, a gate plays the producer's flush.)"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson

from paysentry.core import Engine
from paysentry.state import decode_entity
from stream.checkpoint import CHECKPOINT_KEY
from stream.decide import DecisionStage
from stream.topics import ENGINE
from tests.stream.test_internal_records import IDLE, KEY, Message, Record, _envelopes, _rig


class GatedRig:
    """A decision stage whose producer flush waits until the test opens the gate."""

    def __init__(self, checkpoint_events: int) -> None:
        self.outputs: list[dict[str, Any]] = []
        self.records: list[Record] = []
        self.table: dict[str, bytes] = {}
        self.gate = asyncio.Event()
        self.flushes = 0

        async def send(topic: str, *, value: bytes, **kwargs: Any) -> Any:
            if topic == "decisions":
                self.outputs.append(orjson.loads(value))
            future = asyncio.get_running_loop().create_future()
            future.set_result(SimpleNamespace(offset=len(self.outputs)))
            return future

        async def flush() -> None:
            self.flushes += 1
            await self.gate.wait()

        async def nothing(**kwargs: Any) -> None:
            return None

        async def read_back(topic: str, partition: int, offset: int) -> set[str]:
            return set()

        self.stage = DecisionStage(
            engine=Engine(), table=self.table, partitions=1, partition_of=lambda shard: 0, alert_action="block",
            send=send, flush=flush, read_back=read_back, checkpoint_events=checkpoint_events,
            checkpoint_seconds=3600.0, max_buffer=1000, internal_key=KEY, send_deadletter=nothing,
        )  # fmt: skip

    async def feed(self, value: bytes) -> Record:
        from stream.topics import SIGNATURE_HEADER, sign_envelope

        record = Record(value, Message(ENGINE, 0, len(self.records), [(SIGNATURE_HEADER, sign_envelope(KEY, value))]))
        self.records.append(record)
        await self.stage.handle(record)
        return record


def test_events_are_decided_while_a_checkpoint_waits_for_the_broker_and_acknowledged_after_it() -> None:
    envelopes = _envelopes()
    assert len(envelopes) > 6
    alone = _rig()  # the same records, each checkpoint complete before the next record
    for envelope in [*envelopes[:4], IDLE, *envelopes[4:], IDLE]:
        alone.feed(envelope)

    async def scenario() -> GatedRig:
        rig = GatedRig(checkpoint_events=3)
        for envelope in envelopes[:4]:
            await rig.feed(envelope)
        await rig.feed(IDLE)  # releases the buffered events: the first checkpoint starts, its flush waits
        await asyncio.sleep(0)
        state = rig.stage.states[0]
        assert state.checkpointing is not None and not state.checkpointing.done()
        assert state.inflight and CHECKPOINT_KEY.format(partition=0) not in rig.table
        decided_before = len(rig.outputs)
        checkpoint = asyncio.ensure_future(_feed_rest(rig, envelopes[4:]))
        await asyncio.sleep(0.01)
        # the later events were decided (reading the entities in flight), none of them acknowledged
        assert len(rig.outputs) > decided_before
        assert not any(record.acked for record in rig.records)
        rig.gate.set()
        await checkpoint
        await rig.stage.checkpoint(state)
        assert all(record.acked for record in rig.records)
        assert not state.inflight and not state.dirty
        return rig

    rig = asyncio.run(scenario())
    assert [d["event_id"] for d in rig.outputs] == alone.decided
    assert [d["risk_score"] for d in rig.outputs] == [v["risk_score"] for t, v in alone.outputs if t == "decisions"]
    # the table holds what the partition holds in the rig that checkpointed every event at once
    entities = {k: decode_entity(v).to_data() for k, v in rig.table.items() if not k.startswith("~")}  # type: ignore[union-attr]
    expected = {k: decode_entity(v).to_data() for k, v in alone.stage.table.items() if not k.startswith("~")}  # type: ignore[union-attr]
    assert entities == expected


async def _feed_rest(rig: GatedRig, envelopes: list[bytes]) -> None:
    for envelope in envelopes:
        await rig.feed(envelope)
    await rig.feed(IDLE)


def test_a_read_back_point_passes_the_previous_owners_outputs_only_once_the_checkpointed_events_met_them() -> None:
    async def scenario() -> None:
        rig = GatedRig(checkpoint_events=1000)
        rig.gate.set()
        for envelope in [*_envelopes()[:4], IDLE]:
            await rig.feed(envelope)
        state = rig.stage.states[0]
        assert rig.outputs and state.awaiting
        state.emitted["decisions"] = {"not-met-yet"}  # a previous owner's output these events did not meet
        rig.gate.clear()
        await rig.stage._begin_checkpoint(state)
        state.emitted["decisions"].clear()  # met by a later event, after the checkpoint began
        rig.gate.set()
        await rig.stage._settle(state)
        header = orjson.loads(rig.table[CHECKPOINT_KEY.format(partition=0)])
        assert "decisions" not in header["out"]  # a new owner still reads back from the start
        await rig.feed(_envelopes()[4])
        await rig.feed(IDLE)
        await rig.stage.checkpoint(state)  # now every output was met when the checkpoint began
        header = orjson.loads(rig.table[CHECKPOINT_KEY.format(partition=0)])
        assert header["out"]["decisions"] == len(rig.outputs) + 1

    asyncio.run(scenario())
