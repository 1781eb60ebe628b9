"""Bounded building blocks for streaming KPIs: a quantile sketch, capped label sets and money totals.

Nothing here keeps one item per observation: a KPI run over a file of any length holds counts and sums.
"""

from __future__ import annotations

import math
from collections import Counter
from decimal import Decimal
from typing import Any

OTHER = "other"
"""Where label values past a cap are counted (a company, channel or bank seen after the cap is full)."""


class LogHistogram:
    """Quantiles of positive values from fixed log-spaced buckets: each bucket is 5 % wider than the one
    below, so a quantile is within about 2.5 % of the true value whatever the input's length. Values at
    or below `LOW` share one bucket; memory is at most a few hundred counters."""

    LOW = 1e-3
    GROWTH = 1.05
    _LOG_GROWTH = math.log(GROWTH)

    __slots__ = ("buckets", "count", "total", "minimum", "maximum")

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.total = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf

    def add(self, value: float) -> None:
        if not math.isfinite(value) or value < 0:
            return
        self.buckets[self._index(value)] += 1
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    def _index(self, value: float) -> int:
        if value <= self.LOW:
            return -1
        return int(math.log(value / self.LOW) / self._LOG_GROWTH)

    def _representative(self, index: int) -> float:
        if index < 0:
            return 0.0
        low = self.LOW * self.GROWTH**index
        return low * math.sqrt(self.GROWTH)  # the bucket's geometric middle

    def quantile(self, q: float) -> float | None:
        if self.count == 0:
            return None
        if q <= 0:
            return self.minimum
        if q >= 1:
            return self.maximum
        rank = q * (self.count - 1)
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen > rank:
                return min(max(self._representative(index), self.minimum), self.maximum)
        return self.maximum

    def merge(self, other: LogHistogram) -> None:
        self.buckets.update(other.buckets)
        self.count += other.count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)

    def summary(self) -> dict[str, Any]:
        """count, mean, p50, p90, p99, max (seconds, rounded to 0.1), or only count 0 when empty."""
        if self.count == 0:
            return {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return {
            "count": self.count,
            "mean": rounded(self.total / self.count),
            "p50": rounded(self.quantile(0.50)),
            "p90": rounded(self.quantile(0.90)),
            "p99": rounded(self.quantile(0.99)),
            "max": rounded(self.maximum),
        }


class CappedLabels:
    """Maps label values to themselves until `cap` distinct values were seen, then new ones to "other",
    so tables keyed by company, bank or reason stay bounded on hostile or huge input."""

    __slots__ = ("cap", "known", "overflowed")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.known: set[str] = set()
        self.overflowed = 0

    def __call__(self, value: str | None) -> str:
        if value is None or value == "":
            return "unknown"
        if value in self.known:
            return value
        if len(self.known) < self.cap:
            self.known.add(value)
            return value
        self.overflowed += 1
        return OTHER


class MoneyTotals:
    """Exact sums per currency (money is never a float here)."""

    __slots__ = ("sums",)

    def __init__(self) -> None:
        self.sums: dict[str, Decimal] = {}

    def add(self, currency: str | None, amount: Decimal | None) -> None:
        if amount is None:
            return
        key = currency or "unknown"
        self.sums[key] = self.sums.get(key, Decimal(0)) + amount

    def get(self, currency: str) -> Decimal:
        return self.sums.get(currency, Decimal(0))

    def as_json(self) -> dict[str, str]:
        return {currency: str(total) for currency, total in sorted(self.sums.items())}


def ratio(part: float | Decimal, whole: float | Decimal, digits: int = 6) -> float | None:
    """part / whole rounded, or None when there is nothing to divide by."""
    if not whole:
        return None
    return round(float(part) / float(whole), digits)


def shorten_reason(reason: str | None, limit: int = 80) -> str:
    """A reason as a table key: its first line, cut to `limit` characters."""
    if not reason:
        return "unspecified"
    text = reason.splitlines()[0].strip() if reason.strip() else "unspecified"
    return text if len(text) <= limit else text[:limit] + "…"
