"""The per-payment state behind the stage times stays bounded, and says what it had to let go; the
quantile sketch stays accurate without keeping the values."""

from __future__ import annotations

import math
import os
import random
from datetime import UTC, datetime, timedelta

from paysentry.analytics.kpis import KpiBuilder
from paysentry.analytics.sketch import CappedLabels, LogHistogram
from paysentry.analytics.tracker import PaymentTracker, Track
from paysentry.contract import Event, parse_event

KEY = os.urandom(32)
START = datetime(2026, 1, 1, tzinfo=UTC)


def released(index: int, at: datetime) -> Event:
    return parse_event(
        {
            "type": "payment.released",
            "event_id": f"r{index}",
            "event_time": at.isoformat(),
            "payment_id": f"P{index}",
            "vendor_id": "V",
            "amount": "10",
            "currency": "EUR",
            "company_code": f"C{index}",
        },
        account_key=KEY,
    )


def test_open_payments_never_exceed_the_cap() -> None:
    closed: list[tuple[str, str]] = []
    tracker = PaymentTracker(lambda track, reason: closed.append((track.payment_id, reason)), max_tracked=100)
    for index in range(5000):
        tracker.observe(released(index, START + timedelta(seconds=index)))
        assert len(tracker.open) <= 100
    assert tracker.closed_counts["capacity"] == 4900
    assert closed[0] == ("P0", "capacity")  # the least recently seen goes first
    assert len(tracker.closed) <= tracker.closed_memory


def test_idle_payments_close_past_the_horizon() -> None:
    tracker = PaymentTracker(lambda track, reason: None, horizon_seconds=10 * 86_400, sla_seconds=86_400)
    for index in range(50):
        tracker.observe(released(index, START + timedelta(minutes=index)))
    tracker.observe(released(999, START + timedelta(days=12)))
    assert set(tracker.open) == {"P999"}
    assert tracker.closed_counts["horizon"] == 50


def test_kpi_builder_reports_what_it_dropped() -> None:
    builder = KpiBuilder(max_tracked=50)
    for index in range(1000):
        builder.add_event(released(index, START + timedelta(seconds=index)))
    result = builder.result()
    tracking = result["tracking"]
    assert tracking["peak_open"] == 51  # one over the cap, for the instant before the oldest leaves
    assert tracking["closed_by_reason"] == {"capacity": 950, "end": 50}
    assert result["payments"]["released"] == 1000  # counts do not need the per-payment state
    assert len(result["by"]["company"]) <= 201  # capped labels, plus "other"
    assert result["tracking"]["labels_over_cap"]["company"] == 800


def test_capped_labels() -> None:
    labels = CappedLabels(2)
    assert [labels(v) for v in ("a", "b", "c", "a", None)] == ["a", "b", "other", "a", "unknown"]
    assert labels.overflowed == 1


def test_sketch_quantiles_are_close_to_exact() -> None:
    rng = random.Random(5)
    values = [rng.lognormvariate(8, 2) for _ in range(20_000)]
    sketch = LogHistogram()
    for value in values:
        sketch.add(value)
    ordered = sorted(values)
    for q in (0.5, 0.9, 0.99):
        exact = ordered[math.floor(q * (len(ordered) - 1))]
        assert math.isclose(sketch.quantile(q) or 0, exact, rel_tol=0.03), q
    assert len(sketch.buckets) < 700  # bounded by the value range, not by the number of values
    assert sketch.quantile(0.0) == min(values) and sketch.quantile(1.0) == max(values)


def test_sketch_ignores_values_it_cannot_place() -> None:
    sketch = LogHistogram()
    for value in (float("nan"), float("inf"), -1.0, 0.0, 5.0):
        sketch.add(value)
    assert sketch.count == 2
    assert sketch.summary()["max"] == 5.0


def test_track_takes_erp_dimensions_over_the_platform() -> None:
    track = Track("P", 0.0)
    platform = parse_event(
        {
            "type": "psp.submitted",
            "event_id": "s",
            "event_time": START.isoformat(),
            "payment_id": "P",
            "amount": "1",
            "currency": "EUR",
            "channel": "swift",
        },
        account_key=KEY,
    )
    track.absorb(platform, 0.0)
    erp = released(1, START)
    track.absorb(erp, 1.0)
    assert (track.channel, track.company, track.erp_seen) == ("swift", "C1", True)
