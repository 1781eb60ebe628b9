"""The `routes` table (payment id -> shard) as the mapping `paysentry.sharding.shard_for` expects, and
its sweep.

A table value is `week:partition:shard`: the route's stamp (`paysentry.sharding.Route`), the changelog
partition it was written to, and the shard. The partition is there for the sweep: the table's local
store holds every partition this worker owns, and each ingest group deletes only its own expired routes.

A new or restamped route is in the table at once; its changelog record goes out with the next
micro-batch (`send`), one producer send each rather than Faust's per-write send (stream/changelog.py), to
the changelog partition of the record that made it, as the table's own write would.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import faust

from paysentry.sharding import ROUTE_MEMORY_WEEKS, Route
from stream.changelog import ChangelogBatch, Send, local_reader

log = logging.getLogger(__name__)
# A route written before routes were stamped (a plain shard): read as never expiring. Such routes are a
# fixed set (every route written since is stamped), so they cannot grow the table.
UNSTAMPED = 1 << 62


def encode_route(route: Route, partition: int) -> str:
    return f"{route.week}:{partition}:{route.shard}"


@functools.lru_cache(maxsize=4096)
def decode_route(value: str) -> tuple[Route, int | None]:
    """The route and the changelog partition it was written to (None: an unstamped route). Values repeat
    (one per shard, week and partition), and each routed event reads its route twice (`live_route`, then
    `shard_for`): each is decoded once."""
    week, _, rest = value.partition(":")
    partition, _, shard = rest.partition(":")
    try:
        return Route(shard, int(week)), int(partition)
    except ValueError:
        return Route(value, UNSTAMPED), None


class RouteTable:
    """payment id -> Route over the `routes` table, and each ingest group's sweep of it."""

    def __init__(self, table: Any, send: Send) -> None:
        self.table, self._send = table, send
        self._read = local_reader(table)
        self.batches: dict[int, ChangelogBatch] = {}
        # ingest partition -> week -> payment ids stamped with that week (kept until the week expires;
        # a route stamped again later is also under its new week, and checked before it is deleted)
        self.by_week: dict[int, dict[int, set[str]]] = {}
        self.swept: dict[int, int] = {}  # ingest partition -> week of its last sweep

    def get(self, key: str) -> Route | None:
        value = self._read(key)
        return None if value is None else decode_route(value)[0]

    def __setitem__(self, key: str, route: Route) -> None:
        event = faust.current_event()
        if event is None:
            raise RuntimeError("a route is written only while a record is handled")
        self.write(event.message.partition, key, route)

    def write(self, partition: int, key: str, route: Route) -> None:
        self._batch(partition)[key] = encode_route(route, partition)
        weeks = self.by_week.get(partition)
        if weeks is not None:
            weeks.setdefault(route.week, set()).add(key)

    def _batch(self, partition: int) -> ChangelogBatch:
        batch = self.batches.get(partition)
        if batch is None:
            batch = self.batches[partition] = ChangelogBatch(self.table, self._send)
        return batch

    def sweep(self, partition: int, week: int) -> int:
        """Delete the partition's routes expired by `week` (nothing routed from now on is older);
        the deletions go out with the next `send`. Returns how many were deleted."""
        if self.swept.get(partition, week - 1) >= week:
            return 0  # routes expire by the week: one pass a week is enough
        self.swept[partition] = week
        weeks = self.by_week.get(partition)
        if weeks is None:
            weeks = self.by_week[partition] = self._index(partition)
        deleted = 0
        for expired_week in sorted(w for w in weeks if w + ROUTE_MEMORY_WEEKS < week):
            for key in weeks.pop(expired_week):
                value = self._read(key)
                if value is None:
                    continue
                route, written_to = decode_route(value)
                if written_to == partition and route.expired_by(week):
                    del self._batch(partition)[key]
                    deleted += 1
        if deleted:
            log.info("ingest partition %d: swept %d expired routes", partition, deleted)
        return deleted

    def _index(self, partition: int) -> dict[int, set[str]]:
        """Once per owner: the partition's routes in the local store by their week (the store holds
        every owned partition's)."""
        weeks: dict[int, set[str]] = {}
        for key, value in list(self.table.items()):
            route, written_to = decode_route(value)
            if written_to == partition:
                weeks.setdefault(route.week, set()).add(key)
        return weeks

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked: the next owner indexes their routes again."""
        for partition in partitions:
            self.by_week.pop(partition, None)
            self.swept.pop(partition, None)

    async def send(self) -> None:
        for partition, batch in self.batches.items():
            batch.persisted(partition)  # the records sent last time, if the producer has them by now
            if batch.pending:
                await batch.send(partition)
