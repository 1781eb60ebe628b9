"""When an event may have happened: the engine's calendar and the plausibility window around the stream's clock,
and the conversions between an event's time and the engine's clock (epoch seconds) or a company's wall clock.

An event's time drives the engine's clock (windows, timers, sweeps), so one absurd time would move it for
everyone: an event far in the future would fire every timer at once. Such events are refused at ingest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from paysentry.params import CompanyParams


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """How far an event's time may be from the stream's clock and still be taken for a real event: a
    producer's clock that is off by years, or a typo in a year, is refused instead of moving timers."""

    ahead_seconds: int = 86400
    behind_seconds: int = 10 * 365 * 86400

    def __post_init__(self) -> None:
        if self.ahead_seconds < 0 or self.behind_seconds < 0:
            raise ValueError("a time window's bounds are durations, zero or more seconds")


DEFAULT_TIME_WINDOW = TimeWindow()
# Always applied, with or without a clock: every time inside can be shifted by the engine's longest
# windows and timers (years) and converted to any timezone without leaving the calendar.
EARLIEST_EVENT_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME = datetime(9000, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def _describe_duration(seconds: float) -> str:
    """A limit, exactly: '3650 days', '90 seconds'."""
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return _describe_gap(seconds)


def _describe_gap(seconds: float) -> str:
    unit, size = next(((u, s) for u, s in _UNITS if seconds >= s), _UNITS[-1])
    return f"about {round(seconds / size)} {unit}s"


def _describe_instant(seconds: float) -> str:
    try:
        return (_EPOCH + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError):
        return f"{seconds:g} s since 1970"


def check_event_time(moment: datetime, *, now: float | None, window: TimeWindow = DEFAULT_TIME_WINDOW) -> None:
    """Raise ValueError (the reason) if `moment` is outside the engine's calendar or, given the stream's
    clock `now` (seconds since 1970), outside the plausibility window around it."""
    if not EARLIEST_EVENT_TIME <= moment < LATEST_EVENT_TIME:
        raise ValueError(
            f"event_time: {moment.isoformat()} is outside the years 1970 to 8999 (UTC) that the engine "
            "handles; check the producer's clock"
        )
    if now is None:
        return
    at = (moment - _EPOCH) / timedelta(seconds=1)
    if at - now > window.ahead_seconds:
        raise ValueError(
            f"event_time: {moment.isoformat()} is {_describe_gap(at - now)} after the stream's clock "
            f"({_describe_instant(now)}), more than the {_describe_duration(window.ahead_seconds)} allowed; "
            "check the producer's clock (limit: PAYSENTRY_MAX_EVENT_AHEAD)"
        )
    if now - at > window.behind_seconds:
        raise ValueError(
            f"event_time: {moment.isoformat()} is {_describe_gap(now - at)} before the stream's clock "
            f"({_describe_instant(now)}), more than the {_describe_duration(window.behind_seconds)} allowed; "
            "check the producer's clock, or raise PAYSENTRY_MAX_EVENT_BEHIND to take older history"
        )


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


_FIRST_SECOND = -62135596800  # 0001-01-01T00:00:00Z
_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z


def utc_from_epoch(at: int) -> datetime:
    """Seconds since 1970 as a UTC datetime, held to the calendar's ends instead of overflowing."""
    return _EPOCH + timedelta(seconds=min(max(at, _FIRST_SECOND), _LAST_SECOND))


def local_time(moment: datetime, company: CompanyParams) -> datetime:
    """The moment on the company's wall clock. Within a day of the calendar's ends (year 1 or 9999) the
    local time may not exist as a datetime; the moment is then kept in its own offset rather than failing
    (ingest refuses such times; this keeps the core safe whatever reaches it)."""
    zone = company.zone()
    if zone is None:
        return moment
    try:
        return moment.astimezone(zone)
    except (OverflowError, ValueError):
        return moment
