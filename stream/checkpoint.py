"""The checkpoint protocol of a decision partition, in the `shard-state` table.

A checkpoint of partition p, generation g, is written in this order:

1. its entities (encoded; an empty value is a deletion), split into chunk records
   `~ckpt/<p>/<g % 2>/<n>` = {"gen": g, "entities": {key: text}}: two slots, so a new checkpoint never
   overwrites the chunks of the last complete one;
2. the header `~ckpt/<p>` = {"gen": g, "chunks": count, "out": {topic: next output offset}};
3. the entities themselves, under their own keys.

The header follows its chunks in the same changelog partition, so a new owner that finds a header finds
all its chunks: `recover` re-applies them (finishing a checkpoint cut short between 2 and 3), which makes
a checkpoint all or nothing. Workers of every version read and write this exact layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

CHECKPOINT_KEY = "~ckpt/{partition}"
CHUNK_KEY = "~ckpt/{partition}/{slot}/{number}"  # two slots: a new checkpoint never overwrites the last one
CHUNK_BYTES = 256 * 1024

Table = MutableMapping[str, bytes]


@dataclass
class Recovered:
    """What the last checkpoint of a partition says (generation 0, no offsets: there is none)."""

    generation: int = 0
    out: dict[str, int] = field(default_factory=dict)


def write_checkpoint(table: Table, partition: int, generation: int, entities: dict[str, bytes],
                     out: dict[str, int]) -> None:  # fmt: skip
    """Steps 1 and 2: the chunks, then the header that makes them the partition's checkpoint."""
    chunks = _chunks(entities)
    for number, chunk in enumerate(chunks):
        record = {"gen": generation, "entities": {k: v.decode() for k, v in chunk.items()}}
        table[CHUNK_KEY.format(partition=partition, slot=generation % 2, number=number)] = orjson.dumps(record)
    header = {"gen": generation, "chunks": len(chunks), "out": out}
    table[CHECKPOINT_KEY.format(partition=partition)] = orjson.dumps(header)


def apply_entities(table: Table, entities: Iterable[tuple[str, bytes]]) -> None:
    """Step 3: the entities under their own keys."""
    for key, value in entities:
        write(table, key, value)


def recover(table: Table, partition: int) -> Recovered:
    """The partition's last checkpoint, its entities written to the table if they were not all yet."""
    raw = table.get(CHECKPOINT_KEY.format(partition=partition))
    if raw is None:
        return Recovered()
    header = orjson.loads(raw)
    for key, encoded in _unwritten(table, partition, header):
        write(table, key, encoded)  # finish a checkpoint cut short
    return Recovered(header["gen"], dict(header["out"]))


def cut_short(table: Table, partition: int) -> bool:
    """True if the partition's last checkpoint has entities not yet under their own keys (`recover`
    writes them, which a Faust table allows only in the context of a record)."""
    raw = table.get(CHECKPOINT_KEY.format(partition=partition))
    return raw is not None and any(True for _ in _unwritten(table, partition, orjson.loads(raw)))


def _unwritten(table: Table, partition: int, header: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    for number in range(header["chunks"]):
        chunk = orjson.loads(table[CHUNK_KEY.format(partition=partition, slot=header["gen"] % 2, number=number)])
        assert chunk["gen"] == header["gen"], "a checkpoint's chunks precede its header in the changelog"
        for key, value in chunk["entities"].items():
            encoded = value.encode()
            if (table.get(key) or b"") != encoded:
                yield key, encoded


def write(table: Table, key: str, value: bytes) -> None:
    """A table write; an empty value deletes the key (a tombstone in the changelog)."""
    if value:
        table[key] = value
    elif key in table:
        del table[key]


def _chunks(entities: dict[str, bytes]) -> list[dict[str, bytes]]:
    """Split a checkpoint into records that fit a Kafka message comfortably."""
    chunks: list[dict[str, bytes]] = [{}]
    size = 0
    for key, value in entities.items():
        if size and size + len(value) > CHUNK_BYTES:
            chunks.append({})
            size = 0
        chunks[-1][key] = value
        size += len(value) + len(key)
    return chunks
