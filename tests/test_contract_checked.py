"""`Event.from_checked_dict`: the stream's decision stage rebuilds an event its ingest stage validated and
signed without validating it again; it must be the very event validation gives."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paysentry.contract import Event, parse_event
from paysentry.simulate import SimulationConfig, simulate

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract"
KEY = b"test-key"


def _valid_examples() -> list[dict[str, Any]]:
    path = CONTRACT / "examples" / "valid.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _as_routed(raw: dict[str, Any]) -> dict[str, Any]:
    """What the ingest stage puts in a signed `engine.events` record, read back from its bytes."""
    return orjson.loads(orjson.dumps(parse_event(raw, account_key=KEY).to_dict()))


def assert_same_event(data: dict[str, Any]) -> None:
    checked, validated = Event.from_checked_dict(data), Event.model_validate(data)
    assert checked == validated
    assert checked.model_dump() == validated.model_dump()
    assert checked.to_dict() == validated.to_dict() == data
    assert checked.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
    assert list(checked.__dict__) == list(validated.__dict__)  # same field order
    for name, value in validated.__dict__.items():
        assert type(checked.__dict__[name]) is type(value), name
    # the same time zone object, so every rendering of the time (str, isoformat, tzname) is the same
    assert type(checked.event_time.tzinfo) is type(validated.event_time.tzinfo)
    assert checked.event_time.tzname() == validated.event_time.tzname()
    assert str(checked.event_time) == str(validated.event_time)


@pytest.mark.parametrize("raw", _valid_examples(), ids=lambda r: r["event_id"])
def test_every_valid_example_is_rebuilt_as_validation_builds_it(raw: dict[str, Any]) -> None:
    assert_same_event(_as_routed(raw))


def test_a_simulated_month_is_rebuilt_as_validation_builds_it() -> None:
    events, labels = simulate(SimulationConfig(days=30, seed=11))
    rows = [*events, *labels]
    assert len(rows) > 5_000
    kinds = set()
    for raw in rows:
        data = _as_routed(raw)
        kinds.update(name for name in ("amount", "fee", "due_date", "approved_by", "extra") if data.get(name))
        assert_same_event(data)
    assert kinds == {"amount", "fee", "due_date", "approved_by", "extra"}  # every conversion was exercised


@given(
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(8998, 12, 31)),
    offset_minutes=st.integers(min_value=-23 * 60, max_value=23 * 60),
    amount=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("999999999999999.9999"), places=4),
    fee=st.decimals(min_value=Decimal(0), max_value=Decimal("99999.99"), places=2),
    due=st.dates(min_value=date(1971, 1, 1), max_value=date(8998, 12, 31)),
)
def test_times_dates_and_money_convert_as_validation_converts(
    moment: datetime, offset_minutes: int, amount: Decimal, fee: Decimal, due: date
) -> None:
    sign = "+" if offset_minutes >= 0 else "-"
    stamp = f"{moment.isoformat()}{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    raw = {"type": "psp.settled", "event_id": "e-1", "event_time": stamp, "payment_id": "P-1",
           "amount": str(amount), "currency": "EUR", "fee": str(fee), "fee_currency": "EUR",
           "due_date": due.isoformat()}  # fmt: skip
    assert_same_event(orjson.loads(orjson.dumps(Event.model_validate(raw).to_dict())))


def test_the_rebuilt_event_does_not_share_lists_or_dicts_with_the_record() -> None:
    data = _as_routed({"type": "payment.approved", "event_id": "e-2", "event_time": "2026-11-27T09:15:02Z",
                       "payment_id": "P-2", "vendor_id": "V-2", "amount": "10.00", "currency": "EUR",
                       "approved_by": ["u-1"], "note": "kept under extra"})  # fmt: skip
    event = Event.from_checked_dict(data)
    data["approved_by"].append("u-2")
    data["extra"]["note"] = "changed"
    assert event.approved_by == ["u-1"] and event.extra == {"note": "kept under extra"}


@pytest.mark.parametrize(
    "data",
    [
        {"event_id": "e-3", "event_time": "2026-11-27T09:15:02Z"},  # no type
        {"type": "vendor.updated", "event_id": "e-3"},  # no time
        {"type": "vendor.updated", "event_id": "e-3", "event_time": "2026-11-27T09:15:02Z", "vendor_id": "V",
         "payee_account": "DE89370400440532013000"},  # a field an event never carries past ingest
    ],
)  # fmt: skip
def test_a_record_that_is_not_an_ingested_event_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not an event as written at ingest"):
        Event.from_checked_dict(data)


def test_a_time_without_an_offset_is_refused_as_validation_refuses_it() -> None:
    with pytest.raises(ValueError):
        Event.from_checked_dict({"type": "vendor.updated", "event_id": "e-4", "event_time": "2026-11-27T09:15:02",
                                 "vendor_id": "V"})  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value"),
    [("amount", "a lot"), ("fee", ["1"]), ("due_date", "someday"), ("event_time", 1_700_000_000), ("extra", "x")],
)
def test_a_value_that_does_not_convert_is_refused_naming_its_field(field: str, value: Any) -> None:
    data = _as_routed({"type": "psp.settled", "event_id": "e-5", "event_time": "2026-11-27T09:15:02Z",
                       "payment_id": "P-5", "amount": "10.00", "currency": "EUR"})  # fmt: skip
    data[field] = value
    with pytest.raises(ValueError, match=f"^{field}: not as written at ingest"):
        Event.from_checked_dict(data)
