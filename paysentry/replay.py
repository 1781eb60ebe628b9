"""Replay: the core over a file of events, in event-time order, with timers driven by event time.

This is the embedded run (no Kafka, no Redis): `paysentry replay`, `paysentry demo`, rule backtests and
notebooks all go through `Replayer`, which owns an in-memory state store and the timer queue. A daily
sweep deletes the entities that already read as absent (idle past their horizon, see `paysentry.state`),
so the state stays bounded and the sweep's timing never changes a decision.

`ordered_events` reads a file of any length in event-time order in bounded memory (`paysentry.ordering`).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from paysentry.contract import Decision, Event, InvalidEvent, parse_event
from paysentry.core import Engine
from paysentry.event_time import epoch
from paysentry.ordering import IN_MEMORY_ITEMS, time_ordered
from paysentry.redaction import redact_raw
from paysentry.sharding import Route, route_week, shard_for
from paysentry.state import (
    Entity,
    PaymentRecord,
    expiry_hint,
    key_for,
    pack_entity,
    packed_expiry_hint,
    unpack_entity,
)
from paysentry.timers import TimerQueue
from paysentry.windows import DAY

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event that broke the contract, bound for the dead-letter sink."""

    reason: str
    line: int
    raw: str
    event_id: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps({"reason": self.reason, "line": self.line, "event_id": self.event_id, "raw": self.raw})


class MemoryStateStore(MutableMapping[str, Entity]):
    """The embedded run's state: entity key -> entity. The most recently used entities are kept as live
    objects; every entity that ever left the live set has a packed copy (`pack_entity`), refreshed in
    place when it leaves the live set again, so reads and writes of hot entities pack nothing and the
    packed table never churns."""

    def __init__(self, live: int = 4096) -> None:
        self._packed: dict[str, bytes] = {}  # stale for keys that are live
        self._live: OrderedDict[str, Entity] = OrderedDict()
        self._live_limit = live

    def __getitem__(self, key: str) -> Entity:
        entity = self._live.get(key)
        if entity is not None:
            self._live.move_to_end(key)
            return entity
        entity = unpack_entity(self._packed[key])
        self._keep_live(key, entity)
        return entity

    def get(self, key: str, default: Any = None) -> Any:
        entity = self._live.get(key)
        if entity is not None:
            self._live.move_to_end(key)
            return entity
        if key in self._packed:
            return self[key]
        return default

    def __setitem__(self, key: str, value: Entity) -> None:
        self._keep_live(key, value)

    def __delitem__(self, key: str) -> None:
        live = self._live.pop(key, None)
        packed = self._packed.pop(key, None)
        if live is None and packed is None:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in self._live or key in self._packed

    def __iter__(self) -> Iterator[str]:
        yield from [key for key in self._live if key not in self._packed]
        yield from list(self._packed)

    def __len__(self) -> int:
        return len(self._packed) + sum(1 for key in self._live if key not in self._packed)

    def _keep_live(self, key: str, entity: Entity) -> None:
        self._live[key] = entity
        self._live.move_to_end(key)
        if len(self._live) > self._live_limit:
            old_key, old = self._live.popitem(last=False)
            self._packed[old_key] = pack_entity(old)

    def maybe_idle(self, now: int) -> list[str]:
        """Keys of the entities that may be idle past their horizon at `now` (packed ones are not decoded)."""
        live = [key for key, entity in self._live.items() if expiry_hint(entity) < now]
        packed = [key for key, data in self._packed.items() if key not in self._live and packed_expiry_hint(data) < now]
        return live + packed


