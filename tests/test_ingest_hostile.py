"""Hostile and careless input at the ingest boundary: absurd times, clear accounts, deep or huge records."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pytest
from pydantic import AwareDatetime, TypeAdapter

from paysentry.contract import Event, InvalidEvent, TimeWindow, mask_account, parse_event
from paysentry.core import EmptyRuleset, Engine
from paysentry.event_time import local_time, utc_from_epoch
from paysentry.params import CompanyParams
from paysentry.redaction import redact_raw
from paysentry.replay import MemoryStateStore
from paysentry.settings import EngineSettings
from stream.ingest import IngestStage

KEY = b"test-key"
NOW = datetime.fromisoformat("2026-11-29T12:00:00+00:00").timestamp()
EXTREME_TIMES = ["9999-12-31T20:00:00Z", "0001-01-01T00:00:00+14:00"]
ACCOUNT = "6222020200112233445"
IBAN = "GB33BUKB20201555555555"
BASE = {
    "type": "payment.released", "event_id": "h-1", "event_time": "2026-11-29T10:00:00+08:00", "payment_id": "P1",
    "vendor_id": "V1", "amount": "1000.00", "currency": "CNY", "company_code": "CN01",
}  # fmt: skip
# Master data is passed on at once (a payment event may wait for the other inbound topics).
VENDOR = {"type": "vendor.updated", "event_id": "v-1", "event_time": "2026-11-29T10:00:00+08:00", "vendor_id": "V1"}


def refused(raw: Any, **kwargs: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw, account_key=KEY, **kwargs)
    return caught.value


def dumped(event: Event) -> str:
    return orjson.dumps(event.to_dict()).decode()


# -- 1. extreme but valid times ---------------------------------------------------------------------------


@pytest.mark.parametrize("when", EXTREME_TIMES)
def test_extreme_times_are_refused_at_ingest_with_a_reason(when: str) -> None:
    reason = refused(dict(BASE, event_time=when), now=NOW).reason
    assert reason.startswith("event_time:") and "1970" in reason and "producer's clock" in reason
    # Without a clock the engine's calendar bounds still apply: the core never sees such a time.
    assert refused(dict(BASE, event_time=when)).reason.startswith("event_time:")


def test_the_plausibility_window_names_its_limit_and_how_to_change_it() -> None:
    ahead = refused(dict(BASE, event_time="2100-01-01T00:00:00Z"), now=NOW).reason
    assert "event_time:" in ahead and "after the stream's clock" in ahead and "1 day allowed" in ahead
    assert "PAYSENTRY_MAX_EVENT_AHEAD" in ahead
    behind = refused(dict(BASE, event_time="2001-01-01T00:00:00Z"), now=NOW).reason
    assert "before the stream's clock" in behind and "3650 days allowed" in behind
    assert "PAYSENTRY_MAX_EVENT_BEHIND" in behind
    # A wider window takes the old event; without a clock it is within the calendar and taken too.
    wide = TimeWindow(ahead_seconds=86400, behind_seconds=40 * 365 * 86400)
    assert parse_event(dict(BASE, event_time="2001-01-01T00:00:00Z"), account_key=KEY, now=NOW, window=wide)
    assert parse_event(dict(BASE, event_time="2100-01-01T00:00:00Z"), account_key=KEY)


def test_an_event_two_hours_ahead_of_the_clock_is_accepted() -> None:
    event = parse_event(dict(BASE, event_time="2026-11-29T14:00:00Z"), account_key=KEY, now=NOW)
    assert event.event_time.hour == 14


def test_the_window_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSENTRY_MAX_EVENT_AHEAD", "2h")
    monkeypatch.setenv("PAYSENTRY_MAX_EVENT_BEHIND", "30d")
    assert EngineSettings().time_window() == TimeWindow(ahead_seconds=7200, behind_seconds=30 * 86400)
    monkeypatch.setenv("PAYSENTRY_MAX_EVENT_AHEAD", "3600")
    assert EngineSettings().time_window().ahead_seconds == 3600
    monkeypatch.setenv("PAYSENTRY_MAX_EVENT_AHEAD", "soon")
    with pytest.raises(ValueError, match="duration like"):
        EngineSettings()


@pytest.mark.parametrize("when", [*EXTREME_TIMES, "9999-12-31T23:59:59.999999-23:59", "0001-01-01T00:00:00+23:59"])
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Pacific/Kiritimati", "America/Adak", None])
def test_local_time_never_raises_on_a_time_pydantic_accepts(when: str, zone: str | None) -> None:
    moment = TypeAdapter(AwareDatetime).validate_python(when)
    local = local_time(moment, CompanyParams(timezone=zone))
    assert local == moment  # the same instant, on whatever clock could show it
    assert utc_from_epoch(int((moment - datetime.fromisoformat("1970-01-01T00:00:00+00:00")).total_seconds()))


class _Shanghai(EmptyRuleset):
    def company(self, company_code: str | None) -> CompanyParams:
        return CompanyParams(timezone="Asia/Shanghai")


@pytest.mark.parametrize("when", EXTREME_TIMES)
def test_the_core_survives_an_extreme_time_that_got_past_ingest(when: str) -> None:
    event = Event.model_validate(dict(BASE, event_time=when))  # as if read back from an internal topic
    decision = Engine(_Shanghai()).process(event, MemoryStateStore())
    assert decision is not None and decision.event_id == "h-1"


# -- the stream's ingest stage: refused records are dead-lettered, never routed -----------------------------


@dataclass
class _Message:
    value: Any
    offset: int
    topic: str = "erp.payments"
    partition: int = 0
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class _Record:
    """What the ingest agent receives for one inbound record."""

    message: _Message
    acked: bool = False

    def ack(self) -> None:
        self.acked = True


def _run_ingest(values: list[Any], **stage_args: Any) -> tuple[list[dict], list[dict], list[_Record]]:
    routed: list[dict] = []
    dead: list[dict] = []

    async def send_engine(**kwargs: Any) -> None:
        routed.append(orjson.loads(kwargs["value"]))

    async def send_deadletter(**kwargs: Any) -> None:
        dead.append(orjson.loads(kwargs["value"]))

    stage = IngestStage(account_key=KEY, partitions=1, partition_of=lambda shard: 0, routes={},
                        short_name=lambda topic: topic, send_engine=send_engine, send_deadletter=send_deadletter,
                        **stage_args)  # fmt: skip
    records = [_Record(_Message(value, offset)) for offset, value in enumerate(values)]

    async def feed() -> None:
        for record in records:
            await stage.handle(record)

    asyncio.run(feed())
    return routed, dead, records


def test_ingest_dead_letters_absurd_times_instead_of_routing_them() -> None:
    values = [orjson.dumps(dict(VENDOR, event_id=f"t-{i}", event_time=when)) for i, when in enumerate(EXTREME_TIMES)]
    values.append(orjson.dumps(dict(VENDOR, event_id="t-late", event_time="2100-01-01T00:00:00Z")))
    values.append(orjson.dumps(VENDOR))
    routed, dead, records = _run_ingest(values, clock=lambda: NOW)
    assert [r["ev"]["event_id"] for r in routed] == ["v-1"]  # only the plausible one reaches the engine
    assert [d["event_id"] for d in dead] == ["t-0", "t-1", "t-late"]
    assert all(d["reason"].startswith("event_time:") for d in dead)
    assert all(r.acked for r in records)


def test_ingest_uses_the_configured_window_and_the_wall_clock_by_default() -> None:
    soon = orjson.dumps(dict(VENDOR, event_time=datetime.fromtimestamp(time.time() + 7200).astimezone().isoformat()))
    routed, dead, _ = _run_ingest([soon])
    assert len(routed) == 1 and dead == []
    routed, dead, _ = _run_ingest([soon], time_window=TimeWindow(ahead_seconds=3600))
    assert routed == [] and "1 hour allowed" in dead[0]["reason"]


def test_ingest_survives_records_that_are_not_events_and_deep_ones() -> None:
    deep = b'{"type": "x", "a": ' + b"[" * 300 + b"]" * 300 + b"}"
    # A valid event nested 300 deep: orjson reads it, but would refuse to write it back out (> 254).
    deep_event = orjson.dumps(VENDOR)[:-1] + b', "nested": ' + b"[" * 300 + b"]" * 300 + b"}"
    values: list[Any] = [b"\xff", "text", None, deep, b'{"a": ' + b"[" * 1000 + b"]" * 1000 + b"}"]
    values.append(deep_event)
    routed, dead, records = _run_ingest(values, clock=lambda: NOW)
    assert routed == [] and len(dead) == len(values) and all(r.acked for r in records)
    assert "nested deeper than 16 levels" in dead[-1]["reason"]


# -- 6. no clear account leaves ingest ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "payment.created", "payee_account": ["6222", "0202", "0011", "2233", "445"]}',
        '{"type": "payment.created", "payee_account": {"number": "6222020200112233445"}}',
        '{"type": "payment.created", "payee_account": {"bank": "ICBC", "n": "62220202"}, "event_id": 5}',
        '{"type": "payment.created", "payee\\u005faccount": "6222020200112233445", "amount": "-1"}',
        '{"type": "payment.created", "payee\\u005faccount": "1234-5678", "amount": "-1"}',
        '{"type": "payment.created", "acct": "\\u0036\\u0032\\u0032\\u0032\\u0030\\u0032\\u0030\\u0032\\u0030\\u0030"}',
        "PAY-1,V1,6222020200112233445,125000.00,CNY",
        "PAY-1;V1;GB33 BUKB 2020 1555 5555 55;125000.00",
        "payee_account=6222 0202 0011 2233 445 amount=10",
        '{"type": "payment.created", "note": "wire to GB33BUKB20201555555555 today"',  # truncated
        '{"type": "payment.created", "iban": "gb33bukb20201555555555", "x": [[[6222020200112233445]]]}',
    ],
)
def test_dead_letter_copies_mask_every_account_shape(raw: str) -> None:
    redacted = redact_raw(raw)
    for clear in (ACCOUNT, "62220202", "6222 0202 0011", IBAN, IBAN.lower(), "BUKB 2020 1555", "1234-5678"):
        assert clear not in redacted
    assert "****" in redacted


def test_dead_letter_copies_keep_times_amounts_and_ids_readable() -> None:
    raw = '{"event_id": "e-1", "event_time": "2026-11-27T16:30:00+08:00", "amount": 1234567890123.4567, "bad":'
    assert redact_raw(raw) == raw
    assert redact_raw("PAY-2026-000123,INV-88812,125000.00") == "PAY-2026-000123,INV-88812,125000.00"


def test_a_dead_letter_copy_can_always_be_written() -> None:
    redacted = redact_raw('{"a": "\ud800 6222020200112233445"}')  # a lone surrogate, as a str may hold
    assert orjson.loads(orjson.dumps({"raw": redacted}))["raw"] == '{"a": "? ****3445"}'


def test_a_long_record_is_cut_in_the_dead_letter_copy_without_leaving_part_of_an_account() -> None:
    raw = "x" * 2040 + ACCOUNT + "y" * 100_000
    redacted = redact_raw(raw)
    assert len(redacted) < 2100 and "62220" not in redacted and redacted.endswith("[truncated]")


def test_the_dead_letter_record_itself_has_no_clear_account() -> None:
    bad = dict(BASE, event_id=ACCOUNT, amount=ACCOUNT, payee_account=[ACCOUNT])
    routed, dead, _ = _run_ingest([orjson.dumps(bad)], clock=lambda: NOW)
    assert routed == [] and ACCOUNT not in orjson.dumps(dead).decode()


@pytest.mark.parametrize("key", ["iban", "account", "bank_account", "acct", "account_number", "payeeAccount"])
def test_account_named_extras_are_masked(key: str) -> None:
    event = parse_event(dict(BASE, **{key: ACCOUNT}), account_key=KEY)
    assert event.extra[key] == "****3445" and ACCOUNT not in dumped(event)


def test_account_like_extra_values_are_masked_anywhere() -> None:
    data = dict(BASE, ref=IBAN, note=f"pay to {ACCOUNT[:4]} {ACCOUNT[4:8]} {ACCOUNT[8:]}", number=int(ACCOUNT),
                extra={"deep": [{"x": ACCOUNT}], ACCOUNT: 1}, batch="F110-2026-11-28", total=1234567.5)  # fmt: skip
    event = parse_event(data, account_key=KEY)
    text = dumped(event)
    assert ACCOUNT not in text and IBAN not in text and "62220202" not in text
    assert event.extra["ref"] == "****5555" and event.extra["number"] == "****3445"
    assert event.extra["batch"] == "F110-2026-11-28" and event.extra["total"] == 1234567.5


def test_free_text_fields_mask_accounts_but_identifiers_are_kept() -> None:
    event = parse_event(dict(BASE, type="psp.failed", status_reason=f"account {ACCOUNT} closed"), account_key=KEY)
    assert event.status_reason == "account ****3445 closed"


def test_inbound_hash_and_mask_are_never_trusted() -> None:
    forged = dict(BASE, payee_account_hash="f" * 32, payee_account_masked=ACCOUNT)
    event = parse_event(forged, account_key=KEY)
    assert event.payee_account_hash is None and event.payee_account_masked is None
    assert ACCOUNT not in dumped(event) and "f" * 32 not in dumped(event)
    with_account = parse_event(dict(forged, payee_account="GB33 BUKB 2020 1555 5555 55"), account_key=KEY)
    assert with_account.payee_account_masked == "****5555" and with_account.payee_account_hash != "f" * 32


@pytest.mark.parametrize(
    ("account", "masked"), [("1234", "****"), ("12345", "****5"), ("1234567", "****567"), ("12345678", "****5678")]
)
def test_a_mask_never_shows_a_short_account_whole(account: str, masked: str) -> None:
    assert mask_account(account) == masked
    assert parse_event(dict(BASE, payee_account=account), account_key=KEY).payee_account_masked == masked


# -- 7. depth and size are bounded at parse time -----------------------------------------------------------


@pytest.mark.parametrize("depth", [17, 254, 300, 1023])
def test_deep_nesting_is_refused_with_a_reason(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    raw = orjson.dumps(BASE)[:-1] + f', "x": {nested}}}'.encode()
    assert "nested deeper than 16 levels" in refused(raw).reason


def test_nesting_at_the_bound_is_taken_and_written_out_again() -> None:
    # The event object is level 1, `extra` level 2: an unknown field's value starts at level 3.
    nested = orjson.loads("[" * 14 + "]" * 14)
    event = parse_event(dict(BASE, x=nested), account_key=KEY)
    again = parse_event(orjson.dumps(event.to_dict()), account_key=KEY)
    assert again.extra == event.extra
    assert "nested deeper" in refused(dict(BASE, x=[nested])).reason


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"x": "a" * 70_000}, "more than the 65536 allowed"),
        ({"x": "a" * 5000}, "more than the 4096 allowed"),
        ({f"k{i}": i for i in range(33)}, "more than the 32 allowed"),
        ({"x": {f"k{i}": i for i in range(65)}}, "more than the 64 allowed"),
        ({"k" * 300: 1}, "more than 256"),
        ({"extra": ["a"]}, "extra: must be an object"),
        ({"x": 1, "extra": {"x": 2}}, "x: given both as a field and inside extra"),
    ],
)
def test_oversized_records_are_refused_with_a_reason(change: dict[str, Any], words: str) -> None:
    assert words in refused(dict(BASE, **change)).reason


def test_a_record_that_grows_when_written_out_is_refused_so_every_accepted_event_reads_back() -> None:
    grows = orjson.dumps(BASE)[:-1] + b', "x": [' + b",".join([b"1e5"] * 16_000) + b"]}"
    assert len(grows) < 65536
    assert "once written out" in refused(grows).reason
