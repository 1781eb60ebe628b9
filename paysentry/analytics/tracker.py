"""Per-payment state for analytics, bounded: a payment is followed from its first event until it is
settled, failed, returned or cancelled, then handed to `on_close` and forgotten.

What bounds it:
- a payment closes at its outcome (its id is remembered a while in a capped "closed" map, so a late
  `psp.returned` after a settlement is still attributed to its channel and company);
- a payment idle longer than `horizon_seconds` of event time closes with reason "horizon";
- past `max_tracked` open payments, the least recently seen closes with reason "capacity".
Every close is counted by reason (`closed`), so a report shows what it could not follow to the end.
A payment closed as settled may still come back: `ReturnWindow` remembers, for a few days, where a
report counted it, so a late `psp.returned` moves it from settled to returned.

Reconciliation timers run on event time like the engine's: a released payment with no outcome
`sla_seconds` after release is counted unsettled past its SLA (once); platform events for a payment the
ERP never announced within `orphan_grace_seconds` make an orphan.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Generic, TypeVar

from paysentry.analytics.sketch import MoneyTotals
from paysentry.contract import Event

DAY = 86_400.0
Counted = TypeVar("Counted")
TERMINAL = {
    "psp.settled": "settled",
    "psp.failed": "failed",
    "psp.returned": "returned",
    "payment.cancelled": "cancelled",
}
STAGE_EVENTS = {
    "payment.created": "created_at",
    "payment.approved": "approved_at",
    "payment.released": "released_at",
    "psp.submitted": "submitted_at",
    "psp.settled": "settled_at",
}


@dataclass(slots=True)
class Track:
    """What analytics needs to know about one payment while it is open."""

    payment_id: str
    last_seen: float
    company: str | None = None
    vendor: str | None = None
    channel: str | None = None
    currency: str | None = None
    country: str | None = None
    bank: str | None = None
    amount: Decimal | None = None
    released_amount: Decimal | None = None
    settled_amount: Decimal | None = None
    fee: Decimal = Decimal(0)
    fee_currency: str | None = None
    due_date: date | None = None
    approvers: int = 0
    created_at: float | None = None
    approved_at: float | None = None
    released_at: float | None = None
    submitted_at: float | None = None
    settled_at: float | None = None
    outcome_at: float | None = None
    released_local: datetime | None = None  # the release as stamped by the ERP (its offset is local time)
    settled_local: datetime | None = None
    erp_seen: bool = False
    platform_first_at: float | None = None
    outcome: str | None = None
    status_reason: str | None = None
    unsettled_past_sla: bool = False

    def absorb(self, event: Event, at: float) -> None:
        """Fill in what this event says about the payment (the first value seen for a dimension wins,
        except the ERP's, which overrides the platform's)."""
        self.last_seen = max(self.last_seen, at)
        erp = event.family == "payment"
        for name, value in (
            ("company", event.company_code),
            ("vendor", event.vendor_id),
            ("channel", event.channel),
            ("currency", event.currency),
            ("country", event.payee_country),
            ("bank", event.payee_bank),
        ):
            if value is not None and (erp or getattr(self, name) is None):
                setattr(self, name, value)
        if erp:
            self.erp_seen = True
            if event.amount is not None:
                self.amount = event.amount
            if event.due_date is not None:
                self.due_date = event.due_date
            if event.approved_by:
                self.approvers = max(self.approvers, len(event.approved_by))
        elif self.platform_first_at is None:
            self.platform_first_at = at
        attribute = STAGE_EVENTS.get(event.type)
        if attribute is not None and getattr(self, attribute) is None:
            setattr(self, attribute, at)
        if event.type == "payment.released" and self.released_amount is None:
            self.released_amount = event.amount
            self.released_local = event.event_time
        if event.fee is not None:
            self.fee += event.fee
            self.fee_currency = event.fee_currency or event.currency
        if event.type == "psp.settled":
            self.settled_amount = event.amount
            self.settled_local = event.event_time
        if event.type in TERMINAL:
            self.outcome = TERMINAL[event.type]
            self.outcome_at = at
            self.status_reason = event.status_reason


ClosedInfo = tuple[str | None, str | None, str | None, str | None, str | None]
"""(company, channel, currency, country, bank) of a closed payment."""


class PaymentTracker:
    def __init__(
        self,
        on_close: Callable[[Track, str], None],
        *,
        max_tracked: int = 200_000,
        horizon_seconds: float = 35 * DAY,
        sla_seconds: float = 72 * 3600.0,
        orphan_grace_seconds: float = 3600.0,
        closed_memory: int = 100_000,
        on_sla: Callable[[Track], None] | None = None,
        on_orphan: Callable[[Track], None] | None = None,
    ) -> None:
        self.on_close, self.on_sla, self.on_orphan = on_close, on_sla, on_orphan
        self.max_tracked, self.horizon_seconds = max_tracked, horizon_seconds
        self.sla_seconds, self.orphan_grace_seconds = sla_seconds, orphan_grace_seconds
        self.closed_memory = closed_memory
        self.open: OrderedDict[str, Track] = OrderedDict()  # least recently seen first
        self.closed: OrderedDict[str, ClosedInfo] = OrderedDict()
        self.closed_counts: Counter[str] = Counter()
        self.peak_open = 0
        self.now = float("-inf")
        self._timers: list[tuple[float, int, str, str]] = []  # (due, seq, kind, payment id)
        self._seq = 0
        self._next_sweep = float("-inf")

    # -- feeding -------------------------------------------------------------------------------------
    def observe(self, event: Event) -> Track | ClosedInfo | None:
        """Apply a payment.* or psp.* event. Returns the payment's open track (after the event), the
        closed payment's dimensions for a late event, or None for other events."""
        if event.family not in ("payment", "psp") or not event.payment_id:
            return None
        at = event.event_time.timestamp()
        self.advance(at)
        payment_id = event.payment_id
        if payment_id in self.closed and payment_id not in self.open:
            return self.closed[payment_id]
        track = self.open.get(payment_id)
        if track is None:
            track = Track(payment_id, at)
            self.open[payment_id] = track
            self.peak_open = max(self.peak_open, len(self.open))
        else:
            self.open.move_to_end(payment_id)
        was_platform_only = not track.erp_seen
        track.absorb(event, at)
        if event.type == "payment.released" and track.released_at == at:
            self._schedule(at + self.sla_seconds, "sla", payment_id)
        if event.family == "psp" and was_platform_only and not track.erp_seen and track.platform_first_at == at:
            self._schedule(at + self.orphan_grace_seconds, "orphan", payment_id)
        if track.outcome is not None and (track.erp_seen or event.type == "payment.cancelled"):
            self._close(track, track.outcome)
        elif len(self.open) > self.max_tracked:
            _, oldest = self.open.popitem(last=False)
            self._close(oldest, "capacity", already_removed=True)
        return track

    def advance(self, at: float) -> None:
        """Move the clock to event time `at`: fire due timers, and once a day close idle payments."""
        if at <= self.now:
            return
        self.now = at
        while self._timers and self._timers[0][0] <= at:
            _, _, kind, payment_id = heapq.heappop(self._timers)
            track = self.open.get(payment_id)
            if track is None:
                continue
            if kind == "sla" and track.outcome is None and not track.unsettled_past_sla:
                track.unsettled_past_sla = True
                if self.on_sla is not None:
                    self.on_sla(track)
            elif kind == "orphan" and not track.erp_seen:
                if self.on_orphan is not None:
                    self.on_orphan(track)
                self._close(track, "orphan")
        if at >= self._next_sweep:
            self._next_sweep = at + DAY
            idle = [t for t in self.open.values() if t.last_seen < at - self.horizon_seconds]
            for track in idle:
                self._close(track, "horizon")

    def finish(self, at: float | None = None) -> None:
        """End of input: fire what is due by `at` (default: the last event's time), close the rest."""
        if at is not None:
            self.advance(at)
        for track in list(self.open.values()):
            self._close(track, "end")

    # -- internals -----------------------------------------------------------------------------------
    def _schedule(self, due: float, kind: str, payment_id: str) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, kind, payment_id))

    def _close(self, track: Track, reason: str, *, already_removed: bool = False) -> None:
        if not already_removed:
            self.open.pop(track.payment_id, None)
        self.closed_counts[reason] += 1
        self.closed[track.payment_id] = (track.company, track.channel, track.currency, track.country, track.bank)
        if len(self.closed) > self.closed_memory:
            self.closed.popitem(last=False)
        self.on_close(track, reason)

    def stats(self) -> dict[str, object]:
        return {
            "open_at_end": len(self.open),
            "peak_open": self.peak_open,
            "max_tracked": self.max_tracked,
            "horizon_days": round(self.horizon_seconds / DAY, 3),
            "closed_by_reason": dict(sorted(self.closed_counts.items())),
        }


