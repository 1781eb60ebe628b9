"""Property: no input of any shape crashes the engine. Every input is either refused with a reason or
decided, and deciding keeps the decision inside the contract."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paysentry.contract import EVENT_TYPES, Decision, Event, InvalidEvent, parse_event
from paysentry.core import Engine
from paysentry.replay import Replayer
from tests.builders import KEY

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["", "0", "-1", "1e999", "NaN", "12.3456", "99999999999999.99"]),
)  # fmt: skip
_times = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()),
    st.sampled_from(["2026-11-27T16:30:00+08:00", "2026-11-27T16:30:00Z", "yesterday", "2026-02-30T00:00:00Z"]),
)
_field_values = {
    "type": st.one_of(st.sampled_from(EVENT_TYPES), _scalars),
    "event_id": st.one_of(st.text(min_size=1, max_size=8), _scalars),
    "event_time": st.one_of(_times, _scalars),
    "payment_id": st.one_of(st.sampled_from(["P1", "P2", "P3"]), _scalars),
    "vendor_id": st.one_of(st.sampled_from(["V1", "V2"]), _scalars),
    "company_code": st.one_of(st.sampled_from(["CN01", "US01"]), _scalars),
    "amount": st.one_of(st.decimals(min_value=0, max_value=10**16, places=2).map(str), _scalars),
    "fee": st.one_of(st.decimals(min_value=0, max_value=100, places=2).map(str), _scalars),
    "currency": st.one_of(st.sampled_from(["USD", "CNY", "XXX", "usd"]), _scalars),
    "channel": st.one_of(st.sampled_from(["wire", "sepa", "pigeon"]), _scalars),
    "payee_account": st.one_of(st.sampled_from(["6222020200112233445", "GB33BUKB20201555555555"]), _scalars),
    "approved_by": st.one_of(st.lists(st.sampled_from(["u1", "u2"]), max_size=3), _scalars),
    "created_by": st.one_of(st.sampled_from(["u1", "u2"]), _scalars),
    "invoice_id": st.one_of(st.sampled_from(["INV-001", "inv 1", "X"]), _scalars),
    "verdict": st.one_of(st.sampled_from(["fraud", "legit"]), _scalars),
    "due_date": st.one_of(st.dates().map(str), _scalars),
    "surprise": _scalars,
}
events = st.fixed_dictionaries({}, optional=_field_values)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, min_size=1, max_size=12))
def test_any_event_sequence_is_refused_or_decided(batch: list[dict]) -> None:
    replayer = Replayer(Engine(), KEY)
    for data in batch:
        try:
            event = parse_event(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS), account_key=KEY)
        except InvalidEvent as refused:
            assert refused.reason
            continue
        except orjson.JSONEncodeError:
            continue  # not representable as JSON (e.g. an integer beyond 64 bits): never reaches us
        assert isinstance(event, Event)
        for decision in replayer.feed(event):
            Decision.model_validate_json(decision.to_json())
            assert 0.0 <= decision.risk_score <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_are_refused(raw: bytes) -> None:
    try:
        parse_event(raw, account_key=KEY)
    except InvalidEvent as refused:
        assert refused.reason
