"""A payment the bank settles and then returns counts as returned, once, in the reconciliation's day row
and in the KPIs, when the return comes within the return window; a later one leaves it settled and says
so; the memory behind it stays bounded and says what it let go."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from paysentry.analytics import compute_kpis
from paysentry.analytics.kpis import KpiBuilder
from paysentry.analytics.reconcile import ReconcileBuilder, compute_reconcile, reconcile_lines
from paysentry.analytics.sketch import MoneyTotals
from paysentry.analytics.sources import bounded_lines, iter_events
from paysentry.analytics.tracker import DAY as DAY_SECONDS
from paysentry.analytics.tracker import ReturnWindow, take_back
from paysentry.decode import MAX_RECORD_BYTES
from tests.analytics.builders import HOUR, T0, Stream

DAY = timedelta(days=1)
COMPANY = {"company_code": "DE01", "channel": "sepa"}


def settled_payments(*amounts: str) -> Stream:
    """Payments P0, P1, ... released on T0's day, each settled five hours after its creation."""
    stream = Stream()
    for number, amount in enumerate(amounts):
        created = number * timedelta(minutes=10)
        stream.payment(f"P{number}", created, amount=amount, **COMPANY)
        stream.add("psp.settled", created + 5 * HOUR, f"P{number}", amount=amount, **COMPANY)
    return stream


def returned(stream: Stream, payment_id: str, at: timedelta, amount: str, event_id: str | None = None) -> None:
    event = stream.add("psp.returned", at, payment_id, amount=amount, status_reason="returned: AC04", **COMPANY)
    if event_id is not None:
        event["event_id"] = event_id


def reconcile(tmp_path: Path, stream: Stream, **options: Any) -> dict[str, Any]:
    return compute_reconcile(stream.write(tmp_path / "events.jsonl"), sla_hours=48, **options)


def only_row(result: dict[str, Any]) -> dict[str, Any]:
    (row,) = result["completeness"]
    return row


# -- reconciliation --------------------------------------------------------------------------------
def test_settled_then_returned_within_the_window_moves_to_returned_with_its_amount(tmp_path: Path) -> None:
    stream = settled_payments("100.00", "250.00")
    returned(stream, "P1", 3 * DAY, "250.00")  # three days after its settlement
    result = reconcile(tmp_path, stream)
    row = only_row(result)
    assert (row["released"], row["settled"], row["returned"], row["open"]) == (2, 1, 1, 0)
    assert row["settled_amount_by_currency"] == {"EUR": "100.00"}
    assert row["released_amount_by_currency"] == {"EUR": "350.00"}
    window = result["tracking"]["return_window"]
    assert window["window_days"] == 10.0
    assert window["late_returns"] == {"moved": 1, "repeated": 0, "not_moved": 0}


def test_a_settled_amount_taken_back_entirely_leaves_no_currency(tmp_path: Path) -> None:
    stream = settled_payments("100.00")
    returned(stream, "P0", 2 * DAY, "100.00")
    row = only_row(reconcile(tmp_path, stream))
    assert (row["settled"], row["returned"], row["settled_amount_by_currency"]) == (0, 1, {})


def test_a_return_after_the_window_leaves_the_payment_settled_and_is_counted(tmp_path: Path) -> None:
    stream = settled_payments("100.00")
    returned(stream, "P0", 12 * DAY, "100.00")  # settled at T0 + 5 h: the return comes 12 days later
    result = reconcile(tmp_path, stream)
    row = only_row(result)
    assert (row["settled"], row["returned"], row["settled_amount_by_currency"]) == (1, 0, {"EUR": "100.00"})
    assert result["tracking"]["return_window"]["late_returns"] == {"moved": 0, "repeated": 0, "not_moved": 1}
    # The window is configurable: fifteen days take the same return in.
    wider = only_row(reconcile(tmp_path, stream, return_window_days=15))
    assert (wider["settled"], wider["returned"]) == (0, 1)


