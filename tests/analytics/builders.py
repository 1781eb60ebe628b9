"""Hand-built event streams with known KPIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

T0 = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)


class Stream:
    """Builds contract events with increasing ids; `at` is an offset from T0."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, at: timedelta, payment_id: str, **fields: Any) -> dict[str, Any]:
        event = {
            "type": kind,
            "event_id": f"e{len(self.events) + 1:05d}",
            "event_time": (T0 + at).isoformat(),
            "payment_id": payment_id,
            **fields,
        }
        if kind.startswith("payment.") or kind.startswith("psp."):
            event.setdefault("amount", "100.00")
            event.setdefault("currency", "EUR")
        if kind.startswith("payment."):
            event.setdefault("vendor_id", "V1")
        self.events.append(event)
        return event

    def payment(self, payment_id: str, at: timedelta, **fields: Any) -> None:
        """created, approved after 1 h, released after 2 h, submitted a minute later."""
        self.add("payment.created", at, payment_id, **fields)
        self.add("payment.approved", at + HOUR, payment_id, approved_by=["u2"], **fields)
        self.add("payment.released", at + 2 * HOUR, payment_id, **fields)
        platform = {k: v for k, v in fields.items() if k in ("company_code", "amount", "currency", "channel")}
        self.add("psp.submitted", at + 2 * HOUR + timedelta(minutes=1), payment_id, **platform)

    def write(self, path: Path, extra_lines: list[bytes] = ()) -> Path:  # type: ignore[assignment]
        with path.open("wb") as out:
            for event in self.events:
                out.write(orjson.dumps(event) + b"\n")
            for line in extra_lines:
                out.write(line + b"\n")
        return path
