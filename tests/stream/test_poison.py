"""Poison records on a real broker: bad records mixed into a valid stream are dead-lettered, once each,
with their reason and origin and without a clear payee account, while the valid events are decided
exactly as `paysentry replay` decides them alone, and the worker never stops.

The bad records are the contract's invalid examples (as written, `_why` included), seeded random bytes,
text that is not JSON, JSON that is not an object, truncated events, an empty value, a tombstone and a
numeric `payee_account`. They are produced straight to the inbound topics with aiokafka (`paysentry
produce` sends every line to a topic chosen by its `type`, so it cannot place a record that has none).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from paysentry.cli import run_replay
from paysentry.simulate import SimulationConfig, write_simulation
from stream.ingest import NUDGE
from stream.settings import StreamSettings
from stream.sinks import ensure_topics, read_topic
from stream.topics import (
    ENGINE,
    ERP,
    LABELS,
    PSP,
    SEQ_HEADER,
    SIGNATURE_HEADER,
    VENDOR,
    Routed,
    Tick,
    key_for_record,
    sign_envelope,
    topic_for_type,
)
from tests.stream.conftest import Simulated, StreamRig, assert_same_decisions, merge_by_time, replay_file
from tests.test_contract import EXPECTED_FIELD

pytestmark = pytest.mark.kafka

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "contract"
SEED = 20261127


@pytest.fixture(scope="module")
def small_stream(tmp_path_factory: pytest.TempPathFactory) -> Simulated:
    """A few days of simulated events and labels (short warm-up, so labels flow too) and their replay."""
    workdir = tmp_path_factory.mktemp("poison")
    events, labels = workdir / "events.jsonl", workdir / "labels.jsonl"
    write_simulation(SimulationConfig(days=3, warmup_days=1, seed=11), events, labels)
    return replay_file(merge_by_time([events, labels], workdir / "stream.jsonl"), workdir)


@dataclass
class Bad:
    """One bad record to produce, and what its dead-letter record must say."""

    topic: str  # short name
    key: bytes | None
    value: bytes | None
    why: str
    field: str | None = None  # the reason must name it
    secrets: tuple[str, ...] = ()  # clear account text the record carries: never in the dead letter
    partition: int = -1  # where it landed
    offset: int = -1


def _accounts(row: dict[str, Any]) -> tuple[str, ...]:
    account = row.get("payee_account")
    return (str(account),) if account is not None else ()


def bad_records(valid: list[dict[str, Any]], rng: random.Random) -> list[Bad]:
    payments = [r for r in valid if r.get("payment_id")]
    with_account = [r for r in payments if isinstance(r.get("payee_account"), str)]
    vendors = [r for r in valid if r["type"].startswith("vendor.") and isinstance(r.get("payee_account"), str)]

    def payment_key() -> bytes:
        return str(rng.choice(payments)["payment_id"]).encode()

    bad: list[Bad] = []
    for line in (CONTRACT / "examples" / "invalid.jsonl").read_bytes().splitlines():
        if not line.strip():
            continue
        data = orjson.loads(line)
        field = EXPECTED_FIELD.get(data.get("event_id", ""), "event_id")
        bad.append(Bad(topic_for_type(data.get("type")), key_for_record(data), line, data["_why"], field,
                       _accounts(data)))  # fmt: skip
    for n, topic in enumerate((ERP, PSP, LABELS, ERP, PSP, LABELS, VENDOR, ERP)):
        key = str(rng.choice(vendors)["vendor_id"]).encode() if topic == VENDOR else payment_key()
        bad.append(Bad(topic, key, rng.randbytes(rng.randint(1, 300)), f"random bytes #{n}"))
    not_json = (b"not json", b"payment_id=P1;amount=10.00;currency=CNY", b"<payment id='P1'/>",
                b"sim-000001,payment.released,2026-11-27T16:30:00+08:00", b"{'type': 'payment.released'}")  # fmt: skip
    for text in not_json:
        bad.append(Bad(rng.choice((ERP, PSP, LABELS)), payment_key(), text, f"not JSON: {text[:20]!r}"))
    listed = rng.choice(with_account)
    for value in (b"[]", b"42", b"null", b'"payment.released"', b"true", orjson.dumps([listed])):
        bad.append(Bad(ERP, payment_key(), value, f"JSON {value[:12]!r}, not an object",
                       "JSON object", _accounts(listed) if value.startswith(b"[{") else ()))  # fmt: skip
    for row in rng.sample(with_account, 4) + rng.sample(vendors, 2):
        text = orjson.dumps(row)
        account = row["payee_account"]
        start = text.index(orjson.dumps(account))
        # cut after the account (it is whole in the record) or inside it (a prefix of it is)
        cut = rng.randint(start + len(account) + 2, len(text) - 1) if len(bad) % 2 else start + 1 + len(account) // 2
        secret = account if cut > start + len(account) + 1 else account[: len(account) // 2]
        topic = topic_for_type(row["type"])
        bad.append(Bad(topic, key_for_record(row), text[:cut], f"{row['event_id']} truncated at {cut}",
                       secrets=(secret,) if len(secret) >= 8 else ()))  # fmt: skip
    numeric = dict(rng.choice(with_account), event_id="poison-numeric-account", payee_account=6222020200112233445)
    bad.append(Bad(ERP, key_for_record(numeric), orjson.dumps(numeric), "payee_account is a number",
                   "payee_account", ("6222020200112233445",)))  # fmt: skip
    bad.append(Bad(PSP, payment_key(), b"", "empty value"))
    bad.append(Bad(LABELS, payment_key(), None, "tombstone (null value)"))
    return bad


async def produce_mixed(settings: StreamSettings, valid: list[bytes], bad: list[Bad], rng: random.Random) -> None:
    """Valid lines in file order (with `paysentry produce`'s headers), bad records at random places."""
    await ensure_topics(settings, settings.replication)
    slots = sorted(rng.sample(range(len(valid) + len(bad)), len(bad)))
    order: list[tuple[int, bytes] | Bad] = list(enumerate(valid, start=1))
    for slot, record in zip(slots, bad, strict=True):
        order.insert(slot, record)
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), acks="all", linger_ms=5, enable_idempotence=True)
    await producer.start()
    try:
        sent: list[tuple[Bad, Any]] = []
        for item in order:
            if isinstance(item, Bad):
                future = await producer.send(settings.topic(item.topic), item.value, key=item.key)
                sent.append((item, future))
            else:
                seq, line = item
                data = orjson.loads(line)
                await producer.send(settings.topic(topic_for_type(data.get("type"))), line,
                                    key=key_for_record(data), headers=[(SEQ_HEADER, str(seq).encode())])  # fmt: skip
        await producer.flush()
        for record, future in sent:
            metadata = await future
            record.partition, record.offset = metadata.partition, metadata.offset
    finally:
        await producer.stop()


