"""The card-like stream: what its verdicts and payments promise."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paysentry.contract import parse_event
from paysentry.evaluation_cli import evaluation_app
from paysentry.simulation.cardlike import CardConfig, card_stream

SMALL = CardConfig(days=21, payers=150, payees=40, seed=3, compromised_payees_per_week=2.0)


@pytest.fixture(scope="module")
def small() -> tuple[list[dict], list[dict]]:
    return card_stream(SMALL)


def test_every_label_comes_a_week_after_its_fraud_and_names_a_real_payment(small: tuple[list, list]) -> None:
    events, labels = small
    released = {e["payment_id"]: e for e in events if e["type"] == "payment.released"}
    assert labels, "the small config must produce frauds"
    for label in labels:
        payment = released[label["payment_id"]]
        delay = datetime.fromisoformat(label["event_time"]) - datetime.fromisoformat(payment["event_time"])
        assert timedelta(days=SMALL.label_delay_days) <= delay <= timedelta(days=SMALL.label_delay_days + 1)
        assert label["verdict"] == "fraud"
        assert label["company_code"] == payment["company_code"]
    assert {label["typology"] for label in labels} == {"large_amount", "compromised_payee", "compromised_payer"}
    assert len({label["payment_id"] for label in labels}) == len(labels)


def test_large_amounts_are_always_fraud_and_frauds_are_a_minority(small: tuple[list, list]) -> None:
    events, labels = small
    labelled = {label["payment_id"] for label in labels}
    released = [e for e in events if e["type"] == "payment.released"]
    assert all(e["payment_id"] in labelled for e in released if float(e["amount"]) > SMALL.large_amount)
    assert 0 < len(labelled) < 0.2 * len(released)


def test_compromised_payees_are_paid_fraudulently_for_a_bounded_time(small: tuple[list, list]) -> None:
    events, labels = small
    when = {e["payment_id"]: datetime.fromisoformat(e["event_time"]) for e in events if e["type"] == "payment.released"}
    spans: dict[str, list[datetime]] = {}
    for label in labels:
        if label["typology"] == "compromised_payee":
            spans.setdefault(label["vendor_id"], []).append(when[label["payment_id"]])
    for times in spans.values():
        assert max(times) - min(times) < timedelta(days=SMALL.payee_fraud_days + 1)


def test_payments_happen_at_every_hour_settle_and_parse(small: tuple[list, list]) -> None:
    events, _ = small
    released = [e for e in events if e["type"] == "payment.released"]
    assert {datetime.fromisoformat(e["event_time"]).hour for e in released} == set(range(24))
    settled = Counter(e["payment_id"] for e in events if e["type"] == "psp.settled")
    assert all(settled[e["payment_id"]] == 1 for e in released)
    times = [e["event_time"] for e in events]
    assert times == sorted(times)
    for event in events[:: max(1, len(events) // 500)]:
        parse_event(event, account_key=b"k")


def test_same_config_same_stream_and_seed_matters() -> None:
    tiny = CardConfig(days=3, payers=20, payees=5)
    assert card_stream(tiny) == card_stream(tiny)
    assert card_stream(tiny) != card_stream(CardConfig(days=3, payers=20, payees=5, seed=8))


@pytest.mark.parametrize(
    "bad",
    [
        dict(days=0),
        dict(payees=1),
        dict(payments_per_payer_day=0),
        dict(label_delay_days=-1),
        dict(payer_fraud_share=2.0),
        dict(payer_fraud_factor=0.5),
    ],  # fmt: skip
)
def test_nonsense_configs_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        CardConfig(**bad)


def test_simulate_card_command_writes_both_files(tmp_path: Path) -> None:
    out = tmp_path / "card" / "events.jsonl"
    args = ["simulate-card", "--out", str(out), "--days", "9", "--payers", "60", "--payees", "10"]
    result = CliRunner().invoke(evaluation_app, args)
    assert result.exit_code == 0, result.output
    labels = out.with_name("events.labels.jsonl")
    assert out.stat().st_size > 0 and labels.exists()
