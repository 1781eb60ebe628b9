"""Which shard an event belongs to. State is sharded by paying company, so that everything a decision
reads (the company's vendors, users, accounts, channels and payments) lives on one partition.

A payment keeps the shard of its first event: a later event of the same payment lands on the same
shard even when it lacks a company code (platform events never carry one). Vendor master data is not
sharded: every shard reads it (a replicated table in the stream).

Routes are bounded like the rest of the state. A route remembers the week (in event time) of the newest
event it routed, and reads as absent once `ROUTE_MEMORY_WEEKS` have passed since then: by that time the
payment's record is surely idle past its own horizon (`PROFILE_MEMORY` after its last event or timer,
and a timer falls due at most `MAX_SETTLEMENT_SLA` after the last event). Expiry is a function of event
times alone, and the stamp only ever moves to a later week (a maximum, whatever order the events come
in), so replay and every stream worker route alike, and a sweep may delete an expired route whenever it
likes.
"""

from __future__ import annotations

import sys
from typing import NamedTuple, Protocol

from paysentry.contract import Event
from paysentry.params import MAX_SETTLEMENT_SLA_HOURS
from paysentry.state import PROFILE_MEMORY
from paysentry.windows import DAY, HOUR

UNKNOWN_SHARD = "_"
ROUTE_STAMP = 7 * DAY  # a route is written again only when its payment's events reach a later week
ROUTE_MEMORY_WEEKS = -(-(PROFILE_MEMORY + int(MAX_SETTLEMENT_SLA_HOURS * HOUR)) // ROUTE_STAMP)  # ceiling


class Route(NamedTuple):
    shard: str
    week: int  # event-time week of the newest event routed by it (`route_week`)

    def expired_by(self, week: int) -> bool:
        return week > self.week + ROUTE_MEMORY_WEEKS


class RouteMap(Protocol):
    """payment id -> Route: a dict in replay, the `routes` table in the stream (stream/routes.py)."""

    def get(self, key: str, /) -> Route | None: ...

    def __setitem__(self, key: str, value: Route, /) -> None: ...


def route_week(at: int) -> int:
    """The week of event time `at` (epoch seconds) as routes stamp it."""
    return at // ROUTE_STAMP


_STAMPED: dict[tuple[str, int], Route] = {}  # one Route per shard and week, shared by all its payments
MAX_SHARED_ROUTES = 65_536  # shards times weeks: sharing is only a saving, never a must


def stamped(shard: str, week: int) -> Route:
    """The route to `shard` stamped `week` (a shared object: routes held by replay cost a dict entry)."""
    route = _STAMPED.get((shard, week))
    if route is None:
        if len(_STAMPED) >= MAX_SHARED_ROUTES:
            _STAMPED.clear()
        route = _STAMPED[shard, week] = Route(sys.intern(shard), week)
    return route


def live_route(routes: RouteMap, payment_id: str | None, at: int) -> Route | None:
    """The payment's route as an event at `at` sees it (None: none, or expired)."""
    if not payment_id:
        return None
    route = routes.get(payment_id)
    return None if route is None or route.expired_by(route_week(at)) else route


def shard_for(event: Event, routes: RouteMap, at: int) -> str:
    """The shard of `event` (at event time `at`, epoch seconds); remembers a payment's shard in `routes`
    (payment_id -> Route), and moves the route's stamp on when the event is in a later week."""
    payment_id = event.payment_id
    if not payment_id:
        return event.company_code or UNKNOWN_SHARD
    week = route_week(at)
    route = routes.get(payment_id)
    if route is not None and not route.expired_by(week):
        if week > route.week:
            routes[payment_id] = stamped(route.shard, week)
        return route.shard
    route = routes[payment_id] = stamped(event.company_code or UNKNOWN_SHARD, week)
    return route.shard
