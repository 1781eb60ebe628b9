"""The decision stage trusts only `engine.events` records this deployment signed, and no record stops it:
garbage, unsigned, mis-signed, malformed and invalid records, and events the core fails on, are
dead-lettered with their reason and acknowledged; the events after them are decided. (No broker needed:
a dict plays the table and plain objects the Faust events; tests/stream/test_poison.py does the same
on a real broker.)"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from paysentry.contract import parse_event
from paysentry.core import Engine
from stream.decide import DecisionStage
from stream.topics import (
    ENGINE,
    SIGNATURE_HEADER,
    InvalidEnvelope,
    Routed,
    Tick,
    decode_envelope,
    micros,
    sign_envelope,
)
from tests.stream.failing_worker import FailingEngine

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "contract"
KEY = b"i" * 32
ACCOUNT_KEY = b"account-key"


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    headers: list[tuple[str, bytes]]


@dataclass
class Record:
    value: bytes | None
    message: Message
    acked: bool = False

    def ack(self) -> None:
        self.acked = True


@dataclass
class Rig:
    stage: DecisionStage
    outputs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    def feed(self, value: bytes | None, *, key: bytes | None = KEY, signature: bytes | None = None) -> Record:
        headers = []
        if signature is not None:
            headers = [(SIGNATURE_HEADER, signature)]
        elif key is not None and value is not None:
            headers = [(SIGNATURE_HEADER, sign_envelope(key, value))]
        record = Record(value, Message(ENGINE, 0, len(self.records), headers))
        self.records.append(record)
        asyncio.run(self._handle(record))
        return record

    async def _handle(self, record: Record) -> None:
        await self.stage.handle(record)
        for state in self.stage.states.values():  # the broker acknowledged what a checkpoint wrote
            await self.stage._settle(state)

    @property
    def decided(self) -> list[str]:
        return [value["event_id"] for topic, value in self.outputs if topic == "decisions"]


def _rig(engine: Engine | None = None) -> Rig:
    rig: Rig

    async def send(topic: str, *, value: bytes, **kwargs: Any) -> Any:
        rig.outputs.append((topic, orjson.loads(value)))
        future = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(offset=len(rig.outputs)))
        return future

    async def send_deadletter(*, key: bytes, value: bytes) -> None:
        assert key == ENGINE.encode()
        rig.dead.append(orjson.loads(value))

    async def flush() -> None:
        return None

    async def read_back(topic: str, partition: int, offset: int) -> set[str]:
        return set()

    stage = DecisionStage(
        engine=engine or Engine(), table={}, partitions=1, partition_of=lambda shard: 0, alert_action="block",
        send=send, flush=flush, read_back=read_back, checkpoint_events=1, checkpoint_seconds=0.001,
        max_buffer=1000, internal_key=KEY, send_deadletter=send_deadletter,
    )  # fmt: skip
    rig = Rig(stage)
    return rig


def _envelopes() -> list[bytes]:
    """The contract's valid examples as the ingest stage routes them."""
    out = []
    lines = [line for line in (CONTRACT / "examples" / "valid.jsonl").read_bytes().splitlines() if line.strip()]
    for seq, line in enumerate(lines):
        event = parse_event(line, account_key=ACCOUNT_KEY)
        shard = None if event.family == "vendor" else (event.company_code or "CN01")
        out.append(Routed(event.to_dict(), shard, micros(event.event_time), seq, 0, seq).encode())
    return out


IDLE = Tick(0, None, None).encode()


def test_a_signed_stream_is_decided() -> None:
    rig = _rig()
    for envelope in _envelopes():
        rig.feed(envelope)
    rig.feed(IDLE)
    assert rig.decided and not rig.dead
    assert all(record.acked for record in rig.records)


