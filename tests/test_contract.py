"""The contract's own examples: every valid line parses, every invalid one is refused with its reason."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import jsonschema
import orjson
import pytest
from pydantic import ValidationError

from paysentry.contract import MAX_DECISION_BYTES, Decision, InvalidEvent, PaymentSummary, RuleHit, parse_event
from paysentry.redaction import redact_raw

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
    redacted = redact_raw(raw)
    assert "62220202001122" not in redacted
    assert "****" in redacted


# -- money is exact, keys are distinct ---------------------------------------------------------------------

RELEASE = (
    b'{"type": "payment.released", "event_id": "m-1", "event_time": "2026-11-27T16:30:00+08:00", '
    b'"payment_id": "P1", "vendor_id": "V1", "currency": "CNY", "amount": %s}'
)


@pytest.mark.parametrize(
    ("written", "amount"),
    [(b"1234567890123.4567", "1234567890123.4567"), (b"0.1", "0.1"), (b"125000", "125000"), (b"1e3", "1000"),
     (b"999999999999999", "999999999999999"), (b"12.50", "12.50")],
)  # fmt: skip
def test_json_numbers_for_money_are_read_exactly(written: bytes, amount: str) -> None:
    event = parse_event(RELEASE % written, account_key=KEY)
    assert event.amount == Decimal(amount) and str(event.amount) == amount


@pytest.mark.parametrize(
    ("written", "words"),
    [(b"1.23456", "more than 4 decimals"), (b"100.00000", "more than 4 decimals"), (b"1e15", "15 integer digits"),
     (b"1000000000000000", "15 integer digits"), (b"-0.0", "must be positive"), (b"1e-5", "more than 4 decimals"),
     (b'"100.00\\n"', "not a decimal amount"), (b'"100.00\\n\\n"', "not a decimal amount")],
)  # fmt: skip
def test_json_numbers_for_money_follow_the_rules_of_text(written: bytes, words: str) -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_event(RELEASE % written, account_key=KEY)
    assert refused.value.reason.startswith("amount") and words in refused.value.reason


def test_a_trailing_newline_in_an_amount_is_refused_from_a_dict_too() -> None:
    data = orjson.loads(RELEASE % b'"100.00"')
    with pytest.raises(InvalidEvent, match="amount"):
        parse_event(dict(data, amount="100.00\n"), account_key=KEY)


@pytest.mark.parametrize("key", [b"amount", b"payment_id", b"event_id"])
def test_duplicate_keys_are_refused_naming_the_key(key: bytes) -> None:
    raw = (RELEASE % b'"10.00"')[:-1] + b', "' + key + b'": "99.00"}'
    with pytest.raises(InvalidEvent, match=f"duplicate key '{key.decode()}'"):
        parse_event(raw, account_key=KEY)


def test_duplicate_keys_inside_extras_are_refused_too() -> None:
    raw = (RELEASE % b'"10.00"')[:-1] + b', "extra": {"batch": 1, "batch": 2}}'
    with pytest.raises(InvalidEvent, match="duplicate key 'batch'"):
        parse_event(raw, account_key=KEY)


def test_a_colon_inside_a_text_value_is_not_taken_for_a_key() -> None:
    raw = (RELEASE % b'"10.00"')[:-1] + b', "note": "a\\": \\"b", "other": "x:y"}'
    assert parse_event(raw, account_key=KEY).extra == {"note": 'a": "b', "other": "x:y"}


# -- decisions are bounded in size -------------------------------------------------------------------------


def test_a_decision_with_a_huge_reason_stays_far_below_a_kafka_message() -> None:
    hit = RuleHit(rule_id="r", severity="high", action="hold", reason="x" * 10_000_000,
                  labels={"team": "y" * 1_000_000}, annotations={"runbook": "z" * 1_000_000})  # fmt: skip
    decision = Decision(payment_id="P1", event_id="e1", event_time="2026-11-27T16:30:00+08:00", action="hold",
                        risk_score=0.7, severity="high", rule_hits=[hit])  # fmt: skip
    encoded = decision.to_json()
    assert len(encoded) <= MAX_DECISION_BYTES < 1024 * 1024
    assert encoded == decision.to_json()  # still deterministic
    written = Decision.model_validate_json(encoded)
    assert written.rule_hits[0].reason.startswith("xxx") and "[truncated 9" in written.rule_hits[0].reason
    assert written.action == "hold" and written.rule_hits[0].labels["team"].endswith("characters]")


def test_a_decision_with_very_many_hits_is_bounded_and_says_so() -> None:
    hits = [RuleHit(rule_id=f"r{i}", severity="low", action="review", reason="r" * 200) for i in range(20_000)]
    decision = Decision(payment_id="P1", event_id="e1", event_time="2026-11-27T16:30:00+08:00", action="review",
                        risk_score=0.3, rule_hits=hits, explanation={"amount": 10})  # fmt: skip
    written = Decision.model_validate_json(decision.to_json())
    assert len(decision.to_json()) <= MAX_DECISION_BYTES
    assert len(written.rule_hits) == 32 and "first 32 of 20000" in written.explanation["truncated"]


def test_a_small_decision_is_written_as_before() -> None:
    decision = Decision(payment_id="P1", event_id="e1", event_time="2026-11-27T16:30:00+08:00", action="allow",
                        risk_score=0.0, rule_hits=[])  # fmt: skip
    assert decision.to_json() == orjson.dumps(decision.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def test_the_payment_summary_refuses_facts_it_does_not_know() -> None:
    with pytest.raises(ValidationError, match="payee_account"):
        PaymentSummary.model_validate({"amount": "10.00", "payee_account": "DE89370400440532013000"})
    summary = PaymentSummary(amount="10.00", approved_by=["u-boss"], released_at="2026-11-02T02:00:00+00:00")
    assert summary.to_dict() == {
        "amount": "10.00",
        "approved_by": ["u-boss"],
        "released_at": "2026-11-02T02:00:00+00:00",
    }
