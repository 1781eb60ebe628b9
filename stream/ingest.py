"""The ingest stage: decode and validate inbound records, route them to their shard's partition.

One agent reads the four inbound topics and `ingest.ticks` (all co-partitioned: partition i of each is
one *ingest group*, owned by one worker). For every record it:

- dead-letters a bad one (reason, source topic, partition, offset, raw record with anything that looks
  like an account masked), including one whose event time is outside the plausibility window around this
  worker's clock (`TimeWindow`: a producer's clock off by years must not move the engine's clock);
- broadcasts a vendor event to every partition of `engine.events` (master data, applied in event-time
  order by every shard);
- routes a payment, platform or label event to the partition of its shard (`paysentry.sharding.shard_for`
  with the `routes` table, payment_id -> shard, as first seen in *event time*; a route expires weeks after
  its payment's newest event, and each group sweeps its expired routes: `stream/routes.py`).

A payment's first event decides its shard, so a payment's events must be routed in event-time order even
though they come from three topics consumed at their own pace: an event of a payment with no route yet
waits until the group's other inbound partitions have caught up with its event time (or are idle).

Each group reports its progress (`Tick`) to every partition of `engine.events`, so the decision stage
knows up to which event time it has seen everything. Records are acknowledged strictly in offset order,
and only once their output has been handed to the producer (which Faust flushes before committing).

While further records are queued, routed events wait in an outbox and go out as one `engine.events`
record per partition (`stream.topics.Batch`), before any tick: Faust's per-record cost is paid per batch.
With a `linger` (PAYSENTRY_BATCH_LINGER_SECONDS), the outbox also waits that long for more records when
the queue runs dry, and goes out once its oldest event has waited that long even while records keep
coming: a steady stream, whose queue is mostly empty, then still travels in batches, and a busy one
waits at most the linger for its batch.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from paysentry.analytics import metrics
from paysentry.contract import DEFAULT_TIME_WINDOW, Event, InvalidEvent, TimeWindow, parse_event
from paysentry.event_time import epoch
from paysentry.redaction import redact_raw
from paysentry.sharding import RouteMap, live_route, route_week, shard_for
from stream.routes import RouteTable
from stream.topics import (
    ERP,
    INBOUND,
    LABELS,
    PSP,
    SEQ_HEADER,
    Batch,
    Routed,
    Tick,
    micros,
)

log = logging.getLogger(__name__)
_ARRIVALS = itertools.count()  # tie-break of waiting events with the same order (never compares events)
PAYMENT_SOURCES = (ERP, PSP, LABELS)
_SOURCE_OF_FAMILY = {"psp": PSP, "label": LABELS}  # the inbound topic of an event's family (else ERP)
NUDGE = "ingest.ticks"
MAX_BATCH_BYTES = 256 * 1024  # an engine.events batch stays well below Kafka's 1 MB message limit
MAX_BATCH_EVENTS = 2_000

Send = Callable[..., Any]


def redact(raw: bytes) -> str:
    """The dead-letter copy of a bad record: no payee account in clear, whatever shape the record has."""
    return redact_raw(raw)


@dataclass
class _Pending:
    event: Any  # the Faust event, acknowledged when done
    done: bool = False


@dataclass
class Group:
    """One ingest group: inbound partition `index` of every inbound topic."""

    index: int
    seen: dict[str, int] = field(default_factory=dict)  # topic -> newest event time seen (micros)
    next_offset: dict[str, int] = field(default_factory=dict)  # topic -> next offset to process
    start: dict[str, int] = field(default_factory=dict)  # topic -> where this owner started (committed)
    highwater: dict[str, int] = field(default_factory=dict)
    # events that must wait for the other inbound partitions, a heap in event-time order:
    # (Routed.order(), arrival tie-break, routed, event, its record)
    waiting: list[tuple[tuple[int, int, int, int], int, Routed, Event, _Pending]] = field(default_factory=list)
    unacked: dict[str, deque[_Pending]] = field(default_factory=dict)

    caught_up_since: dict[str, float] = field(default_factory=dict)
    idle_after: float = 1.0

    def caught_up(self, topic: str) -> bool:
        """Every record of the partition that exists (as of the last nudge) has been processed."""
        high = self.highwater.get(topic)
        position = self.next_offset.get(topic, self.start.get(topic))
        return high is not None and position is not None and position >= high

    def idle(self, topic: str) -> bool:
        """Caught up for a while: a burst from the producer does not make a partition look idle
        between two of its records (which would then arrive late)."""
        since = self.caught_up_since.get(topic)
        return since is not None and time.monotonic() - since >= self.idle_after and self.caught_up(topic)

    def note_progress(self) -> None:
        now = time.monotonic()
        for topic in INBOUND:
            if self.caught_up(topic):
                self.caught_up_since.setdefault(topic, now)
            else:
                self.caught_up_since.pop(topic, None)

    def must_wait(self, topic: str, ts: int) -> bool:
        """Could another inbound partition still deliver an earlier event of the same payment?"""
        for other in PAYMENT_SOURCES:
            if other != topic and not self.idle(other) and self.seen.get(other, -1) < ts:
                return True
        return False

    def low(self) -> int | None:
        """Nothing routed from now on is older than this (None: idle)."""
        bounds = [self.waiting[0][0][0]] if self.waiting else []  # the oldest waiting event's time
        bounds += [self.seen.get(t, 0) for t in INBOUND if not self.idle(t)]
        return min(bounds) if bounds else None

    def high(self) -> int | None:
        return max(self.seen.values(), default=None)


class IngestStage:
    def __init__(self, *, account_key: bytes, partitions: int, partition_of: Callable[[str], int], routes: RouteMap,
                 short_name: Callable[[str], str], send_engine: Send, send_deadletter: Send,
                 idle_after: float = 1.0, time_window: TimeWindow = DEFAULT_TIME_WINDOW,
                 clock: Callable[[], float] = time.time, linger: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 send_routes: Callable[[], Awaitable[None]] | None = None) -> None:  # fmt: skip
        self.idle_after = idle_after
        self.send_routes = send_routes  # the routes table's new entries, sent with each micro-batch
        self.linger, self.monotonic = linger, monotonic
        self.time_window = time_window
        self.clock = clock  # the stream's clock, for the plausibility of event times
        self.account_key = account_key
        self.partitions = partitions
        self.partition_of = partition_of
        self.routes = routes
        self.short_name = short_name
        self.send_engine = send_engine
        self.send_deadletter = send_deadletter
        self.groups: dict[int, Group] = {}
        self.revoked: set[int] = set()
        self.lock = asyncio.Lock()  # one record at a time; a rebalance waits for the current one
        # routed events not yet handed to the producer: engine partition -> encoded events, and the
        # inbound records they come from (acknowledged once the batch is sent)
        self.outbox: dict[int, list[bytes]] = {}
        self.outbox_bytes = 0
        self.outbox_pending: list[_Pending] = []
        self.outbox_since: float | None = None  # when the oldest event in the outbox was routed
        self.flush_task: asyncio.Task[None] | None = None  # the linger's flush, while one is due

    def group(self, index: int) -> Group:
        if index not in self.groups:
            self.groups[index] = Group(index, idle_after=self.idle_after)
        return self.groups[index]

    async def forget(self, indexes: set[int]) -> None:
        """Partitions revoked: their unacknowledged records will be processed again by the next owner."""
        async with self.lock:
            await self.send_batches()  # what was routed goes out (an event routed twice is recognised)
            self.revoked |= indexes
            for index in indexes:
                self.groups.pop(index, None)
            if isinstance(self.routes, RouteTable):
                self.routes.forget(indexes)

    def assigned(self, indexes: set[int]) -> None:
        self.revoked -= indexes

    def status(self) -> dict[int, dict[str, Any]]:
        return {i: {"waiting": len(g.waiting), "low": g.low(),
                    "busy": {t: (g.next_offset.get(t), g.start.get(t), g.highwater.get(t)) for t in INBOUND
                             if not g.idle(t)}}
                for i, g in sorted(self.groups.items())}  # fmt: skip

    async def handle(self, event: Any, *, more: bool = False) -> None:
        """One inbound record or nudge. `more`: further records are already queued, so the routed events
        may wait in the outbox for them (sent as one record per partition: `send_batches`)."""
        async with self.lock:
            if event.message.partition not in self.revoked:  # else a straggler from before a rebalance
                await self._handle(event)
            full = self.outbox_bytes >= MAX_BATCH_BYTES or len(self.outbox_pending) >= MAX_BATCH_EVENTS
            if full or (not more and self.linger <= 0) or self._lingered():
                await self.send_batches()
            elif not more and self.outbox_pending and self.flush_task is None:
                self.flush_task = asyncio.create_task(self._flush_after_linger())
            for group in self.groups.values():
                self._ack(group)

    def _lingered(self) -> bool:
        return self.linger > 0 and self.outbox_since is not None and self.monotonic() - self.outbox_since >= self.linger

    async def _flush_after_linger(self) -> None:
        """The queue ran dry with events in the outbox: send them once the oldest has waited the linger."""
        since = self.outbox_since
        try:
            await asyncio.sleep(max(0.0, self.linger - (self.monotonic() - since)) if since is not None else 0.0)
            async with self.lock:
                await self.send_batches()
                for group in self.groups.values():
                    self._ack(group)
        except Exception as exc:  # unacknowledged, the records are sent by the next flush or the next owner
            log.warning("micro-batch flush failed: %r", exc)
        finally:
            self.flush_task = None

    async def flushed(self) -> None:
        """Wait for a pending linger flush (what a caller that must see the outbox sent awaits)."""
        if self.flush_task is not None:
            await asyncio.shield(self.flush_task)

    async def send_batches(self) -> None:
        """Hand the outbox to the producer, one `engine.events` record per partition, then mark the
        inbound records it came from done (they are acknowledged in offset order)."""
        outbox, pending = self.outbox, self.outbox_pending
        self.outbox, self.outbox_bytes, self.outbox_pending, self.outbox_since = {}, 0, [], None
        if self.send_routes is not None:
            await self.send_routes()  # before the records that made the routes count as done
        for partition, encoded in sorted(outbox.items()):
            await self.send_engine(key=b"~batch", value=Batch.encode_items(encoded), partition=partition)
        for item in pending:
            item.done = True

    async def _handle(self, event: Any) -> None:
        message = event.message
        topic = self.short_name(message.topic)
        group = self.group(message.partition)
        pending = _Pending(event)
        group.unacked.setdefault(topic, deque()).append(pending)
        if topic == NUDGE:
            await self._nudge(group, event.value)
            pending.done = True
        else:
            group.next_offset[topic] = message.offset + 1
            group.caught_up_since.pop(topic, None)
            await self._inbound(group, topic, message, pending)
        await self._release(group)

    async def _inbound(self, group: Group, topic: str, message: Any, pending: _Pending) -> None:
        raw = _raw_bytes(message.value)
        try:
            event = parse_event(raw, account_key=self.account_key, now=self.clock(), window=self.time_window)
            ts = micros(event.event_time)
            routed = Routed(event.to_dict(), None, ts, _seq(message.headers), group.index, message.offset)
            encoded = routed.encode()  # fails here, on this record, rather than later in the middle of routing
        except InvalidEvent as exc:
            await self._dead_letter(topic, message, raw, exc.reason, exc.event_id)
            pending.done = True
            return
        except (TypeError, ValueError, OverflowError) as exc:
            await self._dead_letter(topic, message, raw, f"cannot be passed on: {type(exc).__name__}", None)
            pending.done = True
            return
        group.seen[topic] = max(group.seen.get(topic, ts), ts)
        at = epoch(event.event_time)
        metrics.observe_event(event)
        if event.family == "vendor":
            for partition in range(self.partitions):
                self._queue(partition, encoded)
            self.outbox_pending.append(pending)
        elif live_route(self.routes, event.payment_id, at) is not None or not group.must_wait(topic, ts):
            self._route(routed, event, pending, at)
        else:
            heapq.heappush(group.waiting, (routed.order(), next(_ARRIVALS), routed, event, pending))

    def _route(self, routed: Routed, event: Event, pending: _Pending, at: int) -> None:
        """Route one event at its event time `at` (epoch seconds)."""
        shard = shard_for(event, self.routes, at)
        routed = Routed(routed.event, shard, routed.ts, routed.seq, routed.source, routed.offset)
        self._queue(self.partition_of(shard), routed.encode())
        self.outbox_pending.append(pending)

    def _queue(self, partition: int, encoded: bytes) -> None:
        if self.outbox_since is None:
            self.outbox_since = self.monotonic()
        self.outbox.setdefault(partition, []).append(encoded)
        self.outbox_bytes += len(encoded)

    async def _release(self, group: Group) -> None:
        """Route the waiting events whose turn has come, oldest first (the first that must still wait
        holds back every later one)."""
        waiting = group.waiting
        while waiting:
            _, _, routed, event, pending = waiting[0]
            topic = _SOURCE_OF_FAMILY.get(event.family, ERP)
            at = epoch(event.event_time)
            if live_route(self.routes, event.payment_id, at) is None and group.must_wait(topic, routed.ts):
                break
            heapq.heappop(waiting)
            self._route(routed, event, pending, at)

    async def _nudge(self, group: Group, value: Any) -> None:
        """A periodic nudge from this worker's clock: fresh high-water marks, then report progress."""
        highwater, start = _nudge_offsets(value)
        group.highwater.update(highwater)
        for topic, offset in start.items():
            group.start.setdefault(topic, offset)
        group.note_progress()
        await self._release(group)
        self._sweep_routes(group)
        await self.send_batches()  # the tick vouches for what was routed: it must follow it in every partition
        tick = Tick(group.index, group.low(), group.high()).encode()
        for partition in range(self.partitions):
            await self.send_engine(key=b"~tick", value=tick, partition=partition)

    def _sweep_routes(self, group: Group) -> None:
        """Delete the group's expired routes: expired by the oldest event time still to be routed, so no
        event routed from now on reads them as live."""
        oldest = group.low()
        if oldest is None:  # idle: whatever comes next is new (an event weeks older than all seen is late anyway)
            oldest = group.high()
        if oldest is not None and isinstance(self.routes, RouteTable):
            self.routes.sweep(group.index, route_week(oldest // 1_000_000))

    async def _dead_letter(self, topic: str, message: Any, raw: bytes, reason: str, event_id: str | None) -> None:
        record = {"reason": reason, "topic": message.topic, "partition": message.partition,
                  "offset": message.offset, "event_id": event_id, "raw": redact(raw)}  # fmt: skip
        metrics.observe_dead_letter("ingest")
        await self.send_deadletter(key=topic.encode(), value=orjson.dumps(record))

    def _ack(self, group: Group) -> None:
        for queue in group.unacked.values():
            while queue and queue[0].done:
                queue.popleft().event.ack()


def _raw_bytes(value: Any) -> bytes:
    """The record as bytes, whatever the client handed over (bytes normally)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    return b"" if value is None else repr(value).encode("utf-8", "replace")


def _offsets(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)}


def _nudge_offsets(value: Any) -> tuple[dict[str, int], dict[str, int]]:
    """High-water marks and start offsets from a nudge; a malformed nudge counts as an empty one (the
    next one brings fresh marks) rather than stopping the agent."""
    try:
        data = orjson.loads(value) if isinstance(value, bytes | bytearray | memoryview | str) else value
    except orjson.JSONDecodeError:
        return {}, {}
    if not isinstance(data, dict):
        return {}, {}
    return _offsets(data.get("highwater")), _offsets(data.get("start"))


def _seq(headers: Any) -> int | None:
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            continue
        name, value = pair
        if name == SEQ_HEADER:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None
