"""A synchronous façade over the dispatcher, for the embedded (in-process) run.

    alerts = EmbeddedAlerts()                 # default routes file, in-memory state, dry-run channels
    for decision in decisions:
        alerts.handle(decision, now=event_time)
    alerts.drain(last_time)                   # flush groups that are still waiting
    print(alerts.summary())                   # {"sent": {"payments-oncall/sms": 3, ...}, "deferred": {...}, ...}
    alerts.close()

The dispatcher runs on a private event loop in a background thread, so the façade works from plain
synchronous code and from inside another running loop alike. With real channels and a RedisStore it
sends for real; by default it only records what would be sent.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Coroutine, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from paysentry.alerts.channels import Channel, RecordingChannel
from paysentry.alerts.config import RoutesConfig
from paysentry.alerts.delivery import DeadLetterSink
from paysentry.alerts.dispatcher import AlertDispatcher, TickReport
from paysentry.alerts.loader import RoutesHolder, load_routes
from paysentry.alerts.model import Alert
from paysentry.alerts.settings import AlertSettings
from paysentry.alerts.state import OUTCOME_CAP
from paysentry.alerts.store import KVStore, MemoryKVStore
from paysentry.alerts.timing import aware, from_ts
from paysentry.contract import Decision

T = TypeVar("T")


class EmbeddedAlerts:
    def __init__(
        self,
        routes: RoutesConfig | RoutesHolder | str | Path | None = None,
        *,
        store: KVStore | None = None,
        channels: Mapping[str, Channel] | None = None,
        dead_letter: DeadLetterSink | None = None,
    ):
        if routes is None:
            routes = AlertSettings().alerts_routes_file
        if isinstance(routes, str | Path):
            routes = load_routes(routes)
        self.channels: Mapping[str, Channel] = channels or {
            "email": RecordingChannel("email"),
            "sms": RecordingChannel("sms"),
        }
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="paysentry-alerts", daemon=True)
        self._thread.start()
        self.dispatcher = AlertDispatcher(routes, store or MemoryKVStore(), self.channels, dead_letter=dead_letter)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def handle(self, decision: Decision, now: datetime) -> Alert | None:
        """Turn a decision into an alert (if it is one) and submit it; then do what is due at `now`."""
        alert = self._run(self.dispatcher.submit_decision(decision, now))
        self._run(self.dispatcher.tick(now))
        return alert

    def submit(self, alert: Alert, now: datetime) -> bool:
        return self._run(self.dispatcher.submit(alert, now))

    def tick(self, now: datetime) -> TickReport:
        return self._run(self.dispatcher.tick(now))

    def drain(self, now: datetime, horizon: timedelta = timedelta(minutes=30)) -> datetime:
        """Advance the clock from `now` through everything scheduled within `horizon`, ticking at each
        due time; returns the last time ticked."""
        now = aware(now)
        end = now + horizon
        self.tick(now)
        for _ in range(10_000):
            due = self._run(self.dispatcher.state.next_due())
            if due is None or from_ts(due) > end:
                break
            now = max(now, from_ts(due))
            self.tick(now)
        return now

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts of outcomes by status, then by `receiver/channel`."""
        outcomes = self._run(self.dispatcher.state.outcomes(OUTCOME_CAP))
        counts: dict[str, Counter[str]] = {}
        for outcome in outcomes:
            where = f"{outcome.receiver or '-'}/{outcome.channel or '-'}"
            counts.setdefault(outcome.status, Counter())[where] += 1
        return {status: dict(sorted(c.items())) for status, c in sorted(counts.items())}

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self.dispatcher.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> EmbeddedAlerts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