async def read_raw(settings: StreamSettings, topic: str) -> list[Any]:
    return [message async for message in read_topic(settings, topic, idle_timeout=2.0)]


def test_poison_records_are_dead_lettered_and_the_rest_decided(
    stream_rig: StreamRig, small_stream: Simulated, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    valid_lines = [line for line in small_stream.path.read_bytes().splitlines() if line.strip()]
    valid = [orjson.loads(line) for line in valid_lines]
    assert not small_stream.rejected, "the simulated stream must be all valid"
    bad = bad_records(valid, rng)
    assert {b.topic for b in bad} == {ERP, PSP, VENDOR, LABELS}

    # what replay makes of the bad records alone: nothing but rejections (so none is expected decided)
    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_bytes(b"".join(b.value + b"\n" for b in bad if b.value and b"\n" not in b.value))
    decisions, _, _, _ = run_replay(bad_file, tmp_path / "bad.decisions", tmp_path / "bad.rejected", None, quiet=True)
    assert not decisions

    asyncio.run(produce_mixed(stream_rig.settings, valid_lines, bad, rng))
    worker = stream_rig.worker("w1")

    got = stream_rig.read("decisions", expect=len(small_stream.decisions))
    assert_same_decisions(got, small_stream.decisions)

    stream_rig.wait_for("deadletter", len(bad), timeout=60)
    messages = asyncio.run(read_raw(stream_rig.settings, "deadletter"))
    letters = [orjson.loads(m.value) for m in messages]
    where = {(b.topic, b.partition, b.offset): b for b in bad}
    seen: dict[tuple[str, int, int], int] = {}
    for message, letter in zip(messages, letters, strict=True):
        assert isinstance(letter["reason"], str) and letter["reason"].strip(), letter
        origin = (letter["topic"].removeprefix(stream_rig.settings.topic_prefix), letter["partition"], letter["offset"])
        assert letter["topic"] == stream_rig.settings.topic(origin[0]), letter
        assert origin in where, f"dead-lettered a record that is not a bad one: {letter}"
        assert message.key == origin[0].encode()
        seen[origin] = seen.get(origin, 0) + 1
        record = where[origin]
        if record.field is not None:
            assert record.field in letter["reason"], (record.why, letter["reason"])
        for secret in record.secrets:
            assert secret not in message.value.decode("utf-8", "replace"), f"clear account in {letter}"
    twice = {k: n for k, n in seen.items() if n > 1}
    missing = [(b.why, b.topic, b.partition, b.offset) for b in bad if (b.topic, b.partition, b.offset) not in seen]
    assert not twice, f"dead-lettered more than once: {twice}"
    assert not missing, f"not dead-lettered: {missing}"

    clear = {a for row in valid for a in _accounts(row)} | {s for b in bad for s in b.secrets}
    for message in messages:
        text = message.value.decode("utf-8", "replace")
        leaked = [a for a in clear if a in text]
        assert not leaked, f"clear payee account in the dead-letter topic: {orjson.loads(message.value)}"

    assert worker.running, f"the worker stopped:\n{worker.log()[-3000:]}"
    stream_rig.stop_all()


async def produce_internal(
    settings: StreamSettings, records: list[tuple[int, bytes, bytes | None]], topic: str = ENGINE
) -> list[Any]:
    """(partition, value, signature) straight to an internal topic, as someone with access to it could;
    the metadata of each (partition, offset)."""
    await ensure_topics(settings, settings.replication)
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), acks="all")
    await producer.start()
    try:
        futures = []
        for partition, value, signature in records:
            headers = [(SIGNATURE_HEADER, signature)] if signature is not None else []
            futures.append(await producer.send(settings.topic(topic), value, key=b"CN01", partition=partition,
                                               headers=headers))  # fmt: skip
        await producer.flush()
        return [await future for future in futures]
    finally:
        await producer.stop()