def test_a_redelivered_or_twice_reported_return_changes_nothing(tmp_path: Path) -> None:
    stream = settled_payments("100.00", "40.00")
    returned(stream, "P0", 2 * DAY, "100.00", event_id="return:camt054/P0")
    returned(stream, "P0", 2 * DAY, "100.00", event_id="return:camt054/P0")  # the same message again
    returned(stream, "P0", 3 * DAY, "100.00", event_id="return:camt053/P0")  # the day's statement, again
    result = reconcile(tmp_path, stream)
    row = only_row(result)
    assert (row["released"], row["settled"], row["returned"]) == (2, 1, 1)
    assert row["settled_amount_by_currency"] == {"EUR": "40.00"}
    assert result["counts"]["redelivered_event"] == 1
    assert result["tracking"]["return_window"]["late_returns"] == {"moved": 1, "repeated": 1, "not_moved": 0}


def test_a_return_before_the_settlement_is_closed_counts_as_before(tmp_path: Path) -> None:
    # The payment run, then the return (no settlement): the tracker closes it as returned itself.
    stream = Stream()
    stream.payment("P0", timedelta(0), **COMPANY)
    returned(stream, "P0", DAY, "100.00")
    result = reconcile(tmp_path, stream)
    assert (only_row(result)["returned"], only_row(result)["settled"]) == (1, 0)
    assert result["tracking"]["return_window"]["late_returns"] == {"moved": 0, "repeated": 0, "not_moved": 0}


def test_the_settled_memory_stays_within_its_bound_and_counts_what_it_forgot(tmp_path: Path) -> None:
    stream = settled_payments(*["10.00"] * 20)
    returned(stream, "P0", 2 * DAY, "10.00")  # forgotten: pushed out by the 15 settlements after it
    returned(stream, "P19", 2 * DAY, "10.00")  # still remembered
    path = stream.write(tmp_path / "events.jsonl")
    builder = ReconcileBuilder(sla_hours=48, memory=5)
    result = reconcile_lines(bounded_lines(path, MAX_RECORD_BYTES), builder)
    assert len(builder.settled) <= 5
    assert result["tracking"]["forgotten_keys"]["settled payments"] == 15
    assert result["tracking"]["return_window"]["late_returns"] == {"moved": 1, "repeated": 0, "not_moved": 1}
    row = only_row(result)
    assert (row["settled"], row["returned"]) == (19, 1)


# -- the window itself ------------------------------------------------------------------------------
def test_return_window_entries_leave_as_event_time_passes_and_past_capacity() -> None:
    window = ReturnWindow[str](window_seconds=10 * DAY_SECONDS, capacity=3)
    for number in range(3):
        window.remember(f"P{number}", number * DAY_SECONDS, f"row{number}")
    window.remember("P3", 3 * DAY_SECONDS, "row3")
    assert (len(window), window.forgotten) == (3, 1)
    assert window.take_return("P0", 4 * DAY_SECONDS) == ("not_moved", None)  # forgotten
    assert window.take_return("P1", 4 * DAY_SECONDS) == ("moved", "row1")
    assert window.take_return("P1", 5 * DAY_SECONDS) == ("repeated", None)
    assert window.take_return("P2", 12.5 * DAY_SECONDS) == ("not_moved", None)  # its window ended at day 12
    assert len(window) == 1  # P1 and P2 expired on the way: only P3 (window until day 13) is left
    assert window.take_return("P3", 13 * DAY_SECONDS) == ("moved", "row3")  # the window's last instant
    assert window.stats()["late_returns"] == {"moved": 2, "repeated": 1, "not_moved": 2}


def test_take_back_subtracts_and_drops_a_currency_at_zero() -> None:
    totals = MoneyTotals()
    totals.add("EUR", Decimal("12.50"))
    take_back(totals, "EUR", Decimal("2.50"))
    assert totals.as_json() == {"EUR": "10.00"}
    take_back(totals, "EUR", Decimal("10.00"))
    take_back(totals, "CHF", None)
    assert totals.as_json() == {}


