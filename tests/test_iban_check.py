"""The IBAN check at ingest: a payee account written as an IBAN that fails its check reaches the engine
as a finding (never the account), a feature the rules read (`iban_invalid`), and a default rule holds it."""

from __future__ import annotations

import orjson
import pytest

from paysentry.contract import parse_event
from paysentry.core import Engine
from paysentry.iban import iban_problem
from paysentry.replay import Replayer
from paysentry.rulebook import load_rulebook

KEY = b"k" * 32


@pytest.mark.parametrize(
    ("account", "problem"),
    [
        ("DE89370400440532013000", None),  # valid
        ("DE89 3704 0044 0532 0130 00", None),  # valid, written in groups
        ("DE89370400440532013001", "iban_checksum"),
        ("DE8937040044053201300", "iban_length"),
        ("GB34BUKB20201555555555", "iban_checksum"),
        ("6222020200112233445", None),  # a national account number is not an IBAN
        ("US11100000000001", None),  # letters of a country without IBANs: a national format
    ],
)
def test_iban_problems_are_named_by_a_code(account: str, problem: str | None) -> None:
    assert iban_problem(account) == problem


def _release(account: str, **extra: object) -> dict[str, object]:
    return {"type": "payment.released", "event_id": "e1", "event_time": "2026-10-06T11:00:00+02:00",
            "payment_id": "P1", "company_code": "DE01", "vendor_id": "V1", "amount": "900.00", "currency": "EUR",
            "channel": "sepa", "payee_account": account, **extra}  # fmt: skip


def test_ingest_records_the_finding_and_never_the_account() -> None:
    event = parse_event(_release("DE89370400440532013001"), account_key=KEY)
    assert event.payee_account_problem == "iban_checksum"
    written = orjson.dumps(event.to_dict())
    assert b"0532013001" not in written and b"iban_checksum" in written


def test_a_producer_cannot_vouch_for_its_own_account() -> None:
    forged = parse_event(_release("DE89370400440532013001", payee_account_problem=None), account_key=KEY)
    assert forged.payee_account_problem == "iban_checksum"
    cleared = parse_event(_release("DE89370400440532013000", payee_account_problem="iban_checksum"), account_key=KEY)
    assert cleared.payee_account_problem is None and "payee_account_problem" not in cleared.extra


def test_the_default_rulebook_holds_a_release_to_an_invalid_iban_only() -> None:
    replayer = Replayer(Engine(load_rulebook(None)), KEY)
    lines = [orjson.dumps(_release("DE89370400440532013001")),
             orjson.dumps({**_release("DE89370400440532013000"), "event_id": "e2", "payment_id": "P2"})]  # fmt: skip
    events = [parse_event(line, account_key=KEY) for line in lines]
    decisions = {d.payment_id: d for d in replayer.run(events)}
    bad, good = decisions["P1"], decisions["P2"]
    assert "invalid_iban" in {h.rule_id for h in bad.rule_hits} and bad.action == "hold"
    assert "invalid_iban" not in {h.rule_id for h in good.rule_hits}
    assert b"0532013001" not in bad.to_json()
