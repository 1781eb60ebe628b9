"""Event-time order for an input of any length, in bounded memory.

Items are `(micros, line number, raw line)`: sorting them orders events by event time, ties in input
order. Up to `limit` items are sorted in memory; beyond that, sorted runs of `limit` items are spilled to
temporary files and merged back (`heapq.merge`), so memory depends on `limit`, not on the input's length.
"""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

IN_MEMORY_ITEMS = 100_000
MAX_OPEN_RUNS = 64  # merge runs in passes beyond this, to stay well inside the open-files limit

Item = tuple[int, int, bytes]


def time_ordered(items: Iterable[Item], *, limit: int = IN_MEMORY_ITEMS) -> Iterator[Item]:
    """`items` sorted by (micros, line number); the input is read to its end before the first is yielded."""
    batch: list[Item] = []
    runs: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="paysentry-sort-") as spill:
        for item in items:
            batch.append(item)
            if len(batch) >= limit:
                runs.append(_write_run(Path(spill) / f"run-{len(runs)}", sorted(batch)))
                batch = []
        batch.sort()
        if not runs:
            yield from batch
            return
        if batch:
            runs.append(_write_run(Path(spill) / f"run-{len(runs)}", batch))
        while len(runs) > MAX_OPEN_RUNS:
            first, runs = runs[:MAX_OPEN_RUNS], runs[MAX_OPEN_RUNS:]
            runs.append(_merge_runs(first, Path(spill) / f"run-{len(runs) + len(first)}-merged"))
        handles = [path.open("rb") for path in runs]
        try:
            yield from heapq.merge(*(_read_run(handle) for handle in handles))
        finally:
            for handle in handles:
                handle.close()


def _write_run(path: Path, items: Iterable[Item]) -> Path:
    with path.open("wb") as handle:
        for micros, number, raw in items:
            handle.write(b"%d %d " % (micros, number) + raw.rstrip(b"\n") + b"\n")
    return path


def _read_run(handle: BinaryIO) -> Iterator[Item]:
    for line in handle:
        micros, number, raw = line.split(b" ", 2)
        yield int(micros), int(number), raw


def _merge_runs(paths: list[Path], into: Path) -> Path:
    handles = [path.open("rb") for path in paths]
    try:
        _write_run(into, heapq.merge(*(_read_run(handle) for handle in handles)))
    finally:
        for handle in handles:
            handle.close()
    for path in paths:
        path.unlink()
    return into
