"""Window reads are remembered between writes: a read after a write sees the write, and a remembered
read equals one computed afresh (the state's encoded form does not carry what was read)."""

from __future__ import annotations

import random

from paysentry.state import VendorProfile, decode_entity, encode_entity
from paysentry.windows import DAY, HOUR, MINUTE, WindowedStats

T = 1_800_000_000 - 1_800_000_000 % DAY
WINDOWS = (HOUR, 2 * HOUR, DAY, 7 * DAY, 30 * DAY, 90 * MINUTE, 36 * HOUR)
STATS = ("count", "sum", "mean", "std", "max", "failures")


def _reads(stats: WindowedStats, now: int) -> list[object]:
    out: list[object] = [stats.median(now)]
    for seconds in WINDOWS:
        out.append(stats.summary(now, seconds))
        out += [stats.stat(name, now, seconds) for name in STATS]
    return out


def _fresh(stats: WindowedStats) -> WindowedStats:
    return WindowedStats.from_data(stats.to_data())


def test_a_read_after_a_write_sees_the_write() -> None:
    stats = WindowedStats(with_histogram=True)
    stats.add(T, 100_00)
    assert stats.stat("count", T + 60, HOUR) == 1.0
    assert stats.median(T + 60) == stats.median(T + 60)  # read twice: the second is remembered
    stats.add(T + 30, 500_000_00)
    assert stats.stat("count", T + 60, HOUR) == 2.0
    assert stats.summary(T + 60, DAY)[0] == 2
    assert stats.stat("max", T + 60, DAY) == 500_000.0


def test_remembered_reads_equal_fresh_ones_on_a_random_history() -> None:
    rng = random.Random(7)
    stats = WindowedStats(with_histogram=True)
    now = T
    for _ in range(400):
        now += rng.randrange(0, 6 * HOUR)
        late = now - rng.randrange(0, 3 * DAY) if rng.random() < 0.2 else now  # some out of order
        stats.add(late, rng.randrange(1, 10_000_000), failure=rng.random() < 0.1)
        for probe in (now, now + rng.randrange(0, 2 * DAY)):
            first = _reads(stats, probe)
            assert _reads(stats, probe) == first  # remembered
            assert _reads(_fresh(stats), probe) == first  # computed afresh from the encoded state


def test_what_was_read_is_not_part_of_the_state() -> None:
    vendor = VendorProfile()
    vendor.stats.add(T, 123_45)
    before = encode_entity(vendor)
    vendor.stats.median(T)
    vendor.stats.stat("count", T, DAY)
    assert encode_entity(vendor) == before
    assert encode_entity(decode_entity(before)) == before
