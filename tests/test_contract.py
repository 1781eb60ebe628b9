"""The contract's own examples: every valid line parses, every invalid one is refused with its reason."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import jsonschema
import orjson
import pytest

from paysentry.contract import Decision, InvalidEvent, RuleHit, parse_event

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract"
KEY = b"test-key"


def _lines(name: str) -> list[dict]:
    return [orjson.loads(line) for line in (CONTRACT / "examples" / name).read_bytes().splitlines() if line.strip()]


@pytest.mark.parametrize("raw", _lines("valid.jsonl"), ids=lambda r: r["event_id"])
def test_every_valid_example_parses(raw: dict) -> None:
    event = parse_event(raw, account_key=KEY)
    assert event.event_id == raw["event_id"]
    assert event.event_time.tzinfo is not None
    if "amount" in raw:
        assert isinstance(event.amount, Decimal) and event.amount == Decimal(str(raw["amount"]))


# Which field each invalid example must be refused for: the reason has to name it.
EXPECTED_FIELD = {
    "x-01": "payment_id", "x-02": "amount", "x-03": "amount", "x-04": "amount", "x-05": "currency",
    "x-06": "event_time", "x-07": "event_time", "x-08": "type", "x-10": "amount", "x-11": "verdict",
    "x-12": "vendor_id", "x-13": "channel", "x-14": "approved_by", "x-15": "amount",
}  # fmt: skip


@pytest.mark.parametrize("raw", _lines("invalid.jsonl"), ids=lambda r: r["_why"])
def test_every_invalid_example_is_refused_naming_the_field(raw: dict) -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_event(raw, account_key=KEY)
    field = EXPECTED_FIELD.get(raw.get("event_id", ""), "event_id")
    assert field in refused.value.reason


def test_negative_amount_reason_says_positive() -> None:
    with pytest.raises(InvalidEvent, match="amount: must be positive"):
        parse_event(_lines("invalid.jsonl")[1], account_key=KEY)


def test_payee_account_is_replaced_by_hash_and_mask() -> None:
    raw = _lines("valid.jsonl")[1]
    event = parse_event(raw, account_key=KEY)
    dumped = orjson.dumps(event.to_dict()).decode()
    assert raw["payee_account"] not in dumped
    assert event.payee_account_masked == "****3445"
    assert event.payee_account_hash and len(event.payee_account_hash) == 32
    # Same account, differently written, same hash; another key, another hash.
    spaced = dict(raw, payee_account="6222 0202 0011 2233 445")
    assert parse_event(spaced, account_key=KEY).payee_account_hash == event.payee_account_hash
    assert parse_event(raw, account_key=b"other").payee_account_hash != event.payee_account_hash


def test_unknown_fields_are_kept_under_extra() -> None:
    event = parse_event(_lines("valid.jsonl")[7], account_key=KEY)
    assert event.extra == {"erp_batch": "F110-2026-11-28"}


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"[1, 2]", b"null", b'{"type": 5}', b"{"])
def test_garbage_is_refused_not_crashed(raw: bytes) -> None:
    with pytest.raises(InvalidEvent):
        parse_event(raw, account_key=KEY)


def test_decision_matches_the_decision_schema() -> None:
    schema = orjson.loads((CONTRACT / "decision.schema.json").read_bytes())
    decision = Decision(
        payment_id="P1", event_id="e1", event_time="2026-11-27T16:30:00+08:00", action="hold", risk_score=0.7,
        severity="high", rule_hits=[RuleHit(rule_id="r", severity="high", action="hold", reason="why")],
    )  # fmt: skip
    jsonschema.validate(orjson.loads(decision.to_json()), schema)


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "vendor.created", "event_id": "v1", "payee_account": "6222020200112233445"',  # truncated
        '{"type": "vendor.created", "payee_account": "62220202001122',  # cut inside the account
        '[{"type": "payment.created", "payee_account": "6222020200112233445"}]',  # not an object
        '{"type": "payment.created", "payee_account": 6222020200112233445}',  # a number
        '{"type": "payment.created", "payee_account": "6222020200112233445", "amount": "-1"}',
    ],
)
def test_dead_letter_copies_never_hold_a_clear_account(raw: str) -> None:
    from paysentry.replay import redact_raw

    redacted = redact_raw(raw)
    assert "62220202001122" not in redacted
    assert "****" in redacted
