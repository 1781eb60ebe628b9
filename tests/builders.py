"""Small builders of contract events for tests (dicts, as a source would send them)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from paysentry.contract import Event, parse_event

KEY = b"test-key"
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=timezone(timedelta(hours=8)))
_ids = itertools.count(1)


def at(hours: float = 0, days: float = 0) -> str:
    return (T0 + timedelta(hours=hours, days=days)).isoformat()


def raw(type_: str, when: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "event_id": fields.pop("event_id", f"t-{next(_ids)}"), "event_time": when, **fields}


def release(payment_id: str, when: str, amount: str = "1000.00", vendor: str = "V1", **fields: Any) -> dict:
    base = {"payment_id": payment_id, "vendor_id": vendor, "amount": amount, "currency": "USD",
            "company_code": "US01", "channel": "ach", "created_by": "u-clerk", "approved_by": ["u-boss"],
            "payee_account": "111122223333"}  # fmt: skip
    return raw("payment.released", when, **(base | fields))


def settle(payment_id: str, when: str, amount: str = "1000.00", type_: str = "psp.settled", **fields: Any) -> dict:
    return raw(type_, when, **({"payment_id": payment_id, "amount": amount, "currency": "USD", "channel": "ach"}
                               | fields))  # fmt: skip


def vendor(vendor_id: str, when: str, account: str, type_: str = "vendor.created") -> dict:
    return raw(type_, when, vendor_id=vendor_id, payee_account=account)


def parse(data: dict[str, Any]) -> Event:
    return parse_event(data, account_key=KEY)
