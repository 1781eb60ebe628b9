"""The payment-strategy report: where paying costs more than it needs to, with the payments behind each
finding and its estimated saving. One streaming pass over the events (bounded per-payment state, see
tracker.py), plus the decisions for the rules part.

- channel cost: per corridor (company, currency, payee country, amount band) the fees actually paid vs
  the cheapest eligible channel in the tariff book, and the saving scaled to a year;
- approval steps: how long each approval stage takes and how often a payment is stopped (cancelled)
  at it; a stage that practically never stops one is a candidate to simplify. With decisions: rules
  that never decided an action nor caught a confirmed problem (candidates to remove), and those that did;
- timing: released after the channel's cut-off and settled on a later day; paid before the due date
  (days early x amount x the company's cost of capital); missed early-payment discounts (when events
  carry `discount_due_date` and `discount_percent`); batching (several small payments to one vendor in
  one week: the fees of all but one);
- failure-prone channels and banks: failure and return rates and their cost (fees on failed payments,
  plus the fee of sending them again).
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from paysentry.analytics.decisions import POSITIVE_VERDICTS
from paysentry.analytics.sketch import CappedLabels, LogHistogram, MoneyTotals, ratio
from paysentry.analytics.sources import iter_decisions, iter_events
from paysentry.analytics.strategy_parts import ApprovalSteps, Batching, RuleUsefulness
from paysentry.analytics.tariffs import TariffBook
from paysentry.analytics.tracker import PaymentTracker, Track
from paysentry.contract import Event

SCHEMA = "paysentry.strategy/1"
EVIDENCE = 5  # payments shown per finding
CORRIDOR_CAP = 2000
VENDOR_CHANNEL_CAP = 200_000


@dataclass
class Evidence:
    """The payments with the most money at stake, at most EVIDENCE of them (a small heap)."""

    heap: list[tuple[Decimal, str]] = field(default_factory=list)

    def add(self, stake: Decimal, payment_id: str) -> None:
        item = (stake, payment_id)
        if len(self.heap) < EVIDENCE:
            heapq.heappush(self.heap, item)
        elif item > self.heap[0]:
            heapq.heapreplace(self.heap, item)

    def ids(self) -> list[str]:
        return [pid for _, pid in sorted(self.heap, reverse=True)]


@dataclass
class Corridor:
    payments: int = 0
    amount: Decimal = Decimal(0)
    actual_fees: Decimal = Decimal(0)
    cheapest_fees: Decimal = Decimal(0)
    saving: Decimal = Decimal(0)
    channels_used: Counter[str] = field(default_factory=Counter)
    cheapest: Counter[str] = field(default_factory=Counter)
    evidence: Evidence = field(default_factory=Evidence)


@dataclass
class TimingRow:
    payments: int = 0
    days: int = 0
    late: int = 0
    money: MoneyTotals = field(default_factory=MoneyTotals)
    evidence: Evidence = field(default_factory=Evidence)


@dataclass
class FailureStats:
    outcomes: int = 0
    failures: int = 0
    fees_on_failures: MoneyTotals = field(default_factory=MoneyTotals)
    resend_fees: MoneyTotals = field(default_factory=MoneyTotals)
    hours_to_failure: LogHistogram = field(default_factory=LogHistogram)
    evidence: Evidence = field(default_factory=Evidence)


def _extra_decimal(event: Event, name: str) -> Decimal | None:
    value = event.extra.get(name)
    try:
        result = Decimal(str(value)) if isinstance(value, str | int | float) and not isinstance(value, bool) else None
    except InvalidOperation:
        return None
    return result if result is not None and result.is_finite() and 0 <= result <= 100 else None


def _extra_date(event: Event, name: str) -> date | None:
    value = event.extra.get(name)
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


class StrategyBuilder:
    def __init__(self, book: TariffBook) -> None:
        self.book = book
        self.tracker = PaymentTracker(self._closed)
        self.corridors: dict[tuple[str, str, str, str], Corridor] = {}
        self.vendor_channels: dict[str, set[str]] = {}
        self.companies = CappedLabels(200)
        self.banks = CappedLabels(200)
        self.failures: dict[str, dict[str, FailureStats]] = {"channel": {}, "payee_bank": {}}
        self.approvals = ApprovalSteps()
        self.batching = Batching(book.small_payment_below)
        self.rules = RuleUsefulness()
        self.cutoff_late: defaultdict[tuple[str, str], TimingRow] = defaultdict(TimingRow)
        self.early: defaultdict[str, TimingRow] = defaultdict(TimingRow)
        self.discounts = TimingRow()
        self.unpriced = 0
        self.first: float | None = None
        self.last: float | None = None
        self._discount_terms: dict[str, tuple[date, Decimal]] = {}

    # -- input -------------------------------------------------------------------------------------
    def add_event(self, event: Event) -> None:
        at = event.event_time.timestamp()
        if event.family in ("payment", "psp"):  # the period paid in (a vendor snapshot may be years old)
            self.first = at if self.first is None else min(self.first, at)
            self.last = at if self.last is None else max(self.last, at)
        if event.type == "label.confirmed" and event.payment_id and event.verdict:
            self.rules.add_label(event.payment_id, event.verdict in POSITIVE_VERDICTS)
        if event.payment_id and event.family == "payment":
            until, percent = _extra_date(event, "discount_due_date"), _extra_decimal(event, "discount_percent")
            if until is not None and percent is not None and len(self._discount_terms) < VENDOR_CHANNEL_CAP:
                self._discount_terms[event.payment_id] = (until, percent)
        self.tracker.observe(event)

    def finish(self) -> None:
        self.tracker.finish()
        self.batching.flush_all()

    # -- per payment -------------------------------------------------------------------------------
    def _closed(self, track: Track, reason: str) -> None:
        self.approvals.add(track, self.companies(track.company))
        terms = self._discount_terms.pop(track.payment_id, None)
        if not track.erp_seen or track.released_at is None or track.currency is None:
            return
        amount = track.released_amount or track.amount or Decimal(0)
        company = self.companies(track.company)
        self._timing(track, company, amount, terms)
        if track.outcome in ("failed", "returned", "settled"):
            self._failure(track, amount)
        if track.outcome == "settled":
            if track.vendor and track.channel and len(self.vendor_channels) < VENDOR_CHANNEL_CAP:
                self.vendor_channels.setdefault(track.vendor, set()).add(track.channel)
            self._channel_cost(track, company, amount)
            self.batching.add(track, company, amount)

    def _company_currency(self, company: str | None) -> str | None:
        terms = self.book.companies.get(company or "")
        return terms.currency if terms else None

    def _channel_cost(self, track: Track, company: str, amount: Decimal) -> None:
        currency = track.currency or ""
        if track.fee_currency not in (None, currency):
            self.unpriced += 1
            return
        own = self._company_currency(track.company)
        enrolled = self.vendor_channels.get(track.vendor or "", set())
        options = [
            (t.fee(amount, currency, own), t.name)
            for t in self.book.channels
            if t.eligible(
                currency=currency,
                company=track.company,
                country=track.country,
                amount=amount,
                enrolled=t.channel in enrolled,
            )
        ]
        if not options:
            self.unpriced += 1
            return
        cheapest_fee, cheapest_name = min(options)
        key = (company, currency, track.country or "unknown", self.book.band(amount))
        corridor = self.corridors.get(key)
        if corridor is None:
            if len(self.corridors) >= CORRIDOR_CAP:
                key = (company, currency, "other", "other")
            corridor = self.corridors.setdefault(key, Corridor())
        saving = max(Decimal(0), track.fee - cheapest_fee)
        corridor.payments += 1
        corridor.amount += amount
        corridor.actual_fees += track.fee
        corridor.cheapest_fees += min(cheapest_fee, track.fee)
        corridor.saving += saving
        corridor.channels_used[track.channel or "unknown"] += 1
        corridor.cheapest[cheapest_name] += 1
        if saving > 0:
            corridor.evidence.add(saving, track.payment_id)

    def _local(self, moment: datetime, company: str | None) -> datetime:
        terms = self.book.companies.get(company or "")
        return moment.astimezone(ZoneInfo(terms.timezone)) if terms and terms.timezone else moment

    def _timing(self, track: Track, company: str, amount: Decimal, terms: tuple[date, Decimal] | None) -> None:
        if track.released_local is None:
            return
        released = self._local(track.released_local, track.company)
        currency = track.currency or "unknown"
        tariff = self.book.for_channel(track.channel, currency, track.company, track.country, amount)
        cutoff = tariff.cutoff_time() if tariff else None
        if cutoff is not None and track.settled_local is not None and released.time() > cutoff:
            settled = self._local(track.settled_local, track.company)
            if settled.date() > released.date():
                row = self.cutoff_late[(company, track.channel or "unknown")]
                row.payments += 1
                row.money.add(currency, amount)
                row.evidence.add(amount, track.payment_id)
        if track.due_date is not None:
            days = (track.due_date - released.date()).days
            row = self.early[company]
            if days > 0:
                coc = self.book.companies.get(track.company or "")
                rate = coc.cost_of_capital_percent if coc else Decimal(5)
                cost = (amount * days * rate / 100 / 365).quantize(Decimal("0.01"))
                row.payments += 1
                row.days += days
                row.money.add(currency, cost)
                row.evidence.add(cost, track.payment_id)
            elif days < 0:
                row.late += 1
        if terms is not None and released.date() > terms[0]:
            lost = (amount * terms[1] / 100).quantize(Decimal("0.01"))
            self.discounts.payments += 1
            self.discounts.money.add(currency, lost)
            self.discounts.evidence.add(lost, track.payment_id)

    def _failure(self, track: Track, amount: Decimal) -> None:
        failed = track.outcome in ("failed", "returned")
        currency = track.currency or "unknown"
        tariff = self.book.for_channel(track.channel, currency, track.company, track.country, amount)
        for dimension, value in (("channel", track.channel or "unknown"), ("payee_bank", self.banks(track.bank))):
            stats = self.failures[dimension].setdefault(value, FailureStats())
            stats.outcomes += 1
            if not failed:
                continue
            stats.failures += 1
            stats.fees_on_failures.add(track.fee_currency or currency, track.fee)
            if tariff is not None:
                stats.resend_fees.add(currency, tariff.fee(amount, currency, self._company_currency(track.company)))
            if track.outcome_at is not None and track.released_at is not None:
                stats.hours_to_failure.add((track.outcome_at - track.released_at) / 3600)
            stats.evidence.add(amount, track.payment_id)

    # -- output ------------------------------------------------------------------------------------
    def result(self) -> dict[str, Any]:
        self.finish()
        days = max(1.0, ((self.last or 0) - (self.first or 0)) / 86_400)
        year = Decimal(365) / Decimal(str(round(days, 3)))
        corridors, yearly = [], MoneyTotals()
        for (company, currency, country, band), c in sorted(self.corridors.items(), key=lambda kv: -kv[1].saving):
            yearly.add(currency, (c.saving * year).quantize(Decimal("0.01")))
            corridors.append(
                {
                    "company": company,
                    "currency": currency,
                    "payee_country": country,
                    "amount_band": band,
                    "payments": c.payments,
                    "amount": str(c.amount),
                    "fees_paid": str(c.actual_fees),
                    "cheapest_fees": str(c.cheapest_fees),
                    "saving": str(c.saving.quantize(Decimal("0.01"))),
                    "estimated_yearly_saving": str((c.saving * year).quantize(Decimal("0.01"))),
                    "channels_used": dict(c.channels_used.most_common()),
                    "cheapest_channel": dict(c.cheapest.most_common()),
                    "evidence": c.evidence.ids(),
                }
            )
        return {
            "schema": SCHEMA,
            "period_days": round(days, 2),
            "channel_cost": {
                "corridors": corridors,
                "estimated_yearly_saving_by_currency": yearly.as_json(),
                "payments_not_priced": self.unpriced,
            },
            "approval_steps": self.approvals.result(),
            "rules": self.rules.result(),
            "timing": self._timing_result(year),
            "failures": {dim: self._failure_rows(rows) for dim, rows in self.failures.items()},
        }

    def _timing_result(self, year: Decimal) -> dict[str, Any]:
        def yearly(totals: MoneyTotals) -> dict[str, str]:
            return {c: str((v * year).quantize(Decimal("0.01"))) for c, v in sorted(totals.sums.items())}

        late = [
            {
                "company": company,
                "channel": channel,
                "payments": r.payments,
                "amount": r.money.as_json(),
                "evidence": r.evidence.ids(),
            }
            for (company, channel), r in sorted(self.cutoff_late.items())
        ]
        early = [
            {
                "company": company,
                "payments": r.payments,
                "days_early": r.days,
                "paid_late": r.late,
                "cost_of_capital": r.money.as_json(),
                "estimated_yearly_cost": yearly(r.money),
                "evidence": r.evidence.ids(),
            }
            for company, r in sorted(self.early.items())
        ]
        missed = {
            "payments": self.discounts.payments,
            "lost": self.discounts.money.as_json(),
            "evidence": self.discounts.evidence.ids(),
        }
        return {
            "released_after_cutoff": late,
            "paid_early": early,
            "missed_discounts": missed,
            "batching": self.batching.result(),
        }

    @staticmethod
    def _failure_rows(rows: dict[str, FailureStats]) -> list[dict[str, Any]]:
        out = []
        for value, s in sorted(rows.items(), key=lambda kv: -kv[1].failures):
            if not s.failures:
                continue
            cost = MoneyTotals()
            for totals in (s.fees_on_failures, s.resend_fees):
                for currency, amount in totals.sums.items():
                    cost.add(currency, amount)
            out.append(
                {
                    "name": value,
                    "outcomes": s.outcomes,
                    "failures": s.failures,
                    "failure_rate": ratio(s.failures, s.outcomes),
                    "fees_on_failures": s.fees_on_failures.as_json(),
                    "resend_fees": s.resend_fees.as_json(),
                    "cost": cost.as_json(),
                    "hours_to_failure_p50": s.hours_to_failure.summary()["p50"],
                    "evidence": s.evidence.ids(),
                }
            )
        return out


def compute_strategy(
    events_path: Path, book: TariffBook, *, decisions_path: Path | None = None, labels_path: Path | None = None
) -> dict[str, Any]:
    """The strategy dict from files (events, optional labels, optional decisions)."""
    builder = StrategyBuilder(book)
    rejected = [0]
    for path in (events_path, labels_path):
        if path is not None:
            for event in iter_events(path, lambda _: rejected.__setitem__(0, rejected[0] + 1)):
                builder.add_event(event)
    if decisions_path is not None:
        for decision in iter_decisions(decisions_path, lambda number, reason: None):
            builder.rules.add(decision)
    result = builder.result()
    result["rejected_events"] = rejected[0]
    return result
