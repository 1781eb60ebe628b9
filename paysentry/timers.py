"""The payments' pending timer checks (settlement SLA, unmatched platform events), by event time.

One queue serves the embedded run (`paysentry.replay.Replayer`) and each partition of the stream's
decision stage, so both fire the same timers in the same order: by due time, ties by payment id.
A payment has at most one pending check; rescheduling it supersedes the earlier one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator


class TimerQueue:
    def __init__(self) -> None:
        # Superseded entries stay in the heap (removing them is a linear search) and are skipped when
        # they come up: `_scheduled` says which one is current.
        self._heap: list[tuple[int, str]] = []
        self._scheduled: dict[str, tuple[int, str]] = {}  # payment id -> (due, shard)

    def schedule(self, payment_id: str, due: int | None, shard: str) -> None:
        """Check the payment (held in `shard`) at event time `due`; None: it has nothing pending.
        The same due time again keeps the pending check as it is, shard included."""
        if due is None:
            self._scheduled.pop(payment_id, None)
            return
        current = self._scheduled.get(payment_id)
        if current is None or current[0] != due:
            self._scheduled[payment_id] = (due, shard)
            heapq.heappush(self._heap, (due, payment_id))

    def pop_due(self, now: int) -> Iterator[tuple[int, str, str]]:
        """(due, payment id, shard) of each check due by event time `now`, removed as it is yielded.
        A check scheduled meanwhile (a fired payment's next one) is yielded too if it is due by `now`."""
        while self._heap and self._heap[0][0] <= now:
            due, payment_id = heapq.heappop(self._heap)
            current = self._scheduled.get(payment_id)
            if current is None or current[0] != due:
                continue  # superseded by a later schedule, or forgotten
            del self._scheduled[payment_id]
            yield due, payment_id, current[1]

    def forget(self, payment_id: str) -> None:
        self._scheduled.pop(payment_id, None)

    def __len__(self) -> int:
        """The payments with a pending check."""
        return len(self._scheduled)

    def __contains__(self, payment_id: object) -> bool:
        return payment_id in self._scheduled