def test_internal_poison_and_engine_failures_are_dead_lettered_and_the_rest_decided(
    stream_rig: StreamRig, small_stream: Simulated
) -> None:
    """Garbage, unsigned and forged records in `engine.events`, a signed event that does not validate, and
    an event the core raises on: each is dead-lettered once with its reason, and every other event is
    decided exactly as replay decides it (the failing event is a label: it never makes a decision)."""
    valid = [orjson.loads(line) for line in small_stream.path.read_bytes().splitlines() if line.strip()]
    labels = [row for row in valid if row["type"] == "label.confirmed"]
    failing = labels[len(labels) // 2]
    assert any(d["event_time"] > failing["event_time"] for d in small_stream.decisions)

    key = stream_rig.settings.internal_key()
    idle = Tick(0, None, None).encode()
    invalid_event = Routed({"type": "payment.released", "event_id": "injected-invalid", "amount": "a lot"}, "CN01",
                           0, None, 0, 0).encode()  # fmt: skip
    unsigned_event = Routed({"type": "payment.released", "event_id": "injected-unsigned"}, "CN01", 0, None, 0, 0)
    unsigned_event_value = unsigned_event.encode()
    internal = [
        (0, b"\x00\xff not an envelope", sign_envelope(key, b"\x00\xff not an envelope"), "not JSON"),
        (1, idle, None, "unsigned"),  # "every ingest group is idle": would release events early
        (2, idle, sign_envelope(b"someone else's key", idle), "signature does not match"),
        (0, unsigned_event_value, None, "unsigned"),
        (3, invalid_event, sign_envelope(key, invalid_event), "event does not validate"),
    ]
    written = asyncio.run(produce_internal(stream_rig.settings, [(p, v, s) for p, v, s, _ in internal]))
    nudges = [b"not a nudge", orjson.dumps({"generation": 10**6, "highwater": {}, "start": {}})]  # unsigned
    nudged = asyncio.run(produce_internal(stream_rig.settings, [(0, v, None) for v in nudges], NUDGE))
    stream_rig.produce(small_stream.path)
    stream_rig.worker("w1", module="tests.stream.failing_worker", PAYSENTRY_TEST_FAIL_EVENT=failing["event_id"])

    got = stream_rig.read("decisions", expect=len(small_stream.decisions))
    assert_same_decisions(got, small_stream.decisions)

    stream_rig.wait_for("deadletter", len(internal) + len(nudges) + 1, timeout=60)
    letters = [orjson.loads(m.value) for m in asyncio.run(read_raw(stream_rig.settings, "deadletter"))]
    engine_topic = stream_rig.settings.topic(ENGINE)
    for (_, _, _, reason), metadata in zip(internal, written, strict=True):
        matching = [x for x in letters if (x["topic"], x["partition"], x["offset"]) == (engine_topic,
                    metadata.partition, metadata.offset)]  # fmt: skip
        assert len(matching) == 1 and reason in matching[0]["reason"], (reason, matching)
    nudge_topic = stream_rig.settings.topic(NUDGE)
    for metadata in nudged:
        matching = [x for x in letters if (x["topic"], x["offset"]) == (nudge_topic, metadata.offset)]
        assert len(matching) == 1 and "signature" in matching[0]["reason"], matching
    failed = [x for x in letters if x.get("event_id") == failing["event_id"]]
    assert len(failed) == 1, letters
    assert failed[0]["reason"] == "engine failed on this event: ZeroDivisionError: float division by zero"
    assert len(letters) == len(internal) + len(nudges) + 1, letters
    assert stream_rig.workers[0].running
    stream_rig.stop_all()
