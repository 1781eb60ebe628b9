"""The rolling aggregates: exact to their bucket width, bounded, and indifferent to arrival order."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from paysentry.windows import DAY, HOUR, LADDERS, WindowedStats

T = 1_800_000_000  # a bucket-aligned epoch second (divisible by 86400? not needed, we align below)
T = T - T % DAY


def test_count_sum_mean_std_max_over_a_window() -> None:
    stats = WindowedStats()
    amounts = [100_00, 250_00, 75_50, 1000_00]
    for i, cents in enumerate(amounts):
        stats.add(T + i * 600, cents)
    now = T + 3 * 600
    units = [a / 100 for a in amounts]
    assert stats.stat("count", now, HOUR) == 4
    assert stats.stat("sum", now, HOUR) == pytest.approx(sum(units))
    assert stats.stat("mean", now, HOUR) == pytest.approx(statistics.mean(units))
    assert stats.stat("std", now, HOUR) == pytest.approx(statistics.stdev(units))
    assert stats.stat("max", now, HOUR) == 1000.0


@pytest.mark.parametrize("seconds", [HOUR, DAY, 7 * DAY, 30 * DAY])
def test_windows_forget_what_is_older_than_them(seconds: int) -> None:
    stats = WindowedStats()
    stats.add(T, 500)
    # one bucket width past the window (the coarsest ladder that covers it) it no longer counts
    width = next(w for w, keep in LADDERS if seconds <= w * keep)
    assert stats.stat("count", T + seconds - width, seconds) == 1
    assert stats.stat("count", T + seconds + width, seconds) == 0


def test_state_stays_bounded_however_many_events() -> None:
    stats = WindowedStats(with_histogram=True)
    rng = random.Random(1)
    for i in range(20_000):
        stats.add(T + i * 300, rng.randint(1, 10**8))
    assert [len(ladder) for ladder in stats.ladders] == [keep for _, keep in LADDERS]
    assert all(len(bucket[6]) <= 32 * 8 for bucket in stats.ladders[2])


def test_out_of_order_events_land_in_their_own_bucket() -> None:
    in_order, shuffled = WindowedStats(), WindowedStats()
    times = [T + i * 1800 for i in range(40)]
    for t in times:
        in_order.add(t, 100)
    for t in random.Random(3).sample(times, len(times)):
        shuffled.add(t, 100)
    now = times[-1]
    for seconds in (HOUR, 6 * HOUR, DAY):
        assert shuffled.stat("count", now, seconds) == in_order.stat("count", now, seconds)


def test_median_is_within_a_histogram_bin() -> None:
    stats = WindowedStats(with_histogram=True)
    values = [random.Random(5).lognormvariate(8, 1) for _ in range(301)]
    for i, v in enumerate(values):
        stats.add(T + i * 3000, round(v * 100))
    median = stats.median(T + 300 * 3000)
    assert median is not None
    assert math.isclose(median, statistics.median(values), rel_tol=0.08)


def test_failures_are_counted_apart_from_amounts() -> None:
    stats = WindowedStats()
    stats.add(T, 0, failure=True)
    stats.add(T + 60, 0)
    assert stats.stat("failures", T + 60, HOUR) == 1
    assert stats.stat("count", T + 60, HOUR) == 2


def test_snapshot_round_trip_through_json() -> None:
    import orjson

    stats = WindowedStats(with_histogram=True)
    for i in range(50):
        stats.add(T + i * 7000, 12_345 + i)
    copy = WindowedStats.from_data(orjson.loads(orjson.dumps(stats.to_data(), option=orjson.OPT_NON_STR_KEYS)))
    now = T + 49 * 7000
    assert copy.stat("std", now, 30 * DAY) == stats.stat("std", now, 30 * DAY)
    assert copy.median(now) == stats.median(now)
