"""Reading events and decisions files for analytics: one line at a time, each line bounded.

A line longer than the contract allows is refused without being read into memory whole; a bad event goes
to the caller as `Rejected` (its reason, never the clear account), a bad decision line is counted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from paysentry.analytics.kpis import KpiBuilder
from paysentry.contract import MAX_DECISION_BYTES, Decision, Event
from paysentry.decode import MAX_RECORD_BYTES
from paysentry.replay import Rejected, read_events

_CHUNK = 64 * 1024


def bounded_lines(path: Path, limit: int) -> Iterator[bytes | None]:
    """The file's lines; None in place of a line longer than `limit` bytes (skipped, not kept)."""
    with path.open("rb") as handle:
        while True:
            line = handle.readline(limit + 1)
            if not line:
                return
            if len(line) > limit and not line.endswith(b"\n"):
                while True:  # drain the rest of the overlong line in bounded chunks
                    rest = handle.readline(_CHUNK)
                    if not rest or rest.endswith(b"\n"):
                        break
                yield None
                continue
            yield line


def refuse_overlong(lines: Iterable[bytes | None], on_rejected: Callable[[Rejected], None]) -> Iterator[bytes]:
    """Events lines as `bounded_lines` gives them, each None (an event line too long to read) reported to
    `on_rejected` at its line number and replaced by an empty line, which keeps the numbers in step."""
    for number, line in enumerate(lines, start=1):
        if line is None:
            on_rejected(Rejected(f"line longer than {MAX_RECORD_BYTES} bytes", number, ""))
            yield b""
        else:
            yield line


def iter_events(
    path: Path, on_rejected: Callable[[Rejected], None], account_key: bytes | None = None
) -> Iterator[Event]:
    """Valid events of a JSON Lines file, in file order. The account hash key only links accounts within
    this run (analytics never shows a hash), so a throw-away key is used unless one is given."""
    key = account_key or os.urandom(32)
    for item in read_events(refuse_overlong(bounded_lines(path, MAX_RECORD_BYTES), on_rejected), key):
        if isinstance(item, Rejected):
            on_rejected(item)
        else:
            yield item


def iter_decisions(path: Path, on_bad: Callable[[int, str], None]) -> Iterator[Decision]:
    for number, line in enumerate(bounded_lines(path, MAX_DECISION_BYTES), start=1):
        if line is None:
            on_bad(number, f"line longer than {MAX_DECISION_BYTES} bytes")
            continue
        if not line.strip():
            continue
        try:
            yield Decision.model_validate_json(line)
        except ValidationError as exc:
            on_bad(number, f"not a decision record ({exc.error_count()} problems)")


def kpis_from(
    events: Iterable[Event],
    decisions: Iterable[Decision] = (),
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    sla_hours: float = 72.0,
) -> dict[str, Any]:
    """The KPI dict for [start, end) from parsed events and decisions: what a web page or a notebook
    calls. Events first (they carry the verdicts the rule precision needs), then decisions."""
    builder = KpiBuilder(start, end, sla_hours=sla_hours)
    for event in events:
        builder.add_event(event)
    for decision in decisions:
        builder.add_decision(decision)
    return builder.result()


def compute_kpis(
    events_path: Path,
    decisions_path: Path | None = None,
    *,
    labels_path: Path | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    sla_hours: float = 72.0,
    max_tracked: int = 200_000,
    return_window_days: float = 10.0,
) -> dict[str, Any]:
    """The KPI dict for [start, end) from files (events, optional labels and decisions)."""
    builder = KpiBuilder(
        start, end, sla_hours=sla_hours, max_tracked=max_tracked, return_window_days=return_window_days
    )
    bad_decisions = [0]
    for path in (events_path, labels_path):
        if path is not None:
            for event in iter_events(path, lambda rejected: builder.add_rejected(rejected.reason)):
                builder.add_event(event)
    if decisions_path is not None:
        for decision in iter_decisions(
            decisions_path, lambda number, reason: bad_decisions.__setitem__(0, bad_decisions[0] + 1)
        ):
            builder.add_decision(decision)
    result = builder.result()
    result["exceptions"]["unreadable_decision_lines"] = bad_decisions[0]
    return result
