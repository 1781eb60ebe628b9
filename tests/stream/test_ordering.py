"""Event-time ordering of the decision stage: exact (the default: nothing is released before every ingest
group has reported progress past it) and bounded (also released once an event newer by more than the
lateness has arrived, without waiting for ticks). No broker: see test_internal_records.py."""

from __future__ import annotations

import orjson

from stream.settings import StreamSettings
from tests.stream.test_internal_records import IDLE, _envelopes, _rig


def _times(envelopes: list[bytes]) -> list[int]:
    return [orjson.loads(envelope)["ts"] for envelope in envelopes]


def test_exact_ordering_waits_for_the_ingest_groups() -> None:
    rig = _rig()
    for envelope in _envelopes():
        rig.feed(envelope)
    assert rig.decided == []  # no tick yet: however new the last event, nothing is released
    rig.feed(IDLE)
    assert rig.decided


def test_bounded_ordering_releases_what_is_older_than_the_newest_by_the_lateness() -> None:
    envelopes = _envelopes()
    newest = max(_times(envelopes))
    lateness = 3600 * 1_000_000
    rig = _rig()
    rig.stage.lateness = lateness
    for envelope in envelopes:
        rig.feed(envelope)
    released = set(rig.decided)
    assert released, "bounded ordering released nothing without a tick"
    by_id = {orjson.loads(e)["ev"]["event_id"]: orjson.loads(e)["ts"] for e in envelopes}
    assert all(by_id[event_id] < newest - lateness for event_id in released)
    held = [event_id for event_id, ts in by_id.items() if ts >= newest - lateness]
    assert held and not set(held) & released  # the newest hour waits for a tick or newer events
    rig.feed(IDLE)
    exact = _rig()
    for envelope in envelopes:
        exact.feed(envelope)
    exact.feed(IDLE)
    assert sorted(rig.decided) == sorted(exact.decided)  # in order here, so the same decisions


def test_settings_choose_the_ordering() -> None:
    exact = StreamSettings(account_hash_key="k", idle_seconds=2.0)  # type: ignore[arg-type]
    assert exact.lateness_micros() is None and exact.idle_after() == 2.0
    bounded = StreamSettings(account_hash_key="k", idle_seconds=2.0, ordering="bounded", lateness_seconds=1.5)  # type: ignore[arg-type]
    assert bounded.lateness_micros() == 1_500_000 and bounded.idle_after() == 0.0