class ReturnWindow(Generic[Counted]):
    """Payments counted as settled, remembered for `window_seconds` of event time after the settlement,
    so that a return coming after the payment closed moves it from settled to returned where it was
    counted, once. Banks return a payment days after settling it (SEPA: a few business days), so the
    window is days, not the tracker's horizon. Entries leave as event time passes the window; past
    `capacity` the oldest is dropped and counted in `forgotten`.

    `counted` is whatever the caller needs to undo its count (a row key, the objects it added to, the
    settled amount): kept as is, one entry per payment."""

    def __init__(self, window_seconds: float = 10 * DAY, capacity: int = 200_000) -> None:
        self.window_seconds, self.capacity = window_seconds, capacity
        # payment id -> (settled at, what was counted; None once a return moved it), oldest first
        self._entries: OrderedDict[str, tuple[float, Counted | None]] = OrderedDict()
        self.forgotten = 0
        self.returns: Counter[str] = Counter()  # "moved", "repeated", "not_moved"

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, payment_id: str, settled_at: float, counted: Counted | None) -> None:
        """A payment counted as settled at `settled_at` (with None: counted as returned already, so the
        same return reported again under another id is recognised as repeated)."""
        self._entries[payment_id] = (settled_at, counted)
        self._entries.move_to_end(payment_id)
        self.expire(settled_at)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
            self.forgotten += 1

    def take_return(self, payment_id: str, at: float) -> tuple[str, Counted | None]:
        """For a return at event time `at`: ("moved", what was counted) when the payment settled at most
        `window_seconds` earlier and no return moved it yet (it is marked moved now); ("repeated", None)
        when a return moved it already; ("not_moved", None) otherwise. Each is counted in `returns`."""
        self.expire(at)
        entry = self._entries.get(payment_id)
        if entry is not None and entry[1] is None:
            status, counted = "repeated", None
        elif entry is None or at > entry[0] + self.window_seconds:  # (a return stamped early still counts)
            status, counted = "not_moved", None
        else:
            status, counted = "moved", entry[1]
            self._entries[payment_id] = (entry[0], None)
        self.returns[status] += 1
        return status, counted

    def expire(self, now: float) -> None:
        """Drop the entries whose window ended before `now` (oldest first: settlements come in about
        event-time order, and one out of order only stays a little longer)."""
        while self._entries:
            settled_at, _ = next(iter(self._entries.values()))
            if settled_at + self.window_seconds >= now:
                return
            self._entries.popitem(last=False)

    def stats(self) -> dict[str, object]:
        return {
            "window_days": round(self.window_seconds / DAY, 3),
            "remembered": len(self._entries),
            "capacity": self.capacity,
            "forgotten": self.forgotten,
            "late_returns": {name: self.returns.get(name, 0) for name in ("moved", "repeated", "not_moved")},
        }


def take_back(totals: MoneyTotals, currency: str | None, amount: Decimal | None) -> None:
    """Subtract an amount added to `totals` before (a currency left at zero is dropped)."""
    if amount is None:
        return
    key = currency or "unknown"
    left = totals.get(key) - amount
    if left:
        totals.sums[key] = left
    else:
        totals.sums.pop(key, None)
