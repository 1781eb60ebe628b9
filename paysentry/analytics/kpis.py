"""Payment KPIs over a period, computed in one streaming pass over events (and, optionally, decisions).

`KpiBuilder` is fed contract events (`add_event`), refused lines (`add_rejected`) and decisions
(`add_decision`, see paysentry/analytics/decisions.py) in any number, holding only counts, sums,
quantile sketches and the bounded per-payment state of `PaymentTracker`; `result()` gives the KPI dict
(schema in docs/kpis.md). The period is [start, end) of event time: an event counts when its time is in
it; a processing time counts when the stage's *end* is in it; a payment's earlier events (before the
period) still tell when it was created.

Definitions (the numbers people quote):
- payments: `payment.released` events (the first per payment), amounts from them, by currency;
- failure rate: (psp.failed + psp.returned) / (psp.settled + psp.failed + psp.returned), where a
  payment returned within `return_window_days` of a settlement counted in the period is taken out of
  the settled figures (count and amount): it counts once, as returned;
- fee share: fees / settled amount, per channel and currency (fees in another currency are not mixed in);
- reconciliation: settled with the released amount (matched) or another amount (amount_mismatch),
  released and without an outcome `sla_hours` later (unsettled_past_sla), platform payments the ERP
  never announced within an hour (orphan_platform_payments; orphan_settlements is the settled part).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from paysentry.analytics.decisions import DecisionStats
from paysentry.analytics.period import PeriodBuilder
from paysentry.analytics.sketch import CappedLabels, LogHistogram, MoneyTotals, ratio, shorten_reason
from paysentry.analytics.tracker import ClosedInfo, ReturnWindow, Track, take_back
from paysentry.contract import Decision, Event

SCHEMA = "paysentry.kpis/1"
DIMENSIONS = ("company", "channel", "currency", "payee_country", "payee_bank")
STAGES = (
    ("created_to_approved", "created_at", "approved_at"),
    ("approved_to_released", "approved_at", "released_at"),
    ("released_to_submitted", "released_at", "submitted_at"),
    ("submitted_to_settled", "submitted_at", "settled_at"),
    ("created_to_settled", "created_at", "settled_at"),
)
LABEL_CAP = 200  # distinct values per dimension before "other"
REASON_CAP = 100
DUPLICATE_MEMORY = 200_000  # event keys remembered to recognise a redelivery


@dataclass(slots=True)
class DimensionStats:
    payments: int = 0
    amount: MoneyTotals = field(default_factory=MoneyTotals)
    settled: int = 0
    failed: int = 0
    returned: int = 0
    fees: MoneyTotals = field(default_factory=MoneyTotals)
    settled_amount: MoneyTotals = field(default_factory=MoneyTotals)

    def as_json(self) -> dict[str, Any]:
        outcomes = self.settled + self.failed + self.returned
        return {
            "payments": self.payments,
            "amount_by_currency": self.amount.as_json(),
            "settled": self.settled,
            "failed": self.failed,
            "returned": self.returned,
            "failure_rate": ratio(self.failed + self.returned, outcomes),
            "fees_by_currency": self.fees.as_json(),
            "fee_share_by_currency": {
                currency: ratio(fee, self.settled_amount.get(currency))
                for currency, fee in sorted(self.fees.sums.items())
            },
        }


def _dims_of(event: Event, info: Track | ClosedInfo | None) -> dict[str, str | None]:
    if isinstance(info, Track):
        known: tuple[str | None, ...] = (info.company, info.channel, info.currency, info.country, info.bank)
    elif info is not None:
        known = info
    else:
        known = (None,) * 5
    given = (event.company_code, event.channel, event.currency, event.payee_country, event.payee_bank)
    return {name: k if k is not None else g for name, k, g in zip(DIMENSIONS, known, given, strict=True)}


class KpiBuilder(PeriodBuilder):
    def __init__(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        sla_hours: float = 72.0,
        max_tracked: int = 200_000,
        horizon_days: float = 35.0,
        return_window_days: float = 10.0,
    ) -> None:
        super().__init__(start, end, sla_hours=sla_hours, max_tracked=max_tracked, horizon_days=horizon_days)
        self.labels = {name: CappedLabels(LABEL_CAP) for name in DIMENSIONS}
        self.reasons = CappedLabels(REASON_CAP)
        self.by_dimension: dict[str, dict[str, DimensionStats]] = {name: {} for name in DIMENSIONS}
        self.totals = DimensionStats()
        self.events_read = 0
        self.events_in_period = 0
        self.by_type: Counter[str] = Counter()
        self.payments: Counter[str] = Counter()
        self.stages = {name: LogHistogram() for name, _, _ in STAGES}
        self.stages_by_channel: dict[str, dict[str, LogHistogram]] = {}
        self.out_of_order = 0
        self.failure_reasons: Counter[str] = Counter()
        self.reconciliation: Counter[str] = Counter()
        self.rejected_by_reason: Counter[str] = Counter()
        self.duplicates = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.first_event: datetime | None = None
        self.last_event: datetime | None = None
        self.decisions = DecisionStats(self._in_period)
        self.labelled: dict[str, str] = {}
        # settled payments -> (the rows their settlement was counted in, currency, settled amount)
        self.settled = ReturnWindow[tuple[tuple[DimensionStats, ...], str | None, Decimal | None]](
            return_window_days * 86_400, DUPLICATE_MEMORY
        )

    # -- input -------------------------------------------------------------------------------------
    def add_rejected(self, reason: str) -> None:
        self.rejected_by_reason[self.reasons(shorten_reason(reason.split(";")[0]))] += 1

    def add_event(self, event: Event) -> None:
        self.events_read += 1
        at = event.event_time.timestamp()
        if event.type == "label.confirmed" and event.payment_id and event.verdict:
            self.decisions.add_label(event.payment_id, event.verdict)  # a verdict counts whenever it came
        if at >= self._end_ts:
            return  # past the period: it cannot change a KPI of the period
        key = f"{event.type}|{event.event_id}"
        if key in self._seen:
            self.duplicates += self._in_period(at)
            return
        self._seen[key] = None
        if len(self._seen) > DUPLICATE_MEMORY:
            self._seen.popitem(last=False)
        info = self.tracker.observe(event)
        if not self._in_period(at):
            return
        self.events_in_period += 1
        self.by_type[event.type] += 1
        if event.family in ("payment", "psp"):  # (a vendor master snapshot may be years old)
            moment = event.event_time
            self.first_event = moment if self.first_event is None else min(self.first_event, moment)
            self.last_event = moment if self.last_event is None else max(self.last_event, moment)
            self._count(event, info, at)

    def add_decision(self, decision: Decision) -> None:
        self.decisions.add(decision)

    def _count(self, event: Event, info: Track | ClosedInfo | None, at: float) -> None:
        dims = _dims_of(event, info)
        targets = [self.totals] + [self._stats(name, dims[name]) for name in DIMENSIONS]
        kind = event.type.split(".", 1)[1]
        if event.type == "payment.released":
            if not isinstance(info, Track) or info.released_at != at:
                return  # a second release of the same payment is not a second payment
            for stats in targets:
                stats.payments += 1
                stats.amount.add(event.currency, event.amount)
        if event.type in ("payment.created", "payment.cancelled", "payment.released"):
            self.payments[kind] += 1
        late = event.type == "psp.returned" and isinstance(info, tuple)  # a return of a closed payment
        if late and event.payment_id and not self._late_return(event.payment_id, at):
            return  # a return already took this payment out of the settled figures
        if event.type == "psp.settled" and event.payment_id:
            self.settled.remember(event.payment_id, at, (tuple(targets), event.currency, event.amount))
        elif event.type == "psp.returned" and event.payment_id and not late:
            self.settled.remember(event.payment_id, at, None)  # returned before it closed: counted now
        if event.type in ("psp.settled", "psp.failed", "psp.returned"):
            self.payments[kind] += 1
            for stats in targets:
                setattr(stats, kind, getattr(stats, kind) + 1)
                if event.type == "psp.settled":
                    stats.settled_amount.add(event.currency, event.amount)
            if event.type != "psp.settled":
                self.failure_reasons[self.reasons(shorten_reason(event.status_reason))] += 1
        if event.fee:
            for stats in targets:
                stats.fees.add(event.fee_currency or event.currency, event.fee)

    def _late_return(self, payment_id: str, at: float) -> bool:
        """A return for a payment closed before: a settlement counted within the return window is taken
        out of the settled figures (the return then counts as usual). False for a repeated return."""
        status, counted = self.settled.take_return(payment_id, at)
        if counted is not None:
            rows, currency, amount = counted
            self.payments["settled"] -= 1
            for stats in rows:
                stats.settled -= 1
                take_back(stats.settled_amount, currency, amount)
        return status != "repeated"

    def _stats(self, dimension: str, value: str | None) -> DimensionStats:
        label = self.labels[dimension](value)
        table = self.by_dimension[dimension]
        stats = table.get(label)
        if stats is None:
            stats = table[label] = DimensionStats()
        return stats

    # -- per-payment outcomes ----------------------------------------------------------------------
    def _closed(self, track: Track, reason: str) -> None:
        channel = self.labels["channel"](track.channel)
        for name, begin_attr, end_attr in STAGES:
            begin, end = getattr(track, begin_attr), getattr(track, end_attr)
            if begin is None or end is None or not self._in_period(end):
                continue
            if end < begin:
                self.out_of_order += 1
                continue
            self.stages[name].add(end - begin)
            by_channel = self.stages_by_channel.setdefault(channel, {n: LogHistogram() for n, _, _ in STAGES})
            by_channel[name].add(end - begin)
        settled = track.outcome == "settled" and track.erp_seen and track.settled_at is not None
        if settled and self._in_period(track.settled_at or 0) and track.released_amount is not None:
            same = track.settled_amount == track.released_amount
            self.reconciliation["matched" if same else "amount_mismatch"] += 1
        if reason in ("end", "horizon", "capacity") and track.released_at is not None and track.outcome is None:
            self.reconciliation["open_without_outcome"] += 1

    def _sla(self, track: Track) -> None:
        if track.released_at is not None and self._in_period(track.released_at + self.sla_hours * 3600):
            self.reconciliation["unsettled_past_sla"] += 1

    def _orphan(self, track: Track) -> None:
        if track.platform_first_at is not None and self._in_period(track.platform_first_at):
            self.reconciliation["orphan_platform_payments"] += 1
            if track.settled_at is not None:
                self.reconciliation["orphan_settlements"] += 1

    # -- output ------------------------------------------------------------------------------------
    def result(self) -> dict[str, Any]:
        self.finish()
        failure_by_channel = {}
        for channel, stats in sorted(self.by_dimension["channel"].items()):
            outcomes = stats.settled + stats.failed + stats.returned
            failure_by_channel[channel] = {
                "outcomes": outcomes,
                "failed": stats.failed,
                "returned": stats.returned,
                "rate": ratio(stats.failed + stats.returned, outcomes),
            }
        totals = self.totals
        outcomes = totals.settled + totals.failed + totals.returned
        fees_by_channel = {}
        for channel, stats in sorted(self.by_dimension["channel"].items()):
            fees_by_channel[channel] = {
                "fees_by_currency": stats.fees.as_json(),
                "settled_amount_by_currency": stats.settled_amount.as_json(),
                "share_of_amount": {
                    c: ratio(f, stats.settled_amount.get(c)) for c, f in sorted(stats.fees.sums.items())
                },
            }
        reconciliation = {
            name: self.reconciliation.get(name, 0)
            for name in (
                "matched",
                "amount_mismatch",
                "unsettled_past_sla",
                "orphan_settlements",
                "orphan_platform_payments",
                "open_without_outcome",
            )
        }
        reconciliation["sla_hours"] = self.sla_hours  # type: ignore[assignment]
        return {
            "schema": SCHEMA,
            "period": {
                **self.period_json(),
                "first_event": self.first_event.isoformat() if self.first_event else None,
                "last_event": self.last_event.isoformat() if self.last_event else None,
            },
            "events": {
                "read": self.events_read,
                "in_period": self.events_in_period,
                "by_type": dict(sorted(self.by_type.items())),
            },
            "payments": {
                name: self.payments.get(name, 0)
                for name in ("created", "released", "cancelled", "settled", "failed", "returned")
            },
            "amount_by_currency": totals.amount.as_json(),
            "by": {
                name: {value: s.as_json() for value, s in sorted(table.items())}
                for name, table in self.by_dimension.items()
            },
            "processing_seconds": {name: sketch.summary() for name, sketch in self.stages.items()},
            "processing_seconds_by_channel": {
                channel: {name: sketch.summary() for name, sketch in stages.items()}
                for channel, stages in sorted(self.stages_by_channel.items())
            },
            "failure_rate": {
                "overall": {
                    "outcomes": outcomes,
                    "failed": totals.failed,
                    "returned": totals.returned,
                    "rate": ratio(totals.failed + totals.returned, outcomes),
                },
                "by_channel": failure_by_channel,
                "reasons": dict(self.failure_reasons.most_common()),
            },
            "fees_by_channel": fees_by_channel,
            "fees_by_currency": totals.fees.as_json(),
            "reconciliation": reconciliation,
            "exceptions": {
                "rejected": sum(self.rejected_by_reason.values()),
                "rejected_by_reason": dict(self.rejected_by_reason.most_common()),
                "duplicates": self.duplicates,
                "out_of_order_stages": self.out_of_order,
            },
            "decisions": self.decisions.result(),
            "tracking": {
                **self.tracker.stats(),
                "return_window": self.settled.stats(),
                "labels_over_cap": {n: c.overflowed for n, c in self.labels.items()},
            },
        }


def money_total(values: dict[str, str]) -> Decimal:
    """Sum of a JSON money map (for tests and charts)."""
    return sum((Decimal(v) for v in values.values()), Decimal(0))
