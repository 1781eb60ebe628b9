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


def _window_of(now: int, seconds: int) -> tuple[int, int, int]:
    last = len(LADDERS) - 1
    for index, (width, keep) in enumerate(LADDERS):
        if seconds <= width * keep or index == last:
            if seconds % width == 0:
                # "the last 24 h" in hourly buckets: the current bucket plus the 23 before it
                first = now - now % width - seconds + width
            else:
                first = (now - seconds) - (now - seconds) % width
            return index, first, now - now % width  # bucket starts are multiples of the width
    raise AssertionError("unreachable: the loop returns on the last ladder")  # pragma: no cover


# The windows read lately, by (now, seconds): every profile an event reads asks for the same few.
_WINDOWS: dict[tuple[int, int], tuple[int, int, int]] = {}
_WINDOWS_KEPT = 256


class WindowedStats:
    # `_reads`: what was read since the last write, by (what, ladder, first bucket, last bucket); a
    # window's buckets are fixed by those, so an entity read by several events between two writes (a
    # payment's created, approved, released, settled events) sums its buckets once. Never persisted.
    __slots__ = ("ladders", "with_histogram", "_reads")

    def __init__(self, with_histogram: bool = False, ladders: list[list[list[Any]]] | None = None):
        self.with_histogram = with_histogram
        self.ladders: list[list[list[Any]]] = ladders if ladders is not None else [[] for _ in LADDERS]
        self._reads: dict[tuple[str, int, int, int], Any] = {}

    # -- recording -----------------------------------------------------------------------------
    def add(self, at: int, cents: int = 0, *, failure: bool = False, count: bool = True) -> None:
        """Record one observation at epoch second `at` (out-of-order times are placed correctly)."""
        self._reads.clear()
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
    @staticmethod
    def _window(now: int, seconds: int) -> tuple[int, int, int]:
        """(ladder, first bucket start, last bucket start) of the window of `seconds` ending at `now`."""
        key = (now, seconds)
        window = _WINDOWS.get(key)
        if window is None:
            if len(_WINDOWS) >= _WINDOWS_KEPT:  # an event reads a handful; the next event has another `now`
                _WINDOWS.clear()
            window = _WINDOWS[key] = _window_of(now, seconds)
        return window

    def _selected(self, ladder: int, first: int, last: int) -> list[list[Any]]:
        """The ladder's buckets starting in [first, last], oldest first (buckets are kept in order)."""
        buckets = self.ladders[ladder]
        end = len(buckets)
        while end and buckets[end - 1][_START] > last:
            end -= 1
        begin = end
        while begin and buckets[begin - 1][_START] >= first:
            begin -= 1
        return buckets[begin:end]

    def summary(self, now: int, seconds: int) -> tuple[int, float, float, float, float]:
        """(count, sum, mean, std, max) in one pass over the window's buckets."""
        window = self._window(now, seconds)
        key = ("summary", *window)
        found = self._reads.get(key)
        if found is not None:
            return found
        count, total_cents, sumsq, largest = 0, 0, 0.0, 0
        for bucket in self._selected(*window):
            count += bucket[_COUNT]
            total_cents += bucket[_SUM]
            sumsq += bucket[_SUMSQ]
            if bucket[_MAX] > largest:
                largest = bucket[_MAX]
        total = total_cents / 100
        mean = total / count if count else 0.0
        std = math.sqrt(max((sumsq - count * mean * mean) / (count - 1), 0.0)) if count > 1 else 0.0
        result = count, total, mean, std, largest / 100
        self._reads[key] = result
        return result

    def stat(self, stat: str, now: int, seconds: int) -> float:
        window = self._window(now, seconds)
        key = (stat, *window)
        found = self._reads.get(key)
        if found is None:
            found = self._reads[key] = self._stat(stat, self._selected(*window))
        return found

    @staticmethod
    def _stat(stat: str, buckets: list[list[Any]]) -> float:
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
        window = self._window(now, seconds)
        key = ("median", *window)
        if key in self._reads:
            return self._reads[key]
        merged: dict[int, int] = {}
        get = merged.get
        for bucket in self._selected(*window):
            for bin_index, value in (bucket[_HIST] or {}).items():
                merged[bin_index] = get(bin_index, 0) + value
        result = None
        total = sum(merged.values())
        if total:
            half, running = total / 2, 0
            for bin_index in sorted(merged):
                running += merged[bin_index]
                if running >= half:
                    result = bin_value(bin_index) / 100
                    break
        self._reads[key] = result
        return result

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
