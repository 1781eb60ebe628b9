"""The decision stage: one agent over `engine.events`, a thin shell over `paysentry.core.Engine`.

Per partition of `engine.events` (a set of shards) it keeps:

- an event-time buffer: events wait until every ingest group has reported progress past them (`Tick`),
  then run through the core oldest first, so each shard sees its events (and the vendor master data) in
  the same order as `paysentry replay`; the settlement-SLA / unmatched timers fire as event time passes
  their due time, just before the first event after it, again as in replay;
- the shard state, in the changelogged table `shard-state` (entity key -> encoded entity), with the
  entities an event touched held back in memory until the next checkpoint;
- the vendor master data, replicated into the partition under `#<partition>/vm:...` keys.

Deciding at most once, losing nothing, across a SIGKILL at any instant (see stream/README.md):

1. decisions and alerts go to the partition of `decisions` / `alerts` with the same number, whose only
   writer is this partition's owner;
2. a checkpoint first flushes the producer (every output so far is on the broker), then writes one
   `~ckpt/<partition>` record holding every dirty entity and the output offsets (stream/checkpoint.py:
   the protocol and its table layout), then the entities themselves, flushes again, and only then
   acknowledges the input records it covers, in offset order (Faust commits only acknowledged offsets,
   so no commit can run ahead of the state: issue #606);
3. a new owner of the partition re-applies the last `~ckpt` record (a checkpoint is all or nothing: its
   record precedes its entity writes in the same changelog partition) and reads the outputs written
   since that checkpoint; re-processing the unacknowledged input then rebuilds the same decisions, and
   those already on the broker are not sent again.

No single record stops a partition: a record that is not a well-formed envelope signed by this
deployment (stream.topics), an event that does not validate, and an event or timer on which the core
raises are each dead-lettered with the reason (exception type and message, no traceback, no record
content) and acknowledged in turn; the partition goes on with the next one.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from paysentry.analytics import metrics
from paysentry.contract import Decision, Event, action_rank
from paysentry.core import Engine
from paysentry.event_time import epoch
from paysentry.state import (
    NEVER,
    PaymentRecord,
    decode_entity,
    encode_entity,
    expiry_hint,
    key_for,
    shard_of,
)
from paysentry.windows import DAY
from stream.changelog import ChangelogBatch, Send
from stream.checkpoint import apply_entities, cut_short, recover, write_checkpoint
from stream.faults import NO_FAULTS, FaultHook
from stream.partition import PartitionState, Pending, TableView
from stream.reasons import exception_reason
from stream.topics import (
    ALERTS,
    DECISIONS,
    ENGINE,
    EVENT_ID_HEADER,
    Batch,
    InvalidEnvelope,
    Routed,
    Tick,
    decode_envelope,
    envelope_signature,
)

log = logging.getLogger(__name__)
__all__ = ["DecisionStage", "PartitionState", "TableView"]
ReadBack = Callable[[str, int, int], Awaitable[set[str]]]


class DecisionStage:
    def __init__(self, *, engine: Engine, table: Any, partitions: int, partition_of: Callable[[str], int],
                 alert_action: str, send: Callable[..., Any],
                 flush: Callable[[], Awaitable[None]], read_back: ReadBack, checkpoint_events: int,
                 checkpoint_seconds: float, max_buffer: int, internal_key: bytes,
                 send_deadletter: Callable[..., Awaitable[Any]], faults: FaultHook = NO_FAULTS,
                 lateness: int | None = None, send_changelog: Send | None = None) -> None:  # fmt: skip
        self.engine, self.table, self.partitions = engine, table, partitions
        # a sweep asks for every key's shard: the answer for a shard never changes (bounded: shards are many
        # only if a producer invents company codes)
        self.partition_of = functools.lru_cache(maxsize=4096)(partition_of)
        self.internal_key, self.send_deadletter = internal_key, send_deadletter
        self.alert_rank = action_rank(alert_action)
        self.send, self.flush, self.read_back = send, flush, read_back
        self.checkpoint_events, self.checkpoint_seconds = checkpoint_events, checkpoint_seconds
        self.max_buffer = max_buffer
        self.faults = faults
        self.lateness = lateness  # None: exact ordering; else bounded, in event-time microseconds
        self.send_changelog = send_changelog  # checkpoints write the table past Faust's per-write sends
        self.states: dict[int, PartitionState] = {}
        self.revoked: set[int] = set()
        self.lock = asyncio.Lock()  # one message at a time; a rebalance waits for the current one
        self._counter = itertools.count()
        self.waits: deque[float] = deque(maxlen=20_000)  # recent ordering waits (seconds), for the status log

    # -- the agent's entry points -----------------------------------------------------------------
    async def handle(self, event: Any) -> None:
        async with self.lock:
            partition = event.message.partition
            if partition in self.revoked:
                return  # a straggler from before a rebalance: the partition's next owner processes it
            state = self.states.get(partition)
            if state is None:
                state = self.states[partition] = await self._recover(partition)
            pending = Pending(event)
            state.unacked.append(pending)
            offset, state.read_to = event.message.offset, max(state.read_to, event.message.offset)
            try:
                envelope = self._envelope(event)
            except InvalidEnvelope as refused:
                await self._dead_letter(event, str(refused))
                envelope = None
                pending.done = True
            if envelope is None:
                pass
            elif isinstance(envelope, Tick) and offset < state.read_to:
                pending.done = True  # a tick read again after a seek is stale: progress never goes back
            elif isinstance(envelope, Tick):
                state.low[envelope.source] = envelope.low
                if envelope.high is not None:
                    state.high[envelope.source] = max(envelope.high, state.high.get(envelope.source, 0))
                pending.done = True
            elif isinstance(envelope, Batch):
                pending.remaining = len(envelope.items)
                pending.done = not envelope.items
                for routed in envelope.items:
                    self._buffer(state, routed, pending)
            else:
                self._buffer(state, envelope, pending)
            if state.checkpointing is not None and state.checkpointing.done():
                await self._settle(state)  # raises if it failed: the agent stops, as on any broker failure
            await self._release(state)
            if self._due_for_checkpoint(state):
                await self._begin_checkpoint(state)
            self._ack(state)

    async def forget(self, partitions: set[int]) -> None:
        """Partitions revoked: drop what was not checkpointed (the next owner processes it again) once
        every output already sent is on the broker, where the next owner reads it back."""
        async with self.lock:
            self.revoked |= partitions
            for partition in partitions:
                state = self.states.pop(partition, None)
                if state is not None and state.checkpointing is not None:
                    try:
                        await self._settle(state)  # as a checkpoint under way would have: it is safe either way
                    except Exception as exc:  # the next owner starts from the checkpoint before it
                        log.warning("partition %d: checkpoint in flight at revocation failed: %r", partition, exc)
            await self.flush()

    def assigned(self, partitions: set[int]) -> None:
        self.revoked -= partitions

    async def prepare(self, partitions: set[int]) -> None:
        """Recover assigned partitions once their table is restored, before their first record, so the
        first events after a start or a rebalance do not wait for it (reading back the outputs, scheduling
        the timers). A partition whose last checkpoint was cut short is left to its first record: finishing
        it writes to the table, which Faust allows only in the context of a record."""
        async with self.lock:
            for partition in sorted(partitions - self.revoked - self.states.keys()):
                if not cut_short(self.table, partition):
                    self.states[partition] = await self._recover(partition)

    def status(self) -> dict[int, dict[str, Any]]:
        """What each partition holds back, for the periodic status log."""
        return {p: {"buffered": len(s.buffer), "unacked": len(s.unacked), "dirty": len(s.dirty),
                    "watermark": self._watermark(s), "groups": len(s.low), "timers": len(s.timers)}
                for p, s in sorted(self.states.items())}  # fmt: skip

    def ordering_wait(self) -> str:
        """How long recent events waited in the buffer for event-time order (the status log)."""
        waits = sorted(self.waits)
        if not waits:
            return "no event yet"
        p50, p99 = waits[len(waits) // 2], waits[min(len(waits) - 1, int(len(waits) * 0.99))]
        return f"p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms over the last {len(waits):,} events"

    def _envelope(self, event: Any) -> Routed | Tick | Batch:
        signature = envelope_signature(event.message.headers)
        envelope = decode_envelope(event.value, key=self.internal_key, signature=signature)
        if isinstance(envelope, Tick) and envelope.source >= self.partitions:
            raise InvalidEnvelope(f"tick from ingest group {envelope.source}: there are {self.partitions}")
        return envelope

    async def _dead_letter(self, event: Any, reason: str, event_id: str | None = None) -> None:
        """The record's origin and the reason; not its content (it is refused, or it made the core fail)."""
        message = event.message
        record = {"reason": reason, "topic": message.topic, "partition": message.partition,
                  "offset": message.offset, "event_id": event_id}  # fmt: skip
        metrics.observe_dead_letter("decide")
        await self.send_deadletter(key=ENGINE.encode(), value=orjson.dumps(record))

    # -- event-time order -------------------------------------------------------------------------
    def _buffer(self, state: PartitionState, routed: Routed, pending: Pending) -> None:
        heapq.heappush(state.buffer, (routed.order(), next(self._counter), time.monotonic(), routed, pending))
        state.newest = max(state.newest, routed.ts)

    def _watermark(self, state: PartitionState) -> float:
        """Events older than this have all arrived (inf: every ingest group is idle). In bounded ordering,
        also every event older than the newest one received by more than the lateness."""
        bounded = float("-inf") if self.lateness is None else state.newest - self.lateness
        if len(state.low) < self.partitions:
            return bounded
        lows = [low for low in state.low.values() if low is not None]
        return max(min(lows), bounded) if lows else float("inf")

    async def _release(self, state: PartitionState) -> None:
        mark = self._watermark(state)
        while state.buffer and (state.buffer[0][0][0] < mark or len(state.buffer) > self.max_buffer):
            _, _, arrived, routed, pending = heapq.heappop(state.buffer)
            self.waits.append(time.monotonic() - arrived)
            await self._process(state, routed, pending)
            state.awaiting.append(pending)
            if len(state.awaiting) >= self.checkpoint_events:
                await self._begin_checkpoint(state)
        if mark == float("inf") and state.high:
            await self._emit(state, await self._advance(state, max(state.high.values()) // 1_000_000))

    async def _process(self, state: PartitionState, routed: Routed, pending: Pending) -> None:
        event_id = routed.event.get("event_id")
        event_id = event_id if isinstance(event_id, str) else None
        try:
            # validated at ingest and signed by this deployment (decode_envelope checked the signature):
            # rebuilt as validation builds it, without validating again
            event = Event.from_checked_dict(routed.event)
        except ValueError as invalid:  # a well-signed record this version cannot read (names the field)
            await self._dead_letter(pending.event, f"event does not validate: {invalid}", event_id)
            return
        decisions: list[Decision] = []
        try:
            now = epoch(event.event_time)
            decisions += await self._advance(state, now)
            if routed.shard is None:
                self.engine.apply_master(event, state.master)
            else:
                started = time.perf_counter()
                decision = self.engine.process(event, state.store, shard=routed.shard, master=state.master)
                metrics.observe_decision_latency(time.perf_counter() - started)
                metrics.observe_payment_event(event)
                if decision is not None:
                    decisions.append(decision)
                if event.payment_id:
                    self._schedule(state, event.payment_id, routed.shard)
        except Exception as failed:  # one event must not stop the partition: it is dead-lettered instead
            log.warning("partition %d: event %s dead-lettered: %s", state.index, event_id, type(failed).__name__)
            reason = f"engine failed on this event: {exception_reason(failed)}"
            await self._dead_letter(pending.event, reason, event_id)
            await self._emit(state, decisions)  # the timers that fired before it
            return
        state.processed += 1
        if now >= state.next_sweep:
            self._sweep(state, now)
        await self._emit(state, decisions)

    def _sweep(self, state: PartitionState, now: int) -> None:
        """Delete this partition's entities that already read as absent at event time `now` (idle past
        their horizon: `Engine.expired`), as replay does, so when a sweep runs never changes a decision.
        The deletions are written (as table tombstones) by the next checkpoint, like any other change."""
        state.next_sweep = now + DAY
        swept = 0
        hints = state.expiry_hints
        if not state.keys_known:
            # once per owner: the partition's keys in the table (the table holds every partition's); from
            # then on every key this owner writes gets a hint at its checkpoint, and a deletion drops it
            for key in self.table.keys():  # noqa: SIM118
                if key not in hints and self._owned_entity(key, state.index):
                    hints[key] = -NEVER
            state.keys_known = True
        for key in set(hints) | set(state.dirty) | set(state.inflight):
            if now <= hints.get(key, -NEVER):
                continue  # not idle yet: no need to decode it (a hint only ever understates)
            if not self._owned_entity(key, state.index):
                continue
            entity = state.store.get(key)
            if entity is None:
                hints.pop(key, None)
            elif self.engine.expired(entity, now):
                state.dirty[key] = None
                hints.pop(key, None)
                if isinstance(entity, PaymentRecord) and entity.payment_id:
                    state.timers.forget(entity.payment_id)
                swept += 1
            else:
                hints[key] = expiry_hint(entity)
        if swept:
            log.info("partition %d: swept %d entities idle past their horizon", state.index, swept)

    def _owned_entity(self, key: str, partition: int) -> bool:
        """A key of one of the partition's shards (not master data, not a checkpoint record)."""
        shard = shard_of(key)
        return shard is not None and not shard.startswith(("~", "#")) and self.partition_of(shard) == partition

    # -- timers (as paysentry.replay.Replayer, per partition) -------------------------------------
    async def _advance(self, state: PartitionState, now: int) -> list[Decision]:
        decisions: list[Decision] = []
        for due, payment_id, shard in state.timers.pop_due(now):
            try:
                decisions += self.engine.check_timers([payment_id], due, state.store, shard=shard, master=state.master)
                self._schedule(state, payment_id, shard)
            except Exception as failed:  # the payment's timer is dropped (retrying it would fail again)
                log.warning("partition %d: timer of %s dead-lettered: %s", state.index, payment_id,
                            type(failed).__name__)  # fmt: skip
                record = {"reason": f"engine failed on a timer: {exception_reason(failed)}", "topic": ENGINE,
                          "partition": state.index, "payment_id": payment_id, "due": due}  # fmt: skip
                await self.send_deadletter(key=ENGINE.encode(), value=orjson.dumps(record))
        return decisions

    def _schedule(self, state: PartitionState, payment_id: str, shard: str) -> None:
        record = state.store.get(key_for(PaymentRecord, payment_id, shard))
        due = self.engine.due_at(record) if isinstance(record, PaymentRecord) else None
        state.timers.schedule(payment_id, due, shard)

    # -- outputs ----------------------------------------------------------------------------------
    async def _emit(self, state: PartitionState, decisions: list[Decision]) -> None:
        for decision in decisions:
            metrics.observe_decision(decision)
            outputs = [DECISIONS] if action_rank(decision.action) < self.alert_rank else [DECISIONS, ALERTS]
            value = decision.to_json()
            for topic in outputs:
                if decision.event_id in state.emitted[topic]:
                    state.emitted[topic].discard(decision.event_id)
                    continue  # already on the broker, from before a crash or a rebalance
                headers = [(EVENT_ID_HEADER, decision.event_id.encode())]
                future = await self.send(topic, key=decision.payment_id.encode(), value=value,
                                         partition=state.index, headers=headers)  # fmt: skip
                state.sent.append((topic, future))
        if self.faults.armed("emitted", state.checkpoints + 1) and len(state.awaiting) >= 20:
            await self.flush()  # the outputs are on the broker, the state that goes with them is not
            self.faults.crash("emitted")

    # -- checkpoints ------------------------------------------------------------------------------
    def _due_for_checkpoint(self, state: PartitionState) -> bool:
        if not state.awaiting and not state.dirty:
            return False
        elapsed = time.monotonic() - state.last_checkpoint
        return len(state.awaiting) >= self.checkpoint_events or elapsed >= self.checkpoint_seconds

    async def checkpoint(self, state: PartitionState) -> None:
        """Make everything processed so far durable; returns once it is."""
        await self._begin_checkpoint(state)
        await self._settle(state)

    async def _begin_checkpoint(self, state: PartitionState) -> None:
        """Start a checkpoint of everything processed so far. What it waits for (the broker's
        acknowledgements of the outputs, then of the state) runs beside the next events, which write to
        a fresh set of dirty entities; one checkpoint is in flight per partition, so they land in order."""
        await self._settle(state)
        started = time.monotonic()
        entities: dict[str, bytes] = {}
        hints = state.expiry_hints
        for key, entity in state.dirty.items():
            if entity is None:
                entities[key] = b""  # an empty value is a deletion (a swept payment)
            else:
                entities[key] = encode_entity(entity)
                hints[key] = expiry_hint(entity)
        state.inflight.update(state.dirty)  # still read by the next events until they are in the table
        state.dirty.clear()
        sent, state.sent = state.sent, []
        awaiting, state.awaiting = state.awaiting, []
        # whether every output the previous owner sent after its checkpoint was met again, as of these
        # events: only then may the read-back point pass them (later events must not decide it)
        met = {topic: not ids for topic, ids in state.emitted.items()}
        state.last_checkpoint = started
        state.checkpointing = asyncio.ensure_future(self._finish_checkpoint(state, entities, sent, awaiting, met))

    async def _finish_checkpoint(self, state: PartitionState, entities: dict[str, bytes], sent: list[tuple[str, Any]],
                                 awaiting: list[Pending], met: dict[str, bool]) -> None:  # fmt: skip
        """The checkpoint's writes, in the order that makes a crash harmless (see the module's docstring)."""
        started = time.monotonic()
        await self.flush()
        for topic, future in sent:
            metadata = future.result() if future.done() else None
            # keep reading back from where the previous owner's outputs start until all are met again
            if metadata is not None and met.get(topic, True):
                state.out_next[topic] = max(state.out_next.get(topic, 0), metadata.offset + 1)
        state.generation += 1
        table = self._table_writes()
        write_checkpoint(table, state.index, state.generation, entities, state.out_next)
        await self._send_table_writes(table, state)  # the header precedes the entities in the changelog
        await self._faults_after_header(state, entities, table)
        apply_entities(table, entities.items())
        state.inflight.clear()  # in the table now, where reads find them
        await self._send_table_writes(table, state)
        await self.flush()
        if isinstance(table, ChangelogBatch):
            table.persisted(state.index)
        for pending in awaiting:
            pending.covered()
        state.checkpoints += 1
        self._ack(state)
        metrics.observe_checkpoint(time.monotonic() - started)

    async def _settle(self, state: PartitionState) -> None:
        """Wait for the partition's checkpoint in flight, if any (raising what it raised)."""
        task, state.checkpointing = state.checkpointing, None
        if task is not None:
            await task

    def _table_writes(self) -> MutableMapping[str, bytes]:
        """Where a checkpoint writes: the table, through one producer send per record when given one."""
        return self.table if self.send_changelog is None else ChangelogBatch(self.table, self.send_changelog)

    @staticmethod
    async def _send_table_writes(table: MutableMapping[str, bytes], state: PartitionState) -> None:
        if isinstance(table, ChangelogBatch):
            await table.send(state.index)  # the changelog partition of the state is the partition's own

    async def _faults_after_header(self, state: PartitionState, entities: dict[str, bytes],
                                   table: MutableMapping[str, bytes]) -> None:  # fmt: skip
        """The crash points between a checkpoint's header and its entities (none in production)."""
        number = state.checkpoints + 1
        if self.faults.armed("state", number):
            apply_entities(table, list(entities.items())[: len(entities) // 2])
            await self._send_table_writes(table, state)
            await self.flush()
            self.faults.crash("state")
        elif self.faults.armed("redo", number):
            await self.flush()
            self.faults.crash("redo")

    def _ack(self, state: PartitionState) -> None:
        while state.unacked and state.unacked[0].done:
            state.unacked.popleft().event.ack()

    # -- a new owner ------------------------------------------------------------------------------
    async def _recover(self, partition: int) -> PartitionState:
        state = PartitionState(partition, self.table)
        last = recover(self.table, partition)
        state.generation, state.out_next = last.generation, last.out
        for topic in (DECISIONS, ALERTS):
            state.emitted[topic] = await self.read_back(topic, partition, state.out_next.get(topic, 0))
        for key, value in list(self.table.items()):
            shard = shard_of(key)
            if shard is None or shard.startswith(("~", "#")) or self.partition_of(shard) != partition:
                continue
            if value and key[len(shard) + 1 :].startswith(PaymentRecord.prefix + ":"):
                record_entity = decode_entity(value)
                if isinstance(record_entity, PaymentRecord) and record_entity.payment_id:
                    self._schedule(state, record_entity.payment_id, shard)
        return state
