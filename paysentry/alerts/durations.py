"""Durations written like Alertmanager's: "30s", "5m", "4h", "1d", "1w", "1h30m", "250ms"."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

MAX_DURATION = timedelta(days=3650)
"""Longest duration accepted anywhere (10 years): a silence or interval beyond is a typo."""
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"^((?:[0-9]+(?:ms|s|m|h|d|w|y))+)$")
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> timedelta:
    """Parse a duration; "0" and "0s" are zero. Raises ValueError with the accepted form, or when the
    duration is longer than MAX_DURATION."""
    text = text.strip()
    if text == "0":
        return timedelta(0)
    shown = text if len(text) <= 40 else text[:40] + "…"
    if not _DURATION.match(text):
        raise ValueError(f"{shown!r} is not a duration like '30s', '5m', '4h' or '1h30m'")
    millis = 0
    last = float("inf")
    for number, unit in _PART.findall(text):
        scale = _UNITS[unit]
        if scale >= last:
            raise ValueError(f"{shown!r}: units must go from largest to smallest, each once")
        last = scale
        if len(number) > 12:  # far beyond the limit, and int() of thousands of digits is refused anyway
            raise ValueError(f"{shown!r} is longer than {MAX_DURATION.days // 365} years")
        millis += int(number) * round(scale * 1000)
    if millis > MAX_DURATION.total_seconds() * 1000:
        raise ValueError(f"{shown!r} is longer than {MAX_DURATION.days // 365} years")
    return timedelta(milliseconds=millis)


def format_duration(value: timedelta) -> str:
    """The shortest duration text that parses back to `value` ("1h30m", "45s", "0s")."""
    millis = round(value.total_seconds() * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        size = int(_UNITS[unit] * 1000)
        if millis >= size:
            parts.append(f"{millis // size}{unit}")
            millis %= size
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts)


def _validate(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("must be a duration string like '30s', '5m' or '4h'")
    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_validate), PlainSerializer(format_duration, return_type=str)]
