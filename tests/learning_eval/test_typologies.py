"""The default rulebook's harder typology cases: each one is caught on a hand-built stream and stays
quiet on a near miss. Times are US01 local (America/New_York, UTC-5 in November 2026)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from models.typology_features import business_hours_configured
from paysentry.contract import Decision, parse_event
from paysentry.core import Engine
from paysentry.params import CompanyParams
from paysentry.replay import Replayer
from paysentry.rulebook import load_rulebook

KEY = b"typology-tests"
_ids = itertools.count(1)


def ny(day: int, hour: int = 11, month: int = 11) -> str:
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:00:00-05:00"


def vendor(vendor_id: str, account: str, when: str = "2026-06-01T09:00:00-04:00", kind: str = "vendor.created",
           **fields: Any) -> dict[str, Any]:  # fmt: skip
    return {"type": kind, "event_id": f"e{next(_ids)}", "event_time": when, "vendor_id": vendor_id,
            "company_code": "US01", "payee_account": account, **fields}  # fmt: skip


def pay(payment_id: str, vendor_id: str, when: str, amount: str, account: str, **fields: Any) -> dict[str, Any]:
    return {"type": "payment.released", "event_id": f"e{next(_ids)}", "event_time": when, "payment_id": payment_id,
            "vendor_id": vendor_id, "amount": amount, "currency": "USD", "company_code": "US01", "channel": "wire",
            "created_by": "u-ap-1", "approved_by": ["u-fin-1"], "invoice_id": f"INV-{payment_id}",
            "payee_account": account, "payee_country": "US", **fields}  # fmt: skip


def decide(rows: list[dict[str, Any]]) -> dict[str, Decision]:
    """Release decisions by payment id, for the stream in event-time order."""
    events = sorted((parse_event(row, account_key=KEY) for row in rows), key=lambda e: e.event_time)
    decisions = Replayer(Engine(load_rulebook(None)), KEY).run(events)
    return {d.payment_id: d for d in decisions if d.event_type == "payment.released"}


def fired(decision: Decision) -> set[str]:
    return {hit.rule_id for hit in decision.rule_hits}


# --- off hours --------------------------------------------------------------------------------------


def test_off_hours_rule_is_silent_on_a_company_that_pays_around_the_clock() -> None:
    night = "2026-11-04T03:10:00+00:00"
    rows = [
        {**pay("C1", "M1", night, "40.00", "555500001111"), "company_code": "CARD1", "currency": "EUR"},
        pay("U1", "V-OH", "2026-11-04T03:10:00-05:00", "900.00", "US10000000000001"),
    ]
    decisions = decide([vendor("V-OH", "US10000000000001"), *rows])
    assert "off_hours_release" not in fired(decisions["C1"])  # a card portfolio: no business hours set
    assert decisions["C1"].action == "allow"
    assert "off_hours_release" in fired(decisions["U1"])  # US01 has business hours: 03:10 is night


@pytest.mark.parametrize(
    ("params", "configured"),
    [
        (CompanyParams(), False),
        (CompanyParams(business_hours=(7, 20)), True),
        (CompanyParams(business_hours=(0, 24)), True),  # all day, but only on business days
        (CompanyParams(business_hours=(0, 24), business_days=(0, 1, 2, 3, 4, 5, 6)), False),
    ],
)
def test_business_hours_count_only_when_set_and_not_24_7(params: CompanyParams, configured: bool) -> None:
    assert business_hours_configured(params) is configured


# --- amount outliers for vendors with few payments ---------------------------------------------------


def sparse_vendor(amount: str) -> Decision:
    account = "US20000000000001"
    rows = [vendor("V-SP", account), pay("S1", "V-SP", ny(2), "1000.00", account),
            pay("S2", "V-SP", ny(4), "1100.00", account), pay("S3", "V-SP", ny(9), amount, account)]  # fmt: skip
    return decide(rows)["S3"]


def test_outlier_to_a_vendor_with_two_payments_is_reviewed() -> None:
    decision = sparse_vendor("12000.00")  # 10.9x its largest payment, far above the company's average
    assert "amount_outlier_sparse" in fired(decision)
    assert "amount_outlier" not in fired(decision)  # the median rule needs five payments
    assert decision.action == "review"


def test_a_larger_but_plausible_invoice_to_a_sparse_vendor_is_not() -> None:
    assert "amount_outlier_sparse" not in fired(sparse_vendor("6000.00"))  # 5.5x: below the 8x line


# --- splits over two business days, 85-100 % of the limit -------------------------------------------


def split(first_day: int, first: str, second_day: int, second: str) -> Decision:
    account = "US30000000000001"
    rows = [vendor("V-SPL", account), pay("X1", "V-SPL", ny(first_day, 14), first, account),
            pay("X2", "V-SPL", ny(second_day, 10), second, account)]  # fmt: skip
    return decide(rows)["X2"]


def test_split_over_friday_and_monday_at_86_percent_is_held() -> None:
    decision = split(6, "43000.00", 9, "44000.00")  # Friday and Monday, limit 50,000 USD
    assert "split_payment" in fired(decision)
    assert decision.action == "hold"
    assert "2 payments to vendor V-SPL within two business days" in decision.rule_hits[0].reason
    assert "the largest other at 86.0%" in decision.rule_hits[0].reason


@pytest.mark.parametrize(
    ("first_day", "first", "second_day", "second"),
    [
        (6, "43000.00", 10, "44000.00"),  # Friday and Tuesday: three business days apart
        (6, "40000.00", 9, "44000.00"),  # the first one at 80 %, below the band
        (6, "43000.00", 9, "50000.00"),  # the second one at the limit: approved by two, not a split
    ],
)
def test_near_miss_splits_are_not_held(first_day: int, first: str, second_day: int, second: str) -> None:
    assert "split_payment" not in fired(split(first_day, first, second_day, second))


# --- payments to a just-changed bank account ---------------------------------------------------------


def after_bank_change(amount: str, country: str, days_after: int = 2) -> Decision:
    old, new = "US40000000000001", "GB33BUKB20201555555555" if country == "GB" else "US40000000000002"
    rows = [vendor("V-BC", old)]
    rows += [pay(f"H{i}", "V-BC", ny(2 + i), "1000.00", old) for i in range(6)]
    rows.append(vendor("V-BC", new, ny(10, 9), "vendor.updated", changed_by="u-mdm-1"))
    rows.append(pay("B1", "V-BC", ny(10 + days_after), amount, new, payee_country=country))
    return decide(rows)["B1"]


def test_a_modest_first_payment_to_a_new_account_abroad_is_reviewed() -> None:
    decision = after_bank_change("950.00", "GB")  # an ordinary amount, to a UK account, in USD
    assert fired(decision) == {"bank_change_new_account"}
    assert decision.action == "review"


def test_a_large_payment_to_the_new_account_is_held_even_at_home() -> None:
    decision = after_bank_change("7000.00", "US")  # 7x the median
    assert "bank_change_bec" in fired(decision)
    assert decision.action == "hold"


@pytest.mark.parametrize(
    ("amount", "country", "days_after"),
    [
        ("950.00", "US", 2),  # a domestic change (same currency area) and an ordinary amount
        ("4000.00", "US", 2),  # 4x at home: below the domestic line of 6x
        ("950.00", "GB", 16),  # abroad, but the change is more than 14 days old
    ],
)
def test_near_misses_after_a_bank_change_are_quiet(amount: str, country: str, days_after: int) -> None:
    decision = after_bank_change(amount, country, days_after)
    assert not fired(decision) & {"bank_change_new_account", "bank_change_bec"}
