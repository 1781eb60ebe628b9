"""Time arithmetic for alerting, pure: every function takes `now` explicitly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from paysentry.alerts.config import DeliveryPolicy, QuietHours


def aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("times must carry a time zone (use datetime.now(UTC))")
    return now.astimezone(UTC)


def ts(now: datetime) -> float:
    return aware(now).timestamp()


def from_ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def quiet_until(quiet: QuietHours, now: datetime) -> datetime | None:
    """When quiet hours are on at `now`, the moment they end (UTC); otherwise None.

    The window is [start, end) in local time and may wrap past midnight (22:00 → 07:00)."""
    zone = ZoneInfo(quiet.timezone)
    local = aware(now).astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        inside = quiet.start <= clock < quiet.end
        end_day = local.date()
    else:
        inside = clock >= quiet.start or clock < quiet.end
        end_day = local.date() + timedelta(days=1) if clock >= quiet.start else local.date()
    if not inside:
        return None
    end_local = datetime.combine(end_day, quiet.end, tzinfo=zone)
    return end_local.astimezone(UTC)


def rate_window(per: timedelta, now: datetime) -> tuple[int, datetime]:
    """The fixed window `now` falls in (windows are aligned to the Unix epoch) and when it ends."""
    size = per.total_seconds()
    index = int(ts(now) // size)
    return index, from_ts((index + 1) * size)


def retry_delay(policy: DeliveryPolicy, failed_attempts: int) -> timedelta:
    """Exponential backoff: backoff, 2×backoff, 4×backoff, … capped at max_backoff."""
    delay = policy.backoff * (2 ** max(failed_attempts - 1, 0))
    return min(delay, policy.max_backoff)
