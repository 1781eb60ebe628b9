"""Periodic data validation: does what the ERP released match what the payment platform did with it?

`ReconcileBuilder` is fed contract events (`add_event`) and refused lines (`add_rejected`) in one
streaming pass and gives (`result()`) a count and a worklist per class of finding, plus the completeness
of each company's days. Classes (`CLASSES`, named in findings.py):

- released_not_submitted: released by the ERP, nothing from the platform `sla_hours` later;
- unsettled_past_sla: submitted to the platform, no outcome (settled, failed, returned) `sla_hours` after
  the release;
- amount_mismatch: settled for another amount than the ERP released;
- orphan_settlement: platform events for a payment the ERP never announced within an hour;
- duplicate_payment: a second payment released for the same company, vendor, invoice (compared as the
  core compares them: paysentry/invoices.py) and amount, while the first was not failed, returned or
  cancelled (those are paid again with the same invoice);
- redelivered_event: an event id seen again with the same type;
- missing_fields: a refused line whose reason is a required field that is absent;
- invalid_event: any other line the contract parser refused (its reason).

Completeness is by release day (UTC) and company: of the payments released that day, how many were
submitted, settled, failed, returned or cancelled by the end of the input, with released and settled
amounts per currency. A payment returned within `return_window_days` of its settlement counts as
returned (a later return leaves it settled: `tracking.return_window`). A refused line has no trusted
time: it counts in the run whatever the period.

Memory is bounded like the KPIs' (tracker.py): a payment's state is dropped when it reaches an outcome,
after `horizon_days` idle, or past `max_tracked` open payments (each counted by reason in `tracking`);
duplicate and redelivery detection remember the last `memory` keys; each worklist keeps `max_listed`
items (the count is always complete). Worklists name payments by id and show only masked accounts.
"""

from __future__ import annotations

import os
from collections import Counter, OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from paysentry.analytics.findings import CLASSES, ClassName, DayRow, Finding
from paysentry.analytics.period import PeriodBuilder
from paysentry.analytics.sketch import shorten_reason
from paysentry.analytics.sources import bounded_lines, refuse_overlong
from paysentry.analytics.tracker import DAY, ReturnWindow, Track, take_back
from paysentry.contract import Decision, Event, action_rank
from paysentry.decode import MAX_RECORD_BYTES
from paysentry.invoices import normalise_invoice
from paysentry.replay import Rejected, ordered_events

