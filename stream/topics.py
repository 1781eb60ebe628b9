"""Topic names, keys, partitions and the records that travel between the two stages.

Inbound (written by the ERP, the payment platform, the vendor master and analysts; `paysentry produce`):

    erp.payments, psp.events, labels   key = payment_id   (co-partitioned: partition i of each meets)
    vendor.master                      key = vendor_id

Internal: `engine.events`, keyed by shard (paying company). Partition `partition_for_shard(shard)` holds
every event of that shard, in the order the ingest stage routed them, plus vendor events (broadcast to
every partition: each shard needs the master data as of its own events' time) and progress ticks.

Outbound: `decisions` and `alerts` (key = payment_id, written to the partition of the payment's shard,
so a payment's decisions stay together and a partition's owner can read back what it emitted),
`deadletter` (key = source topic, value = reason, topic, partition, offset and the redacted raw record).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

ERP, PSP, VENDOR, LABELS = "erp.payments", "psp.events", "vendor.master", "labels"
INBOUND = (ERP, PSP, VENDOR, LABELS)
ENGINE = "engine.events"
DECISIONS, ALERTS, DEADLETTER = "decisions", "alerts", "deadletter"
OUTBOUND = (DECISIONS, ALERTS, DEADLETTER)
SEQ_HEADER = "ps-seq"  # position of the record in the producer's file: breaks event-time ties
EVENT_ID_HEADER = "ps-event-id"

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
class Tick:
    """Progress of one ingest group: nothing it routes later is older than `low` (None: it is idle,
    caught up with its inbound partitions and holding nothing back); `high` is the newest event time
    it has seen."""

    source: int
    low: int | None
    high: int | None

    def encode(self) -> bytes:
        return orjson.dumps({"k": "t", "g": self.source, "low": self.low, "high": self.high})


def decode_envelope(raw: bytes) -> Routed | Tick:
    data = orjson.loads(raw)
    if data["k"] == "t":
        return Tick(data["g"], data["low"], data["high"])
    return Routed(data["ev"], data["s"], data["ts"], data["q"], data["g"], data["o"])
