"""Bounded rolling aggregates over event time.

A `WindowedStats` keeps three ladders of time buckets (5 minutes for 2 h, hourly for 48 h, daily for
31 days); each bucket is a handful of numbers, so an entity's state stays small however many payments
it sees. A window query sums the buckets of the finest ladder that covers it: windows are exact to the
bucket width, which is all a velocity or baseline rule needs. Amounts are integer minor units (cents),
so sums stay exact; only the sum of squares (for the standard deviation) is a float.

The daily ladder can also keep a sparse log-scale histogram of amounts, from which an approximate
median (within ~4 %) is read without keeping any raw amount.
"""

from __future__ import annotations

import math
from typing import Any

MINUTE = 60
HOUR = 3600
DAY = 86400

# (bucket width, buckets kept): 5 min x 24 = 2 h, 1 h x 48 = 48 h, 1 d x 31 = 31 d
LADDERS: tuple[tuple[int, int], ...] = ((5 * MINUTE, 24), (HOUR, 48), (DAY, 31))
LONGEST_WINDOW = LADDERS[-1][0] * LADDERS[-1][1]
HIST_BINS_PER_DECADE = 32

# Bucket layout, kept as a plain list so a state snapshot is cheap to encode:
# [start, count, sum_cents, sumsq, max_cents, failures, histogram or None]
_START, _COUNT, _SUM, _SUMSQ, _MAX, _FAIL, _HIST = range(7)


def _new_bucket(start: int, with_histogram: bool) -> list[Any]:
    return [start, 0, 0, 0.0, 0, 0, {} if with_histogram else None]


def histogram_bin(cents: int) -> int:
    return math.floor(math.log10(max(cents, 1)) * HIST_BINS_PER_DECADE)


def bin_value(bin_index: int) -> float:
    """Geometric middle of a histogram bin, in cents."""
    return float(10 ** ((bin_index + 0.5) / HIST_BINS_PER_DECADE))


class WindowedStats:
    __slots__ = ("ladders", "with_histogram")

    def __init__(self, with_histogram: bool = False, ladders: list[list[list[Any]]] | None = None):
        self.with_histogram = with_histogram
        self.ladders: list[list[list[Any]]] = ladders if ladders is not None else [[] for _ in LADDERS]

    # -- recording -----------------------------------------------------------------------------
    def add(self, at: int, cents: int = 0, *, failure: bool = False, count: bool = True) -> None:
        """Record one observation at epoch second `at` (out-of-order times are placed correctly)."""
        units = cents / 100
        for index, (width, keep) in enumerate(LADDERS):
            buckets = self.ladders[index]
            start = at - at % width
            bucket = self._bucket_for(buckets, start, width, keep, histogram=index == 2 and self.with_histogram)
            if bucket is None:
                continue  # older than this ladder keeps
            if count:
                bucket[_COUNT] += 1
                bucket[_SUM] += cents
                bucket[_SUMSQ] += units * units
                if cents > bucket[_MAX]:
                    bucket[_MAX] = cents
                if bucket[_HIST] is not None:
                    key = histogram_bin(cents)
                    bucket[_HIST][key] = bucket[_HIST].get(key, 0) + 1
            if failure:
                bucket[_FAIL] += 1

    @staticmethod
    def _bucket_for(buckets: list[list[Any]], start: int, width: int, keep: int, histogram: bool) -> list[Any] | None:
        if buckets and buckets[-1][_START] == start:
            return buckets[-1]
        if not buckets or buckets[-1][_START] < start:
            buckets.append(_new_bucket(start, histogram))
            horizon = start - width * (keep - 1)
            while buckets and buckets[0][_START] < horizon:
                buckets.pop(0)
            return buckets[-1]
        if start < buckets[-1][_START] - width * (keep - 1):
            return None
        for position in range(len(buckets) - 1, -1, -1):
            if buckets[position][_START] == start:
                return buckets[position]
            if buckets[position][_START] < start:
                buckets.insert(position + 1, _new_bucket(start, histogram))
                return buckets[position + 1]
        buckets.insert(0, _new_bucket(start, histogram))
        return buckets[0]

    # -- reading -------------------------------------------------------------------------------
    def _selected(self, now: int, seconds: int) -> list[list[Any]]:
        for index, (width, keep) in enumerate(LADDERS):
            if seconds <= width * keep or index == len(LADDERS) - 1:
                first = (now - seconds) - (now - seconds) % width
                if seconds % width == 0:
                    # "the last 24 h" in hourly buckets: the current bucket plus the 23 before it
                    first = now - now % width - seconds + width
                return [b for b in self.ladders[index] if first <= b[_START] <= now]
        return []  # pragma: no cover - the loop always returns on the last ladder

    def summary(self, now: int, seconds: int) -> tuple[int, float, float, float, float]:
        """(count, sum, mean, std, max) in one pass over the window's buckets."""
        count, total_cents, sumsq, largest = 0, 0, 0.0, 0
        for bucket in self._selected(now, seconds):
            count += bucket[_COUNT]
            total_cents += bucket[_SUM]
            sumsq += bucket[_SUMSQ]
            largest = max(largest, bucket[_MAX])
        total = total_cents / 100
        mean = total / count if count else 0.0
        std = math.sqrt(max((sumsq - count * mean * mean) / (count - 1), 0.0)) if count > 1 else 0.0
        return count, total, mean, std, largest / 100

    def stat(self, stat: str, now: int, seconds: int) -> float:
        buckets = self._selected(now, seconds)
        count = sum(b[_COUNT] for b in buckets)
        if stat == "count":
            return float(count)
        if stat == "failures":
            return float(sum(b[_FAIL] for b in buckets))
        total = sum(b[_SUM] for b in buckets) / 100
        if stat == "sum":
            return total
        if stat == "max":
            return max((b[_MAX] for b in buckets), default=0) / 100
        if count == 0:
            return 0.0
        mean = total / count
        if stat == "mean":
            return mean
        if stat == "std":
            if count < 2:
                return 0.0
            variance = (sum(b[_SUMSQ] for b in buckets) - count * mean * mean) / (count - 1)
            return math.sqrt(max(variance, 0.0))
        raise ValueError(f"unknown statistic {stat!r}")

    def median(self, now: int, seconds: int = 30 * DAY) -> float | None:
        """Approximate median amount (units, not cents) over the window, from the daily histograms."""
        merged: dict[int, int] = {}
        for bucket in self._selected(now, seconds):
            for key, value in (bucket[_HIST] or {}).items():
                merged[int(key)] = merged.get(int(key), 0) + value
        total = sum(merged.values())
        if total == 0:
            return None
        half, running = total / 2, 0
        for key in sorted(merged):
            running += merged[key]
            if running >= half:
                return bin_value(key) / 100
        return None  # pragma: no cover

    # -- snapshots -----------------------------------------------------------------------------
    def to_data(self) -> list[Any]:
        return [self.with_histogram, self.ladders]

    @classmethod
    def from_data(cls, data: list[Any]) -> WindowedStats:
        with_histogram, ladders = data
        if with_histogram:  # JSON turned the histogram keys into strings
            for bucket in ladders[2]:
                if bucket[_HIST] is not None:
                    bucket[_HIST] = {int(k): v for k, v in bucket[_HIST].items()}
        return cls(with_histogram, ladders)