@pytest.mark.parametrize(
    ("value", "key", "reason"),
    [
        (b"\x00\xffgarbage", KEY, "not JSON"),
        (b"[1, 2]", KEY, "not a JSON object"),
        (b'{"k": "x"}', KEY, "is neither an event"),
        (b'{"k": "t", "g": "0", "low": null, "high": null}', KEY, "'g'"),
        (b'{"k": "t", "g": 5, "low": null, "high": null}', KEY, "ingest group 5"),
        (b'{"k": "e", "ev": [], "s": "CN01", "ts": 1, "q": null, "g": 0, "o": 0}', KEY, "'ev'"),
        (b'{"k": "e", "ev": {}, "s": 7, "ts": 1, "q": null, "g": 0, "o": 0}', KEY, "'s'"),
        (b'{"k": "e", "ev": {}, "s": "CN01", "ts": 1.5, "q": null, "g": 0, "o": 0}', KEY, "'ts'"),
        (None, KEY, "empty record"),
        (IDLE, None, "unsigned"),
        (IDLE, b"w" * 32, "signature does not match"),
    ],
)
def test_bad_internal_records_are_dead_lettered_and_acknowledged(value: bytes | None, key: bytes | None,
                                                                 reason: str) -> None:  # fmt: skip
    rig = _rig()
    record = rig.feed(value, key=key)
    assert record.acked
    assert len(rig.dead) == 1 and reason in rig.dead[0]["reason"], rig.dead
    assert rig.dead[0]["topic"] == ENGINE and rig.dead[0]["offset"] == 0
    # the partition goes on
    for envelope in _envelopes():
        rig.feed(envelope)
    rig.feed(IDLE)
    assert rig.decided == _decided_alone()


def _decided_alone() -> list[str]:
    rig = _rig()
    for envelope in _envelopes():
        rig.feed(envelope)
    rig.feed(IDLE)
    return rig.decided


def test_a_forged_tick_does_not_move_the_watermark() -> None:
    rig = _rig()
    for envelope in _envelopes():
        rig.feed(envelope)
    rig.feed(IDLE, signature=b"0" * 64)  # "everything has arrived", forged
    rig.feed(Tick(0, 2**62, 2**62).encode(), key=b"someone else's key......")
    assert not rig.outputs, "a forged tick released events"
    assert rig.stage.status()[0]["watermark"] == float("-inf")
    rig.feed(IDLE)
    assert rig.decided == _decided_alone()


def test_an_injected_event_that_does_not_validate_is_dead_lettered() -> None:
    rig = _rig()
    envelopes = _envelopes()
    bad = orjson.loads(envelopes[3])
    bad["ev"]["amount"] = "a lot"
    bad["ev"]["event_id"] = "injected-1"
    for envelope in [*envelopes, orjson.dumps(bad)]:
        rig.feed(envelope)
    rig.feed(IDLE)
    assert [d["event_id"] for d in rig.dead] == ["injected-1"]
    assert "event does not validate" in rig.dead[0]["reason"] and "amount" in rig.dead[0]["reason"]
    assert rig.decided == _decided_alone()
    assert all(record.acked for record in rig.records)


def test_an_event_the_core_fails_on_is_dead_lettered_and_the_rest_decided() -> None:
    rig = _rig(FailingEngine(fail_on="e-0004"))
    for envelope in _envelopes():
        rig.feed(envelope)
    rig.feed(IDLE)
    assert [(d["event_id"], d["reason"]) for d in rig.dead] == [
        ("e-0004", "engine failed on this event: ZeroDivisionError: float division by zero")
    ]
    expected = [event_id for event_id in _decided_alone() if event_id != "e-0004"]
    later = [event_id for event_id in expected if event_id > "e-0004"]
    assert later and set(later) <= set(rig.decided)
    assert all(record.acked for record in rig.records)


def test_decode_envelope_round_trip_and_refusals() -> None:
    routed = Routed({"event_id": "x"}, "CN01", 5, None, 0, 9)
    value = routed.encode()
    assert decode_envelope(value, key=KEY, signature=sign_envelope(KEY, value)) == routed
    with pytest.raises(InvalidEnvelope, match="unsigned"):
        decode_envelope(value, key=KEY, signature=None)
    with pytest.raises(InvalidEnvelope, match="does not match"):
        decode_envelope(value + b" ", key=KEY, signature=sign_envelope(KEY, value))
    deep = b"[" * 5000 + b"]" * 5000
    with pytest.raises(InvalidEnvelope, match="not JSON"):
        decode_envelope(deep, key=KEY, signature=sign_envelope(KEY, deep))
