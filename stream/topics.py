"""Topic names, keys, partitions and the records that travel between the two stages.

Inbound (written by the ERP, the payment platform, the vendor master and analysts; `paysentry produce`):

    erp.payments, psp.events, labels   key = payment_id   (co-partitioned: partition i of each meets)
    vendor.master                      key = vendor_id

Internal: `engine.events`. Partition `partition_for_shard(shard)` holds every event of that shard, in the
order the ingest stage routed them, plus vendor events (broadcast to every partition: each shard needs the
master data as of its own events' time) and progress ticks. Events travel in micro-batches (`Batch`: one
record holds the events routed to one partition while the ingest agent had further records queued).

Outbound: `decisions` and `alerts` (key = payment_id, written to the partition of the payment's shard,
so a payment's decisions stay together and a partition's owner can read back what it emitted),
`deadletter` (key = source topic, value = reason, topic, partition, offset and the redacted raw record).

`engine.events` records are trusted only when they come from this deployment: each carries an
HMAC-SHA256 of its value in the `ps-sig` header (key: `StreamSettings.internal_key`), and
`decode_envelope` refuses (`InvalidEnvelope`) a record that is unsigned, signed with another key, or not a
well-formed envelope, so a forged tick cannot move the watermark nor a forged event skip ingest.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

ERP, PSP, VENDOR, LABELS = "erp.payments", "psp.events", "vendor.master", "labels"
INBOUND = (ERP, PSP, VENDOR, LABELS)
ENGINE = "engine.events"
DECISIONS, ALERTS, DEADLETTER = "decisions", "alerts", "deadletter"
CASES_RESOLVED = "cases.resolved"  # the review desk's verdicts, for the ERP (key: payment_id)
OUTBOUND = (DECISIONS, ALERTS, DEADLETTER, CASES_RESOLVED)
SEQ_HEADER = "ps-seq"  # position of the record in the producer's file: breaks event-time ties
EVENT_ID_HEADER = "ps-event-id"
SIGNATURE_HEADER = "ps-sig"  # HMAC of an engine.events record's value
MAX_SHARD_LENGTH = 200
MAX_BATCH_ITEMS = 10_000  # events in one engine.events record (the ingest stage also caps its bytes)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def topic_for_type(event_type: Any) -> str:
    """The inbound topic of an event type (unknown types go with the ERP's, where they dead-letter)."""
    if isinstance(event_type, str):
        family = event_type.split(".", 1)[0]
        if family == "psp":
            return PSP
        if family == "vendor":
            return VENDOR
        if family == "label":
            return LABELS
    return ERP


def key_for_record(data: Any) -> bytes | None:
    """Inbound key: vendor id for vendor events, payment id for the rest."""
    if not isinstance(data, dict):
        return None
    name = "vendor_id" if topic_for_type(data.get("type")) == VENDOR else "payment_id"
    value = data.get(name)
    return value.encode() if isinstance(value, str) and value else None


def partition_for_shard(shard: str, partitions: int, pinned: dict[str, int] | None = None) -> int:
    """Stable shard -> partition (the same in every worker and every run); `pinned` places chosen
    shards (PAYSENTRY_SHARD_PARTITIONS="CN01=0,US01=1"), a hash spreads the others."""
    if pinned and shard in pinned:
        return pinned[shard] % partitions
    return int.from_bytes(hashlib.md5(shard.encode(), usedforsecurity=False).digest()[:8], "big") % partitions


def micros(moment: datetime) -> int:
    """Event time as integer microseconds since the epoch (exact, unlike float timestamps)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Routed:
    """An event on its way to the decision stage."""

    event: dict[str, Any]  # Event.to_dict(): past the ingest boundary, no clear account
    shard: str | None  # None for vendor events (master data, every partition)
    ts: int  # event time, microseconds
    seq: int | None  # SEQ_HEADER of the inbound record, if any
    source: int  # ingest group (inbound partition number)
    offset: int  # offset in the inbound partition

    def order(self) -> tuple[int, int, int, int]:
        seq = self.seq if self.seq is not None else 1 << 62
        return (self.ts, seq, self.source, self.offset)

    def encode(self) -> bytes:
        return orjson.dumps(
            {"k": "e", "ev": self.event, "s": self.shard, "ts": self.ts, "q": self.seq, "g": self.source,
             "o": self.offset}
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Batch:
    """Routed events for one partition of `engine.events` in one record: the ingest stage pays Faust's
    per-record cost once per batch rather than once per event. Items keep their routing order."""

    items: tuple[Routed, ...]

    @staticmethod
    def encode_items(encoded: list[bytes]) -> bytes:
        """The batch of already encoded `Routed` records (one alone is sent as itself)."""
        if len(encoded) == 1:
            return encoded[0]
        return b'{"k":"b","items":[' + b",".join(encoded) + b"]}"


@dataclass(frozen=True, slots=True)
class Tick:
    """Progress of one ingest group: nothing it routes later is older than `low` (None: it is idle,
    caught up with its inbound partitions and holding nothing back); `high` is the newest event time
    it has seen."""

    source: int
    low: int | None
    high: int | None

    def encode(self) -> bytes:
        return orjson.dumps({"k": "t", "g": self.source, "low": self.low, "high": self.high})


class InvalidEnvelope(ValueError):
    """An engine.events record this deployment did not write, or cannot read."""


def sign_envelope(key: bytes, value: bytes) -> bytes:
    return hmac.new(key, value, hashlib.sha256).hexdigest().encode()


def envelope_signature(headers: Any) -> bytes | None:
    for name, value in headers or ():
        if name == SIGNATURE_HEADER:
            return value if isinstance(value, bytes) else None
    return None


def _int(data: dict[str, Any], name: str, *, optional: bool = False, low: int = -(2**63)) -> Any:
    value = data.get(name)
    if value is None and optional:
        return None
    if type(value) is not int or value < low:
        raise InvalidEnvelope(f"envelope field {name!r} is not a valid integer")
    return value


def decode_envelope(raw: Any, *, key: bytes, signature: bytes | None) -> Routed | Tick | Batch:
    """The record as this deployment's ingest stage wrote it, or InvalidEnvelope with the reason."""
    if not isinstance(raw, bytes):
        raise InvalidEnvelope("empty record (no value)")
    if signature is None:
        raise InvalidEnvelope(f"unsigned record (no {SIGNATURE_HEADER} header): not written by this deployment")
    if not hmac.compare_digest(signature, sign_envelope(key, raw)):
        raise InvalidEnvelope("record signature does not match: not written by this deployment, or altered")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidEnvelope("record is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidEnvelope("record is not a JSON object")
    kind = data.get("k")
    if kind == "t":
        return Tick(_int(data, "g", low=0), _int(data, "low", optional=True), _int(data, "high", optional=True))
    if kind == "b":
        items = data.get("items")
        if not isinstance(items, list) or len(items) > MAX_BATCH_ITEMS:
            raise InvalidEnvelope(f"envelope field 'items' is not a list of at most {MAX_BATCH_ITEMS} events")
        batch = []
        for item in items:
            if not isinstance(item, dict) or item.get("k") != "e":
                raise InvalidEnvelope("a batch item is not an event")
            batch.append(_routed(item))
        return Batch(tuple(batch))
    if kind != "e":
        raise InvalidEnvelope("record is neither an event, a batch of events nor a progress tick")
    return _routed(data)


def _routed(data: dict[str, Any]) -> Routed:
    event, shard = data.get("ev"), data.get("s")
    if not isinstance(event, dict):
        raise InvalidEnvelope("envelope field 'ev' is not an object")
    if shard is not None and (not isinstance(shard, str) or not 0 < len(shard) <= MAX_SHARD_LENGTH):
        raise InvalidEnvelope("envelope field 's' is not a shard name")
    return Routed(event, shard, _int(data, "ts"), _int(data, "q", optional=True), _int(data, "g", low=0),
                  _int(data, "o", low=0))  # fmt: skip
