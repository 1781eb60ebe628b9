"""Replay: the core over a file of events, in event-time order, with timers driven by event time.

This is the embedded run (no Kafka, no Redis): `paysentry replay`, `paysentry demo`, rule backtests and
notebooks all go through `Replayer`, which owns an in-memory state store and the timer heap.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from models.features import epoch
from paysentry.contract import Decision, Event, InvalidEvent, mask_account, parse_event
from paysentry.core import Engine
from paysentry.routing import UNKNOWN_SHARD, shard_for
from paysentry.state import Entity, PaymentRecord, key_for
from paysentry.windows import DAY


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event that broke the contract, bound for the dead-letter sink."""

    reason: str
    line: int
    raw: str
    event_id: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps({"reason": self.reason, "line": self.line, "event_id": self.event_id, "raw": self.raw})


_CLEAR_ACCOUNT = re.compile(r'("payee_account"\s*:\s*)("(?:[^"\\]|\\.)*"?|-?\d[^,}\]\s]*)')


def redact_raw(raw: bytes | str) -> str:
    """The dead-letter copy of a bad event, with any clear payee account masked, whatever its shape:
    a well-formed event, one nested in a list, a truncated one, an account given as a number."""
    text = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw).rstrip("\r\n")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("payee_account"), str):
        data["payee_account"] = mask_account(data["payee_account"])
        text = orjson.dumps(data).decode()
    masked = _CLEAR_ACCOUNT.sub(lambda m: m.group(1) + orjson.dumps(mask_account(m.group(2).strip('"'))).decode(), text)
    return masked[:2048]


class MemoryStore(dict[str, Entity]):
    """The embedded run's state: entity key -> entity object, no serialisation."""


@dataclass
class Replayer:
    engine: Engine
    account_key: bytes
    store: MemoryStore = field(default_factory=MemoryStore)
    routes: dict[str, str] = field(default_factory=dict)  # payment id -> shard
    _timers: list[tuple[int, str]] = field(default_factory=list)
    _scheduled: dict[str, int] = field(default_factory=dict)
    _next_sweep: int = 0

    def feed(self, event: Event) -> list[Decision]:
        """Decide one event, after firing the timers that fell due before it."""
        now = epoch(event.event_time)
        decisions = self.advance(now)
        if event.family == "vendor":
            self.engine.apply_master(event, self.store)
            return decisions
        shard = shard_for(event, self.routes)
        decision = self.engine.process(event, self.store, shard=shard)
        if decision is not None:
            decisions.append(decision)
        if event.payment_id:
            self._schedule(event.payment_id)
        if now >= self._next_sweep:
            self._sweep(now)
        return decisions

    def advance(self, now: int) -> list[Decision]:
        decisions: list[Decision] = []
        while self._timers and self._timers[0][0] <= now:
            due, payment_id = heapq.heappop(self._timers)
            if self._scheduled.get(payment_id) != due:
                continue  # superseded by a later schedule
            del self._scheduled[payment_id]
            shard = self.routes.get(payment_id, UNKNOWN_SHARD)
            decisions.extend(self.engine.check_timers([payment_id], due, self.store, shard=shard))
            self._schedule(payment_id)
        return decisions

    def _sweep(self, now: int) -> None:
        """Forget finished payments older than the longest window (state stays bounded)."""
        self._next_sweep = now + DAY
        for payment_id, shard in list(self.routes.items()):
            key = key_for(PaymentRecord, payment_id, shard)
            record = self.store.get(key)
            if isinstance(record, PaymentRecord) and self.engine.expired(record, now):
                del self.store[key]
                del self.routes[payment_id]

    def _schedule(self, payment_id: str) -> None:
        record = self.store.get(key_for(PaymentRecord, payment_id, self.routes.get(payment_id, UNKNOWN_SHARD)))
        due = self.engine.due_at(record) if isinstance(record, PaymentRecord) else None
        if due is None:
            self._scheduled.pop(payment_id, None)
        elif self._scheduled.get(payment_id) != due:
            self._scheduled[payment_id] = due
            heapq.heappush(self._timers, (due, payment_id))


def read_events(lines: Iterable[bytes | str], account_key: bytes) -> Iterator[Event | Rejected]:
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield parse_event(raw, account_key=account_key)
        except InvalidEvent as exc:
            yield Rejected(exc.reason, number, redact_raw(raw), exc.event_id)


def event_order(items: list[Event | Rejected]) -> list[Event | Rejected]:
    """Valid events in event-time order (stable for ties); rejected lines keep their place at the front."""
    rejected = [item for item in items if isinstance(item, Rejected)]
    events = [item for item in items if isinstance(item, Event)]
    events.sort(key=lambda e: e.event_time)
    return [*rejected, *events]


def load_lines(path: Path) -> list[bytes]:
    with path.open("rb") as handle:
        return handle.readlines()


def summary_counts(decisions: Iterable[Decision]) -> dict[str, Any]:
    by_action: dict[str, int] = {}
    by_rule: dict[str, int] = {}
    for decision in decisions:
        by_action[decision.action] = by_action.get(decision.action, 0) + 1
        for hit in decision.rule_hits:
            by_rule[hit.rule_id] = by_rule.get(hit.rule_id, 0) + 1
    return {"by_action": by_action, "by_rule": dict(sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0])))}
