"""Routes (payment id -> shard) are bounded: a route reads as absent weeks after its payment's newest
event, never while the payment's record can still be read, and replay sweeps the expired ones. Expiry is
a function of event times only, so the stream's ingest stage routes as replay does
(tests/stream/test_routes.py runs it on a broker)."""

from __future__ import annotations

import pydantic
import pytest

from paysentry.core import Engine
from paysentry.event_time import epoch
from paysentry.params import MAX_SETTLEMENT_SLA_HOURS, CompanyParams
from paysentry.replay import Replayer
from paysentry.sharding import ROUTE_MEMORY_WEEKS, ROUTE_STAMP, Route, live_route, route_week, shard_for
from paysentry.state import PaymentRecord, key_for
from paysentry.windows import DAY
from tests.builders import KEY, at, parse, release, settle
from tests.test_core import Capturing


@pytest.mark.parametrize("sla_hours", [1.0, 48.0, MAX_SETTLEMENT_SLA_HOURS])
def test_a_route_is_live_as_long_as_its_payments_record_reads_present(sla_hours: float) -> None:
    rules = Capturing(companies={"US01": CompanyParams(settlement_sla_hours=sla_hours)})
    replayer = Replayer(Engine(rules), KEY, sweep_interval=None)
    released = parse(release("P", at(0)))  # never settled: its SLA timer reads (and so touches) it later
    replayer.feed(released)
    start = epoch(released.event_time)
    key = key_for(PaymentRecord, "P", "US01")
    present_until = expired_from = None
    for hour in range(0, 200 * 24, 6):
        now = start + hour * 3600
        replayer.advance(now)
        record = replayer.store.get(key)
        if record is not None and not replayer.engine.expired(record, now):
            present_until = now
            assert live_route(replayer.routes, "P", now) is not None, f"no route, record still present ({hour} h)"
        elif expired_from is None and live_route(replayer.routes, "P", now) is None:
            expired_from = now
    assert present_until is not None and expired_from is not None and expired_from > present_until
    assert expired_from - start <= (ROUTE_MEMORY_WEEKS + 1) * ROUTE_STAMP  # and it does go


def test_an_event_after_the_route_expired_starts_a_new_route() -> None:
    routes: dict[str, Route] = {}
    first = parse(release("P", at(0), company_code="CN01"))
    assert shard_for(first, routes, epoch(first.event_time)) == "CN01"
    soon = parse(settle("P", at(days=60)))  # platform events carry no company: the route says where
    assert shard_for(soon, routes, epoch(soon.event_time)) == "CN01"
    late = parse(settle("P", at(days=60 + 7 * (ROUTE_MEMORY_WEEKS + 1))))
    assert shard_for(late, routes, epoch(late.event_time)) == "_"  # the payment is new again
    assert routes["P"] == Route("_", route_week(epoch(late.event_time)))


def test_the_stamp_is_the_newest_week_whatever_order_the_events_come_in() -> None:
    days = [0, 20, 9, 15]
    stamps = []
    for order in (days, sorted(days), sorted(days, reverse=True)):
        routes: dict[str, Route] = {}
        for day in order:
            event = parse(settle("P", at(days=day)))
            shard_for(event, routes, epoch(event.event_time))
        stamps.append(routes["P"])
    assert stamps[0] == stamps[1] == stamps[2]
    assert stamps[0].week == route_week(epoch(parse(settle("P", at(days=20))).event_time))


def test_replay_sweeps_expired_routes_and_decides_the_same_with_or_without_sweeps() -> None:
    old = [release(f"OLD{n}", at(days=n)) for n in range(5)]
    recent = [release(f"NEW{n}", at(days=100 + n)) for n in range(5)]
    late_settlement = settle("OLD0", at(days=120))  # after its route expired: a payment unknown again
    events = [parse(e) for e in [*old, *recent, late_settlement]]
    swept, unswept = Replayer(Engine(Capturing()), KEY), Replayer(Engine(Capturing()), KEY, sweep_interval=None)
    decided = [[d.to_json() for d in r.run(iter(events))] for r in (swept, unswept)]
    assert decided[0] == decided[1]
    assert set(swept.routes) == {f"NEW{n}" for n in range(5)} | {"OLD0"}
    assert swept.routes["OLD0"].shard == "_"
    assert len(unswept.routes) == 10


def test_a_settlement_sla_longer_than_routes_allow_for_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="less than or equal"):
        CompanyParams(settlement_sla_hours=MAX_SETTLEMENT_SLA_HOURS + 1)
    assert ROUTE_MEMORY_WEEKS * ROUTE_STAMP >= 35 * DAY + MAX_SETTLEMENT_SLA_HOURS * 3600


def test_routes_to_ever_new_company_codes_keep_the_shared_routes_bounded() -> None:
    """A producer inventing company codes cannot grow the table of shared routes without bound."""
    from paysentry import sharding

    routes: dict[str, Route] = {}
    for n in range(70_000):
        event = parse(release(f"P{n}", at(0), company_code=f"X{n}"))
        assert shard_for(event, routes, epoch(event.event_time)) == f"X{n}"
    assert len(sharding._STAMPED) <= sharding.MAX_SHARED_ROUTES == 65_536
    assert routes["P69999"] == Route("X69999", route_week(epoch(event.event_time)))