SCHEMA = "paysentry.reconcile/1"
MAX_LISTED = 1000
MEMORY = 200_000
MAX_COMPANY_DAYS = 20_000  # (company, day) rows; later ones go to company "other"
_REQUIRED_MARKS = ("field required", " required for a ")
_UNDOING = frozenset({"psp.failed", "psp.returned", "payment.cancelled"})
SettledIn = tuple[tuple[str, str], str | None, Decimal | None]  # (company, day) row, currency, settled amount


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class ReconcileBuilder(PeriodBuilder):
    def __init__(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        sla_hours: float = 72.0,
        max_tracked: int = 200_000,
        horizon_days: float = 35.0,
        memory: int = MEMORY,
        max_listed: int = MAX_LISTED,
        return_window_days: float = 10.0,
    ) -> None:
        super().__init__(start, end, sla_hours=sla_hours, max_tracked=max_tracked, horizon_days=horizon_days)
        self.memory = memory
        self.findings: dict[ClassName, Finding] = {name: Finding(max_listed) for name in CLASSES}
        self.days: dict[tuple[str, str], DayRow] = {}
        self.events_read = 0
        self.events_in_period = 0
        self.lines_refused = 0
        self.reasons: Counter[str] = Counter()
        self._seen_events: OrderedDict[str, None] = OrderedDict()
        self._invoices: OrderedDict[tuple[str, ...], str] = OrderedDict()  # payment key -> first payment id
        self._undone: OrderedDict[str, None] = OrderedDict()  # payments failed, returned or cancelled
        self._masked: dict[str, str] = {}  # open payment -> masked payee account (dropped when it closes)
        # settled payments -> (their row, currency, settled amount), for a return after the settlement
        self.settled = ReturnWindow[SettledIn](return_window_days * DAY, memory)
        self.forgotten = Counter[str]()  # keys dropped from the capped memories

    # -- input -------------------------------------------------------------------------------------
    def add_rejected(self, rejected: Rejected) -> None:
        """A line the contract parser refused: missing_fields or invalid_event, with its reason."""
        self.lines_refused += 1
        reason = shorten_reason(rejected.reason.split(";")[0])  # the first problem names the record's kind
        kind: ClassName = "missing_fields" if any(m in reason.lower() for m in _REQUIRED_MARKS) else "invalid_event"
        self.reasons[reason] += 1
        self.findings[kind].add(None, {"line": rejected.line, "event_id": rejected.event_id, "reason": reason})

    def add_event(self, event: Event) -> None:
        self.events_read += 1
        at = event.event_time.timestamp()
        if at >= self._end_ts:
            return  # past the period: what is open then stays open in this report
        key = f"{event.type}|{event.event_id}"
        if key in self._seen_events:
            if self._in_period(at):
                self.findings["redelivered_event"].add(
                    event.company_code,
                    {"event_id": event.event_id, "type": event.type, "payment_id": event.payment_id,
                     "company": event.company_code, "day": _day(at)},
                )  # fmt: skip
            return
        self._remember(self._seen_events, key, None, "events")
        if self._in_period(at):
            self.events_in_period += 1
        if event.type in _UNDOING and event.payment_id:
            self._remember(self._undone, event.payment_id, None, "undone payments")
        info = self.tracker.observe(event)
        if not isinstance(info, Track):
            if event.type == "psp.returned" and info is not None and event.payment_id:
                self._late_return(event.payment_id, at)
            return
        if event.payee_account_masked and info.payment_id not in self._masked:
            self._masked[info.payment_id] = event.payee_account_masked
        if event.type == "payment.released" and info.released_at == at:
            self._check_duplicate(event, info, at)

    def _remember(self, memory: OrderedDict[Any, Any], key: Any, value: Any, what: str) -> None:
        memory[key] = value
        if len(memory) > self.memory:
            memory.popitem(last=False)
            self.forgotten[what] += 1

    def _check_duplicate(self, event: Event, track: Track, at: float) -> None:
        if not event.invoice_id or event.amount is None:
            return  # without an invoice number a second payment of the same amount may well be due
        invoice = normalise_invoice(event.invoice_id)
        key = (track.company or "", track.vendor or "", invoice, event.currency or "", str(event.amount))
        first = self._invoices.get(key)
        if first is None or first in self._undone:
            # a payment failed, returned or cancelled is paid again with the same invoice: not a duplicate
            self._remember(self._invoices, key, track.payment_id, "invoices")
            return
        if first != track.payment_id and self._in_period(at):
            self.findings["duplicate_payment"].add(
                track.company,
                {**self._item(track), "invoice_id": event.invoice_id, "first_payment_id": first, "day": _day(at)},
            )

    # -- per-payment outcomes ----------------------------------------------------------------------
    def _item(self, track: Track) -> dict[str, Any]:
        return {
            "payment_id": track.payment_id,
            "company": track.company,
            "vendor": track.vendor,
            "channel": track.channel,
            "account": self._masked.get(track.payment_id),
            "currency": track.currency,
            "amount": _money(track.released_amount if track.released_amount is not None else track.amount),
            "released_at": _day(track.released_at) if track.released_at is not None else None,
        }

    def _sla(self, track: Track) -> None:
        due = (track.released_at or 0) + self.sla_hours * 3600
        if track.released_at is None or not self._in_period(due):
            return
        submitted = track.submitted_at is not None or track.platform_first_at is not None
        kind: ClassName = "unsettled_past_sla" if submitted else "released_not_submitted"
        self.findings[kind].add(track.company, {**self._item(track), "day": _day(due)})

    def _orphan(self, track: Track) -> None:
        if not self._in_period(track.platform_first_at):
            return
        item = {**self._item(track), "day": _day(track.platform_first_at or 0), "platform_state": track.outcome
                or ("submitted" if track.submitted_at is not None else "seen")}  # fmt: skip
        item["settled_amount"] = _money(track.settled_amount)
        self.findings["orphan_settlement"].add(track.company, item)

    def _closed(self, track: Track, reason: str) -> None:
        settled = track.outcome == "settled" and track.erp_seen and track.released_amount is not None
        if settled and self._in_period(track.settled_at) and track.settled_amount != track.released_amount:
            released, paid = track.released_amount or Decimal(0), track.settled_amount or Decimal(0)
            self.findings["amount_mismatch"].add(
                track.company,
                {**self._item(track), "settled_amount": _money(track.settled_amount),
                 "difference": _money(abs(paid - released)), "day": _day(track.settled_at or 0)},
            )  # fmt: skip
        if track.released_at is not None and self._in_period(track.released_at):
            self._count_day(track)
        self._masked.pop(track.payment_id, None)

    def _late_return(self, payment_id: str, at: float) -> None:
        """A return of a closed payment counted settled within the return window: move it to returned."""
        _, counted = self.settled.take_return(payment_id, at)
        if counted is None:
            return
        key, currency, amount = counted
        row = self.days[key]
        row.settled, row.returned = row.settled - 1, row.returned + 1
        take_back(row.settled_amount, currency, amount)

    def _count_day(self, track: Track) -> None:
        key = (track.company or "-", _day(track.released_at or 0))
        row = self.days.get(key)
        if row is None:
            if len(self.days) >= MAX_COMPANY_DAYS:
                key = ("other", key[1])
                row = self.days.get(key)
            if row is None:
                row = self.days[key] = DayRow()
        row.released += 1
        row.released_amount.add(track.currency, track.released_amount)
        outcome = track.outcome
        if track.submitted_at is not None or outcome in ("settled", "failed", "returned"):
            row.submitted += 1
        if outcome in ("settled", "failed", "returned", "cancelled"):
            setattr(row, outcome, getattr(row, outcome) + 1)
        else:
            row.open += 1
        if outcome == "settled":
            row.settled_amount.add(track.currency, track.settled_amount)
            at = track.settled_at if track.settled_at is not None else track.last_seen
            self.settled.remember(track.payment_id, at, (key, track.currency, track.settled_amount))
        elif outcome == "returned" and track.outcome_at is not None:
            self.settled.remember(track.payment_id, track.outcome_at, None)  # a second report is repeated

    # -- output ------------------------------------------------------------------------------------
    def result(self) -> dict[str, Any]:
        """The validation result (closes every payment still open: call once, at the end of input)."""
        self.finish()
        forgotten = dict(sorted((self.forgotten + Counter({"settled payments": self.settled.forgotten})).items()))
        days = [{"company": company, "day": day, **row.as_json()} for (company, day), row in sorted(self.days.items())]
        return {
            "schema": SCHEMA,
            "period": self.period_json(),
            "sla_hours": self.sla_hours,
            "events": {
                "read": self.events_read,
                "in_period": self.events_in_period,
                "lines_refused": self.lines_refused,
                "refused_by_reason": dict(self.reasons.most_common()),
            },
            "counts": {name: finding.count for name, finding in self.findings.items()},
            "classes": {name: finding.as_json() for name, finding in self.findings.items()},
            "completeness": days,
            "tracking": {**self.tracker.stats(), "return_window": self.settled.stats(), "forgotten_keys": forgotten},
        }


