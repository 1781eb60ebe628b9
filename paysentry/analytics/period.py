"""What the KPI and the reconciliation builders share: the period [start, end) of event time they report
on, and the `PaymentTracker` that tells them when a payment closes (`_closed`), is still without an
outcome `sla_hours` after its release (`_sla`), or turns out to be one the ERP never announced
(`_orphan`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from paysentry.analytics.tracker import DAY, PaymentTracker, Track


class PeriodBuilder(ABC):
    def __init__(
        self,
        start: datetime | None,
        end: datetime | None,
        *,
        sla_hours: float,
        max_tracked: int,
        horizon_days: float,
    ) -> None:
        self.start, self.end, self.sla_hours = start, end, sla_hours
        self._start_ts = start.timestamp() if start else float("-inf")
        self._end_ts = end.timestamp() if end else float("inf")
        self.tracker = PaymentTracker(
            self._closed,
            max_tracked=max_tracked,
            horizon_seconds=horizon_days * DAY,
            sla_seconds=sla_hours * 3600,
            on_sla=self._sla,
            on_orphan=self._orphan,
        )

    def _in_period(self, at: float | None) -> bool:
        return at is not None and self._start_ts <= at < self._end_ts

    @abstractmethod
    def _closed(self, track: Track, reason: str) -> None: ...

    @abstractmethod
    def _sla(self, track: Track) -> None: ...

    @abstractmethod
    def _orphan(self, track: Track) -> None: ...

    def finish(self) -> None:
        """End of input: fire the timers due by the period's end (or the last event), close the rest."""
        self.tracker.finish(self._end_ts if self.end is not None else None)

    def period_json(self) -> dict[str, str | None]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
        }
