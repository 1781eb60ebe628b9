"""Parts of the strategy report that stand on their own: approval steps, batching, rule usefulness."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from paysentry.analytics.sketch import LogHistogram, MoneyTotals, ratio
from paysentry.analytics.tracker import Track
from paysentry.contract import Decision, action_rank

RARELY = 0.005  # a step that stops fewer than 0.5 % of the payments it sees rarely changes the outcome
MAX_LABELS = 500_000
BATCH_MIN = 3  # small payments to one vendor in one week before batching is worth a look
BATCH_OPEN_CAP = 100_000
TOP = 10


@dataclass
class _Step:
    payments: int = 0
    stopped_before_approval: int = 0
    stopped_after_approval: int = 0
    approval_hours: LogHistogram = field(default_factory=LogHistogram)
    release_wait_hours: LogHistogram = field(default_factory=LogHistogram)
    stopped_ids: list[str] = field(default_factory=list)


class ApprovalSteps:
    """Per company and number of approvers: how long approving and releasing take, and how often a
    payment is stopped (cancelled before release) at each step."""

    def __init__(self) -> None:
        self.steps: dict[tuple[str, str], _Step] = {}

    def add(self, track: Track, company: str) -> None:
        if not track.erp_seen or track.created_at is None:
            return
        chain = "2+ approvers" if track.approvers >= 2 else "1 approver" if track.approvers == 1 else "no approver"
        step = self.steps.setdefault((company, chain), _Step())
        step.payments += 1
        if track.approved_at is not None and track.approved_at >= track.created_at:
            step.approval_hours.add((track.approved_at - track.created_at) / 3600)
        if track.released_at is not None and track.approved_at is not None and track.released_at >= track.approved_at:
            step.release_wait_hours.add((track.released_at - track.approved_at) / 3600)
        if track.outcome == "cancelled" and track.released_at is None:
            if track.approved_at is None:
                step.stopped_before_approval += 1
            else:
                step.stopped_after_approval += 1
            if len(step.stopped_ids) < 5:
                step.stopped_ids.append(track.payment_id)

    def result(self) -> list[dict[str, Any]]:
        rows = []
        for (company, chain), s in sorted(self.steps.items()):
            approval, wait = s.approval_hours.summary(), s.release_wait_hours.summary()
            stopped_share = ratio(s.stopped_before_approval + s.stopped_after_approval, s.payments)
            rows.append(
                {
                    "company": company,
                    "approval_chain": chain,
                    "payments": s.payments,
                    "approval_hours_p50": approval["p50"],
                    "approval_hours_p90": approval["p90"],
                    "release_wait_hours_p50": wait["p50"],
                    "release_wait_hours_p90": wait["p90"],
                    "stopped_before_approval": s.stopped_before_approval,
                    "stopped_after_approval": s.stopped_after_approval,
                    "stopped_share": stopped_share,
                    "rarely_changes_outcome": s.payments >= 20 and (stopped_share or 0) < RARELY,
                    "evidence": s.stopped_ids,
                }
            )
        return rows


@dataclass
class _Week:
    payments: int = 0
    fees: Decimal = Decimal(0)
    largest_fee: Decimal = Decimal(0)
    currency: str = ""
    ids: list[str] = field(default_factory=list)


class Batching:
    """Small settled payments to one vendor in one ISO week: paid together, they would cost about one
    fee (the largest) instead of all of them. Weeks are closed as time moves on, so memory holds about
    two weeks of vendors."""

    def __init__(self, small_below: Decimal) -> None:
        self.small_below = small_below
        self.open: dict[tuple[str, str, int], _Week] = {}  # (company, vendor, the week's Monday as an ordinal)
        self.latest = 0
        self.opportunities = 0
        self.payments = 0
        self.saving = MoneyTotals()
        self.top: list[tuple[Decimal, int, dict[str, Any]]] = []
        self._seq = 0

    def add(self, track: Track, company: str, amount: Decimal) -> None:
        if amount >= self.small_below or not track.vendor or track.settled_local is None:
            return
        day = track.settled_local.date()
        week = day.toordinal() - day.weekday()
        if week > self.latest:
            self.latest = week
            self._flush(lambda monday: monday < week - 7)  # payments close roughly in time order
        key = (company, track.vendor, week)
        row = self.open.get(key)
        if row is None:
            if len(self.open) >= BATCH_OPEN_CAP:
                self.flush_all()
            row = self.open[key] = _Week(currency=track.currency or "")
        row.payments += 1
        row.fees += track.fee
        row.largest_fee = max(row.largest_fee, track.fee)
        if len(row.ids) < 5:
            row.ids.append(track.payment_id)

    def _flush(self, done: Any) -> None:
        for key in [k for k in self.open if done(k[2])]:
            self._close(key, self.open.pop(key))

    def flush_all(self) -> None:
        self._flush(lambda week: True)

    def _close(self, key: tuple[str, str, int], row: _Week) -> None:
        if row.payments < BATCH_MIN:
            return
        saving = row.fees - row.largest_fee
        if saving <= 0:
            return
        self.opportunities += 1
        self.payments += row.payments
        self.saving.add(row.currency, saving)
        company, vendor, monday = key
        iso = date.fromordinal(monday).isocalendar()
        item = {
            "company": company,
            "vendor": vendor,
            "week": f"{iso[0]}-W{iso[1]:02d}",
            "payments": row.payments,
            "fees": str(row.fees),
            "saving": str(saving),
            "currency": row.currency,
            "evidence": row.ids,
        }
        self._seq += 1
        entry = (saving, self._seq, item)
        if len(self.top) < TOP:
            heapq.heappush(self.top, entry)
        elif entry[:2] > self.top[0][:2]:
            heapq.heapreplace(self.top, entry)

    def result(self) -> dict[str, Any]:
        return {
            "opportunities": self.opportunities,
            "payments": self.payments,
            "saving": self.saving.as_json(),
            "top": [item for _, _, item in sorted(self.top, key=lambda e: (-e[0], e[1]))],
        }


class RuleUsefulness:
    """Per rule: hits, decisions it decided (its action was the decision's and no other hit was as
    strong), confirmed problems it flagged. A rule that decided nothing and caught nothing confirmed is
    a candidate to remove; one that caught confirmed problems earns its place."""

    def __init__(self) -> None:
        self.positive: dict[str, bool] = {}
        self.hits: Counter[str] = Counter()
        self.decisive: Counter[str] = Counter()
        self.confirmed: dict[str, set[str]] = {}
        self.seen = False

    def add_label(self, payment_id: str, positive: bool) -> None:
        if payment_id in self.positive or len(self.positive) < MAX_LABELS:
            self.positive[payment_id] = positive

    def add(self, decision: Decision) -> None:
        self.seen = True
        for hit in decision.rule_hits:
            self.hits[hit.rule_id] += 1
            rank = action_rank(hit.action)
            others = [action_rank(h.action) for h in decision.rule_hits if h is not hit]
            if rank > 0 and hit.action == decision.action and all(r < rank for r in others):
                self.decisive[hit.rule_id] += 1
            if self.positive.get(decision.payment_id):
                self.confirmed.setdefault(hit.rule_id, set()).add(decision.payment_id)

    def result(self) -> dict[str, Any] | None:
        if not self.seen:
            return None
        rows = [
            {
                "rule": rule,
                "hits": hits,
                "decided": self.decisive[rule],
                "confirmed_payments": len(self.confirmed.get(rule, ())),
                "evidence": sorted(self.confirmed.get(rule, ()))[:5],
            }
            for rule, hits in self.hits.most_common()
        ]
        return {
            "rules": rows,
            "candidates_to_remove": [r["rule"] for r in rows if not r["decided"] and not r["confirmed_payments"]],
            "caught_confirmed_problems": [r["rule"] for r in rows if r["confirmed_payments"]],
        }
