"""Decision KPIs: decisions by action, event type and rule, and each rule's precision against verdicts.

Precision of a rule = flagged payments confirmed as a problem (`label.confirmed` with verdict `fraud` or
`error`) / flagged payments with any verdict (`confirmed` + `legit`). Flagged payments without a verdict
are counted (`unlabelled`) but not in the precision. Memory: the verdicts (one per labelled payment,
capped; read them before the decisions) and, per rule, the payments recently flagged (capped), so that
the several decisions of one payment (created, approved, released ...) count it once.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from paysentry.analytics.sketch import CappedLabels, ratio
from paysentry.contract import Decision

POSITIVE_VERDICTS = frozenset({"fraud", "error"})
MAX_LABELS = 500_000
RECENT_PER_RULE = 20_000
RULE_CAP = 500


class DecisionStats:
    def __init__(self, in_period: Callable[[float], bool]) -> None:
        self.in_period = in_period
        self.total = 0
        self.by_action: Counter[str] = Counter()
        self.by_event_type: Counter[str] = Counter()
        self.by_rule: Counter[str] = Counter()
        self.by_rule_shadow: Counter[str] = Counter()
        self.rules = CappedLabels(RULE_CAP)
        self.verdicts: dict[str, str] = {}
        self.flagged: dict[str, OrderedDict[str, None]] = {}
        self.flagged_payments: Counter[str] = Counter()
        self.verdict_counts: dict[str, Counter[str]] = {}
        self.seen_any = False

    def add_label(self, payment_id: str, verdict: str) -> None:
        if payment_id in self.verdicts or len(self.verdicts) < MAX_LABELS:
            self.verdicts[payment_id] = verdict

    def add(self, decision: Decision) -> None:
        self.seen_any = True
        try:
            at = datetime.fromisoformat(decision.event_time).timestamp()
        except ValueError:
            return
        if not self.in_period(at):
            return
        self.total += 1
        self.by_action[decision.action] += 1
        self.by_event_type[decision.event_type or "unknown"] += 1
        for hit in decision.rule_hits:
            rule = self.rules(hit.rule_id)
            self.by_rule[rule] += 1
            recent = self.flagged.setdefault(rule, OrderedDict())
            if decision.payment_id in recent:
                recent.move_to_end(decision.payment_id)
                continue
            recent[decision.payment_id] = None
            self.flagged_payments[rule] += 1
            verdict = self.verdicts.get(decision.payment_id, "unlabelled")
            self.verdict_counts.setdefault(rule, Counter())[verdict] += 1
            if len(recent) > RECENT_PER_RULE:
                recent.popitem(last=False)
        for hit in decision.shadow_hits:
            self.by_rule_shadow[self.rules(hit.rule_id)] += 1

    def _precision(self) -> dict[str, dict[str, Any]]:
        """Per rule, from the verdicts known when it flagged each payment (labels are read first)."""
        result = {}
        for rule, verdicts in sorted(self.verdict_counts.items()):
            confirmed = sum(verdicts[v] for v in POSITIVE_VERDICTS)
            legit = verdicts["legit"]
            result[rule] = {
                "flagged_payments": self.flagged_payments[rule],
                "confirmed": confirmed,
                "legit": legit,
                "unlabelled": verdicts["unlabelled"],
                "precision": ratio(confirmed, confirmed + legit, 4),
                "precision_unlabelled_as_legit": ratio(confirmed, sum(verdicts.values()), 4),
            }
        return result

    def result(self) -> dict[str, Any] | None:
        """None when no decisions were given (the report then says so instead of showing zeros)."""
        if not self.seen_any:
            return None
        return {
            "total": self.total,
            "by_action": dict(sorted(self.by_action.items())),
            "by_event_type": dict(sorted(self.by_event_type.items())),
            "by_rule": dict(self.by_rule.most_common()),
            "shadow_by_rule": dict(self.by_rule_shadow.most_common()),
            "labelled_payments": len(self.verdicts),
            "rule_precision": self._precision(),
        }