def reconcile_lines(
    lines: Iterable[bytes | None],
    builder: ReconcileBuilder,
    account_key: bytes | None = None,
    *,
    in_memory: int = 100_000,
) -> dict[str, Any]:
    """Feed raw JSON Lines (None for a line refused as too long before it was read) to `builder` in
    event-time order, sorted in bounded memory (spilled to temporary files past `in_memory` lines, as
    replay does): the reconciliation timers need time order, and neither a file nor a set of topic
    partitions is in it. The account hash key only links accounts within the run; a throw-away one
    is used unless one is given. Returns the builder's result."""
    key = account_key or os.urandom(32)
    readable = refuse_overlong(lines, builder.add_rejected)
    for _, _, event in ordered_events(readable, key, builder.add_rejected, limit=in_memory):
        builder.add_event(event)
    return builder.result()


def compute_reconcile(
    events_path: Path,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    sla_hours: float = 72.0,
    max_tracked: int = 200_000,
    return_window_days: float = 10.0,
) -> dict[str, Any]:
    """The validation result for [start, end) from an events file."""
    builder = ReconcileBuilder(
        start, end, sla_hours=sla_hours, max_tracked=max_tracked, return_window_days=return_window_days
    )
    return reconcile_lines(bounded_lines(events_path, MAX_RECORD_BYTES), builder)


def mark_engine_decisions(result: dict[str, Any], decisions: Iterable[Decision]) -> int:
    """Annotate each listed finding with what the engine decided about its payment: the strongest action
    and the rules that fired (`engine_action`, `engine_rules`), so a finding the rules already held is
    told apart from one nothing caught. Only the listed payments are looked up (bounded). Returns how
    many items were marked."""
    listed = {
        item["payment_id"]: item
        for finding in result["classes"].values()
        for item in finding["items"]
        if "payment_id" in item
    }
    seen: dict[str, tuple[str, set[str]]] = {}
    for decision in decisions:
        if decision.payment_id not in listed:
            continue
        action, rules = seen.get(decision.payment_id, ("allow", set()))
        if action_rank(decision.action) > action_rank(action):
            action = decision.action
        if len(rules) < 20:
            rules |= {hit.rule_id for hit in decision.rule_hits}
        seen[decision.payment_id] = (action, rules)
    marked = 0
    for finding in result["classes"].values():
        for item in finding["items"]:
            found = seen.get(item.get("payment_id", ""))
            if found is not None:
                item["engine_action"], item["engine_rules"] = found[0], ",".join(sorted(found[1]))
                marked += 1
    return marked