@dataclass
class Replayer:
    engine: Engine
    account_key: bytes
    store: MemoryStateStore = field(default_factory=MemoryStateStore)
    routes: dict[str, Route] = field(default_factory=dict)  # payment id -> its shard, swept once expired
    sweep_interval: int | None = DAY  # event time between sweeps (None: never sweep)
    # timers that raised, as (payment id, reason): the shell reports them, the run goes on
    timer_failures: list[tuple[str, str]] = field(default_factory=list)
    timers: TimerQueue = field(default_factory=TimerQueue)
    _next_sweep: int = 0
    _routes_swept: int = -1  # the week of the last sweep of routes

    def run(
        self,
        events: Iterable[Event],
        *,
        until: int | None = None,
        on_error: Callable[[Event, Exception], None] | None = None,
    ) -> Iterator[Decision]:
        """Decide each event after the timers due before it, then fire the timers due by `until`
        (default: the last event's time). An event the core raises on goes to `on_error`, when given,
        and the run goes on; the timers that fell due before it have fired all the same."""
        latest: int | None = None
        for event in events:
            latest = epoch(event.event_time)
            yield from self.advance(latest)
            try:
                decision = self._decide_at(event, latest)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(event, exc)
                continue
            if decision is not None:
                yield decision
        end = latest if until is None else until
        if end is not None:
            yield from self.advance(end)

    def feed(self, event: Event) -> list[Decision]:
        """Decide one event, after firing the timers that fell due before it."""
        decisions = self.advance(epoch(event.event_time))
        decision = self.decide(event)
        if decision is not None:
            decisions.append(decision)
        return decisions

    def decide(self, event: Event) -> Decision | None:
        """Decide one event (the timers due before it must have fired: `advance`)."""
        return self._decide_at(event, epoch(event.event_time))

    def _decide_at(self, event: Event, now: int) -> Decision | None:
        if event.family == "vendor":
            self.engine.apply_master(event, self.store)
            return None
        shard = shard_for(event, self.routes, now)
        decision = self.engine.process(event, self.store, shard=shard)
        if event.payment_id:
            self._schedule(event.payment_id, shard)
        if self.sweep_interval is not None and now >= self._next_sweep:
            self._sweep(now)
        return decision

    def advance(self, now: int) -> list[Decision]:
        """Fire the timers due by event time `now`."""
        decisions: list[Decision] = []
        for due, payment_id, shard in self.timers.pop_due(now):
            try:
                decisions.extend(self.engine.check_timers([payment_id], due, self.store, shard=shard))
            except Exception as exc:  # one payment's failure must not stop the run
                self.timer_failures.append((payment_id, f"{type(exc).__name__}: {exc}"))
                continue
            self._schedule(payment_id, shard)
        return decisions

    def _sweep(self, now: int) -> None:
        """Delete what already reads as absent at event time `now` (so it cannot change a decision)."""
        self._next_sweep = now + (self.sweep_interval or DAY)
        for key in self.store.maybe_idle(now):
            if self.engine.expired(self.store[key], now):
                del self.store[key]
        week = route_week(now)
        if week > self._routes_swept:  # routes expire by the week: one pass a week is enough
            self._routes_swept = week
            for payment_id in [p for p, route in self.routes.items() if route.expired_by(week)]:
                del self.routes[payment_id]

    def _schedule(self, payment_id: str, shard: str) -> None:
        record = self.store.get(key_for(PaymentRecord, payment_id, shard))
        due = self.engine.due_at(record) if isinstance(record, PaymentRecord) else None
        self.timers.schedule(payment_id, due, shard)


def parse_line(raw: bytes | str, account_key: bytes, now: float | None = None) -> Event:
    """`parse_event`, refusing event times implausibly far from `now` (epoch seconds) when given."""
    return parse_event(raw, account_key=account_key, now=now)


def read_events(
    lines: Iterable[bytes | str], account_key: bytes, *, now: float | None = None
) -> Iterator[Event | Rejected]:
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield parse_line(raw, account_key, now)
        except InvalidEvent as exc:
            yield Rejected(exc.reason, number, redact_raw(raw), exc.event_id)


def event_micros(event: Event) -> int:
    """The event's instant in microseconds since the epoch (exact for any year a datetime holds)."""
    return (event.event_time - _EPOCH) // _MICROSECOND


def ordered_events(
    lines: Iterable[bytes],
    account_key: bytes,
    on_rejected: Callable[[Rejected], None],
    *,
    now: float | None = None,
    limit: int = IN_MEMORY_ITEMS,
) -> Iterator[tuple[int, bytes, Event]]:
    """(line number, raw line, event) for the valid events, by event time, ties in input order, in
    memory bounded by `limit` lines whatever the input's length. Each refused line goes to
    `on_rejected` as it is read, so all of them are reported before the first event is yielded."""

    def keyed() -> Iterator[tuple[int, int, bytes]]:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                event = parse_line(raw, account_key, now)
            except InvalidEvent as exc:
                on_rejected(Rejected(exc.reason, number, redact_raw(raw), exc.event_id))
                continue
            yield event_micros(event), number, raw

    # Only the raw line is kept while sorting (a parsed event is ~10 times larger); parsing is repeatable.
    for _, number, raw in time_ordered(keyed(), limit=limit):
        yield number, raw, parse_line(raw, account_key, now)


def event_order(items: list[Event | Rejected]) -> list[Event | Rejected]:
    """Valid events in event-time order (stable for ties); rejected lines keep their place at the front."""
    rejected = [item for item in items if isinstance(item, Rejected)]
    events = [item for item in items if isinstance(item, Event)]
    events.sort(key=lambda e: e.event_time)
    return [*rejected, *events]


def load_lines(path: Path) -> list[bytes]:
    with path.open("rb") as handle:
        return handle.readlines()


@dataclass
class DecisionCounts:
    """Decisions counted as they are written, by action and by rule, instead of kept."""

    total: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)

    def add(self, decision: Decision) -> None:
        self.total += 1
        self.by_action[decision.action] += 1
        for hit in decision.rule_hits:
            self.by_rule[hit.rule_id] += 1

    def top_rules(self) -> dict[str, int]:
        return dict(sorted(self.by_rule.items(), key=lambda kv: (-kv[1], kv[0])))


def summary_counts(decisions: Iterable[Decision]) -> dict[str, Any]:
    counts = DecisionCounts()
    for decision in decisions:
        counts.add(decision)
    return {"by_action": dict(counts.by_action), "by_rule": counts.top_rules()}
