"""What the decision stage (stream/decide.py) holds for one partition of `engine.events`: the event-time
buffer, the records not yet acknowledged, the entities written since the last checkpoint (and the
core's view of the table through them), the timers, the ingest groups' progress."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from paysentry.state import Entity, decode_entity
from paysentry.timers import TimerQueue
from stream.changelog import local_reader
from stream.topics import ALERTS, DECISIONS, Routed

MASTER_PREFIX = "#{partition}/"


@dataclass
class Pending:
    event: Any
    done: bool = False
    remaining: int = 1  # events of the record (a batch holds many) not yet covered by a checkpoint

    def covered(self) -> None:
        self.remaining -= 1
        self.done = self.remaining <= 0


_ABSENT = object()


class TableView:
    """The core's StateStore over the table: reads see unsaved writes (those since the last checkpoint,
    then those of the checkpoint in flight); writes wait for a checkpoint."""

    def __init__(self, table: Any, dirty: dict[str, Entity | None], prefix: str = "",
                 inflight: dict[str, Entity | None] | None = None) -> None:  # fmt: skip
        self.table, self.dirty, self.prefix = table, dirty, prefix
        self._read = local_reader(table)
        self.inflight: dict[str, Entity | None] = {} if inflight is None else inflight

    def get(self, key: str) -> Entity | None:
        key = self.prefix + key
        entity = self.dirty.get(key, _ABSENT)
        if entity is _ABSENT:
            entity = self.inflight.get(key, _ABSENT)
        if entity is not _ABSENT:
            return entity  # type: ignore[return-value]  # None: deleted by a sweep, not yet in the table
        raw = self._read(key)
        return decode_entity(raw) if raw else None

    def __setitem__(self, key: str, value: Entity) -> None:
        self.dirty[self.prefix + key] = value


@dataclass
class PartitionState:
    index: int
    table: Any
    dirty: dict[str, Entity | None] = field(default_factory=dict)  # None: to be deleted
    # the entities of the checkpoint in flight, until they are in the table (stream/decide.py)
    inflight: dict[str, Entity | None] = field(default_factory=dict)
    checkpointing: asyncio.Future[None] | None = None  # the checkpoint in flight
    # (order, tie-break, monotonic arrival, event, its record)
    buffer: list[tuple[tuple[int, int, int, int], int, float, Routed, Pending]] = field(default_factory=list)
    unacked: deque[Pending] = field(default_factory=deque)
    awaiting: list[Pending] = field(default_factory=list)  # processed, not yet checkpointed
    low: dict[int, int | None] = field(default_factory=dict)  # ingest group -> Tick.low
    high: dict[int, int] = field(default_factory=dict)
    # outputs the previous owner sent after its last checkpoint: not to be sent again
    emitted: dict[str, set[str]] = field(default_factory=lambda: {DECISIONS: set(), ALERTS: set()})
    out_next: dict[str, int] = field(default_factory=dict)
    sent: list[tuple[str, Any]] = field(default_factory=list)
    timers: TimerQueue = field(default_factory=TimerQueue)
    processed: int = 0
    read_to: int = -1  # highest offset read since this owner took the partition
    checkpoints: int = 0
    generation: int = 0
    last_checkpoint: float = field(default_factory=time.monotonic)
    next_sweep: int = 0  # event time of the next sweep of finished payments
    newest: float = float("-inf")  # newest event time received (micros): bounded ordering's watermark
    # entity key -> event time up to which it is surely not idle (paysentry.state.expiry_hint), so a sweep
    # decodes only the entities that may have gone idle since; a later write only moves the bound on
    expiry_hints: dict[str, int] = field(default_factory=dict)
    keys_known: bool = False  # every key of the partition has a hint (after the first sweep)

    def __post_init__(self) -> None:
        self.store = TableView(self.table, self.dirty, inflight=self.inflight)
        self.master = TableView(self.table, self.dirty, MASTER_PREFIX.format(partition=self.index), self.inflight)