# -- KPIs --------------------------------------------------------------------------------------------
def test_kpis_count_a_settled_then_returned_payment_once_as_returned(tmp_path: Path) -> None:
    stream = settled_payments("100.00", "250.00", "30.00")
    returned(stream, "P1", 3 * DAY, "250.00", event_id="return:a")
    returned(stream, "P1", 4 * DAY, "250.00", event_id="return:b")  # reported again by another statement
    kpis = compute_kpis(stream.write(tmp_path / "events.jsonl"))
    assert (kpis["payments"]["settled"], kpis["payments"]["returned"]) == (2, 1)
    assert kpis["failure_rate"]["overall"] == {"outcomes": 3, "failed": 0, "returned": 1, "rate": 0.333333}
    assert kpis["failure_rate"]["by_channel"]["sepa"]["rate"] == 0.333333
    company = kpis["by"]["company"]["DE01"]
    assert (company["settled"], company["returned"]) == (2, 1)
    assert kpis["fees_by_channel"]["sepa"]["settled_amount_by_currency"] == {"EUR": "130.00"}
    assert kpis["tracking"]["return_window"]["late_returns"] == {"moved": 1, "repeated": 1, "not_moved": 0}


def test_kpis_a_return_after_the_window_or_in_a_later_period(tmp_path: Path) -> None:
    stream = settled_payments("100.00")
    returned(stream, "P0", 12 * DAY, "100.00")
    path = stream.write(tmp_path / "events.jsonl")
    late = compute_kpis(path)  # outside the 10-day window: both events count, each in its own figure
    assert (late["payments"]["settled"], late["payments"]["returned"]) == (1, 1)
    assert late["failure_rate"]["overall"]["outcomes"] == 2
    builder = KpiBuilder(return_window_days=15)
    for event in iter_events(path, lambda rejected: None):
        builder.add_event(event)
    wider = builder.result()
    assert (wider["payments"]["settled"], wider["payments"]["returned"]) == (0, 1)
    # Settled in one period, returned in the next: each period counts what happened in it.
    first = compute_kpis(path, end=T0 + 10 * DAY)
    second = compute_kpis(path, start=T0 + 10 * DAY)
    assert (first["payments"]["settled"], first["payments"]["returned"]) == (1, 0)
    assert (second["payments"]["settled"], second["payments"]["returned"]) == (0, 1)


def test_a_return_reported_twice_without_a_settlement_counts_once(tmp_path: Path) -> None:
    stream = Stream()
    stream.payment("P0", timedelta(0), **COMPANY)
    returned(stream, "P0", DAY, "100.00", event_id="return:camt054/P0")
    returned(stream, "P0", 2 * DAY, "100.00", event_id="return:camt053/P0")
    path = stream.write(tmp_path / "events.jsonl")
    kpis = compute_kpis(path)
    assert (kpis["payments"]["returned"], kpis["failure_rate"]["overall"]["outcomes"]) == (1, 1)
    assert kpis["tracking"]["return_window"]["late_returns"] == {"moved": 0, "repeated": 1, "not_moved": 0}
    result = compute_reconcile(path, sla_hours=48)
    assert (only_row(result)["returned"], only_row(result)["settled"]) == (1, 0)
    assert result["tracking"]["return_window"]["late_returns"]["repeated"] == 1


def test_the_report_commands_take_the_return_window(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from paysentry.analytics.cli import report_app

    stream = settled_payments("100.00")
    returned(stream, "P0", 12 * DAY, "100.00")
    path = stream.write(tmp_path / "events.jsonl")
    runner = CliRunner()
    for days, settled in (("10", 1), ("15", 0)):
        out = tmp_path / f"reconcile-{days}"
        done = runner.invoke(report_app, ["reconcile", str(path), "--out", str(out), "--return-window-days", days])
        assert done.exit_code == 0, done.output
        (row,) = json.loads((out / "reconcile.json").read_text())["completeness"]
        assert row["settled"] == settled
        kpis_out = tmp_path / f"kpis-{days}"
        done = runner.invoke(report_app, ["kpis", str(path), "--out", str(kpis_out), "--return-window-days", days])
        assert done.exit_code == 0, done.output
        assert json.loads((kpis_out / "kpis.json").read_text())["payments"]["settled"] == settled
