"""The strategy report on hand-built streams whose savings are known."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from paysentry.analytics.strategy import compute_strategy
from paysentry.analytics.tariffs import load_tariffs
from paysentry.contract import Decision, RuleHit
from tests.analytics.builders import HOUR, Stream

TARIFFS = """
amount_bands: [1000]
small_payment_below: 1000
companies:
  DE01: {currency: EUR, timezone: Europe/Berlin, cost_of_capital_percent: 3.65}
channels:
  - {name: cheap, channel: sepa, currencies: [EUR], payee_countries: [DE], fixed_fee: 0.20, cutoff: "09:00"}
  - {name: dear, channel: swift, currencies: [EUR], fixed_fee: 20}
"""
DE = {"company_code": "DE01", "currency": "EUR", "payee_country": "DE"}


def run(tmp_path: Path, stream: Stream, decisions: list[Decision] = ()) -> dict:  # type: ignore[type-arg, assignment]
    tariffs = tmp_path / "channels.yaml"
    tariffs.write_text(TARIFFS)
    decisions_path = None
    if decisions:
        decisions_path = tmp_path / "decisions.jsonl"
        decisions_path.write_bytes(b"\n".join(d.to_json() for d in decisions) + b"\n")
    return compute_strategy(
        stream.write(tmp_path / "events.jsonl"), load_tariffs(tariffs), decisions_path=decisions_path
    )


def test_channel_cost_per_corridor(tmp_path: Path) -> None:
    s = Stream()
    for index, (channel, fee) in enumerate((("swift", "20.00"), ("swift", "20.00"), ("sepa", "0.20"))):
        s.payment(f"P{index}", index * HOUR, amount="5000.00", channel=channel, **DE)
        s.add(
            "psp.settled",
            index * HOUR + 3 * HOUR,
            f"P{index}",
            amount="5000.00",
            channel=channel,
            fee=fee,
            fee_currency="EUR",
        )
    s.payment("FR", 4 * HOUR, amount="5000.00", channel="swift", company_code="DE01", payee_country="FR")
    s.add("psp.settled", 5 * HOUR, "FR", amount="5000.00", channel="swift", fee="20.00", fee_currency="EUR")
    s.add("payment.created", timedelta(days=10), "LATER", **DE)  # the payments cover 10 days ...
    s.add("vendor.created", -timedelta(days=900), "V", vendor_id="V1")  # ... a master data snapshot does not count
    result = run(tmp_path, s)
    corridors = {c["payee_country"]: c for c in result["channel_cost"]["corridors"]}
    de = corridors["DE"]
    assert (de["payments"], de["fees_paid"], de["cheapest_fees"], de["saving"]) == (3, "40.20", "0.60", "39.60")
    assert de["amount_band"] == "1,000+" and de["cheapest_channel"] == {"cheap": 3}
    assert de["evidence"] == ["P1", "P0"] or de["evidence"] == ["P0", "P1"]
    assert Decimal(de["estimated_yearly_saving"]) == (Decimal("39.60") * Decimal("36.5")).quantize(Decimal("0.01"))
    assert corridors["FR"]["saving"] == "0.00"  # only swift is eligible outside DE


def test_timing_cutoff_early_payment_discount_and_batching(tmp_path: Path) -> None:
    s = Stream()
    # released 10:00 Berlin (after the 09:00 cut-off), settled the next day; due 10 days after release
    s.payment(
        "LATE",
        timedelta(0),
        amount="3650.00",
        channel="sepa",
        due_date="2026-10-15",
        discount_due_date="2026-10-04",
        discount_percent="2",
        **DE,
    )
    s.add("psp.settled", timedelta(days=1), "LATE", amount="3650.00", channel="sepa", fee="0.20", fee_currency="EUR")
    for index in range(3):  # three small payments to one vendor in one week
        pid = f"S{index}"
        s.payment(pid, timedelta(days=index, hours=1), amount="100.00", channel="sepa", vendor_id="V9", **DE)
        s.add(
            "psp.settled",
            timedelta(days=index, hours=4),
            pid,
            amount="100.00",
            channel="sepa",
            fee="0.50",
            fee_currency="EUR",
        )
    timing = run(tmp_path, s)["timing"]
    assert timing["released_after_cutoff"] == [
        {"company": "DE01", "channel": "sepa", "payments": 1, "amount": {"EUR": "3650.00"}, "evidence": ["LATE"]}
    ]
    early = timing["paid_early"][0]
    # 10 days x 3650 x 3.65 % / 365 = 3.65
    assert (early["payments"], early["days_early"], early["cost_of_capital"]) == (1, 10, {"EUR": "3.65"})
    assert timing["missed_discounts"] == {"payments": 1, "lost": {"EUR": "73.00"}, "evidence": ["LATE"]}
    batching = timing["batching"]
    assert (batching["opportunities"], batching["payments"], batching["saving"]) == (1, 3, {"EUR": "1.00"})
    assert sorted(batching["top"][0]["evidence"]) == ["S0", "S1", "S2"]


def test_approval_steps_and_failures(tmp_path: Path) -> None:
    s = Stream()
    for index in range(30):
        s.payment(f"P{index}", index * HOUR, amount="100.00", channel="sepa", **DE)
        outcome = "psp.returned" if index < 3 else "psp.settled"
        s.add(
            outcome,
            index * HOUR + 5 * HOUR,
            f"P{index}",
            amount="100.00",
            channel="sepa",
            fee="0.20",
            fee_currency="EUR",
        )
    result = run(tmp_path, s)
    step = result["approval_steps"][0]
    assert (step["payments"], step["approval_hours_p50"], step["rarely_changes_outcome"]) == (30, 1.0, True)
    sepa = result["failures"]["channel"][0]
    assert (sepa["name"], sepa["failures"], sepa["outcomes"]) == ("sepa", 3, 30)
    assert sepa["cost"] == {"EUR": "1.20"}  # three return fees of 0.20 plus three re-sends at 0.20
    assert sepa["hours_to_failure_p50"] == 3.0


def test_rules_that_never_change_an_outcome(tmp_path: Path) -> None:
    s = Stream()
    s.payment("P1", timedelta(0), channel="sepa", **DE)
    s.add("label.confirmed", timedelta(days=2), "P1", verdict="fraud")

    def decision(rules: list[tuple[str, str]], payment_id: str = "P1") -> Decision:
        hits = [RuleHit(rule_id=r, severity="high", action=a, reason="x") for r, a in rules]  # type: ignore[arg-type]
        action = max((a for _, a in rules), key=["allow", "review", "hold", "block"].index)
        return Decision(
            payment_id=payment_id,
            event_id=f"d{len(rules)}",
            event_time="2026-10-05T10:00:00+00:00",
            action=action,
            risk_score=0.5,
            rule_hits=hits,
        )  # type: ignore[arg-type]

    decisions = [decision([("strong", "hold"), ("weak", "review")]), decision([("noise", "allow")], "P2")]
    result = run(tmp_path, s, decisions)
    rules = {r["rule"]: r for r in result["rules"]["rules"]}
    assert rules["strong"]["decided"] == 1 and rules["weak"]["decided"] == 0
    assert result["rules"]["caught_confirmed_problems"] == ["strong", "weak"]
    assert result["rules"]["candidates_to_remove"] == ["noise"]  # decided nothing, caught nothing confirmed
