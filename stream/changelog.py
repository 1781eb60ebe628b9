"""Checkpoint writes to the `shard-state` table, past Faust's per-write machinery.

A Faust table write sets the local store and queues one changelog record in Faust's producer buffer,
which publishes them one at a time (codecs, callbacks, sensors); when more than 100 are queued, Faust
holds back every agent's input until the buffer drains. A checkpoint writes hundreds of entities at
once, so it paid that per entity and stalled both stages. `ChangelogBatch` does what the table write
does (the local store, one changelog record with the same key and value bytes in the same partition,
the store's persisted offset) with one producer send per record, in the order written, so the
changelog holds exactly what Faust would have written and recovery reads it the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from faust.types import TP

# (topic, key, value or None for a deletion, partition, headers) -> the producer's future of the record
Send = Callable[[str, bytes, bytes | None, int, Any], Awaitable[Any]]


def local_reader(table: Any) -> Callable[[str], Any]:
    """`get` on the table's local store, past the table's own read (which tells every Faust sensor of
    each read and turns a missing key into a KeyError first): the store holds what the table holds.
    A plain dict, as unit tests give, is read as it is."""
    store = getattr(table, "data", table)
    return store.get


class ChangelogBatch(MutableMapping[str, Any]):
    """The table as the checkpoint functions see it: reads as the table, writes kept until `send`."""

    def __init__(self, table: Any, send: Send) -> None:
        self.table, self._send = table, send
        self.pending: list[tuple[str, Any]] = []  # (key, value as the table holds it; None: deleted)
        self._last: Any = None  # the future of the last record sent

    def __getitem__(self, key: str) -> Any:
        return self.table[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.table.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.table

    def __iter__(self) -> Iterator[str]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)

    def __setitem__(self, key: str, value: Any) -> None:
        self.table.data[key] = value  # the local store, without the table's own changelog send
        self.pending.append((key, value))

    def __delitem__(self, key: str) -> None:
        del self.table.data[key]
        self.pending.append((key, None))  # a tombstone, as the table writes for a deletion

    async def send(self, partition: int) -> None:
        """Hand the writes so far to the producer, in order, to the changelog partition of `partition`,
        serialized as the table serializes them (recovery decodes them the same way)."""
        table = self.table
        changelog = table.changelog_topic
        topic = changelog.get_topic_name()
        for key, value in self.pending:
            raw_key, headers = changelog.prepare_key(key, table.key_serializer)
            raw_value = None
            if value is not None:
                raw_value, headers = changelog.prepare_value(value, table.value_serializer, headers=headers)
            self._last = await self._send(topic, raw_key, raw_value, partition, headers)
        self.pending.clear()

    def persisted(self, partition: int) -> None:
        """Once the producer was flushed: tell the store how far the changelog holds its data (what a
        persistent store resumes recovery from), as the table does after each of its own writes."""
        if self._last is not None and self._last.done() and not self._last.exception():
            topic = self.table.changelog_topic.get_topic_name()
            self.table.data.set_persisted_offset(TP(topic, partition), self._last.result().offset)
