"""What a reconciliation (reconcile.py) reports: the classes of finding, each one's full count and
worklist (`Finding`), and the completeness of a company's release day (`DayRow`). The class names are
written once, in `ClassName`; `CLASSES` is them in report order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from paysentry.analytics.sketch import MoneyTotals

ClassName = Literal[
    "released_not_submitted",
    "unsettled_past_sla",
    "amount_mismatch",
    "orphan_settlement",
    "duplicate_payment",
    "redelivered_event",
    "missing_fields",
    "invalid_event",
]
CLASSES: tuple[ClassName, ...] = get_args(ClassName)


@dataclass(slots=True)
class Finding:
    """One class of finding: the full count, per company, and the first `limit` items to work through."""

    limit: int
    count: int = 0
    by_company: Counter[str] = field(default_factory=Counter)
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, company: str | None, item: dict[str, Any]) -> None:
        self.count += 1
        self.by_company[company or "-"] += 1
        if len(self.items) < self.limit:
            self.items.append({k: v for k, v in item.items() if v is not None})

    def as_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "by_company": dict(sorted(self.by_company.items())),
            "listed": len(self.items),
            "items": self.items,
        }


@dataclass(slots=True)
class DayRow:
    released: int = 0
    submitted: int = 0
    settled: int = 0
    failed: int = 0
    returned: int = 0
    cancelled: int = 0
    open: int = 0
    released_amount: MoneyTotals = field(default_factory=MoneyTotals)
    settled_amount: MoneyTotals = field(default_factory=MoneyTotals)

    def as_json(self) -> dict[str, Any]:
        return {
            "released": self.released,
            "submitted": self.submitted,
            "settled": self.settled,
            "failed": self.failed,
            "returned": self.returned,
            "cancelled": self.cancelled,
            "open": self.open,
            "released_amount_by_currency": self.released_amount.as_json(),
            "settled_amount_by_currency": self.settled_amount.as_json(),
        }
