"""Payments coming back: camt.053/054 and MT940 returns become `psp.returned` for the original payment, with
the reason in words; a return without the original reference is a problem, never a guess; an ordinary
credit stays skipped; the reconciliation counts the payment as returned."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from paysentry.analytics.reconcile import compute_reconcile
from paysentry.connectors.base import PaymentIndex
from paysentry.connectors.cli import connect_app
from paysentry.connectors.reasons import describe_return, reason_in_text
from tests.connectors.support import SAMPLES, assert_no_clear_account, by_payment, convert, rejections_text

runner = CliRunner()


def _index() -> PaymentIndex:
    index = PaymentIndex()
    convert("pain001_v03.xml", index=index)
    convert("pain001_v09.xml", index=index)
    return index


def test_camt053_returns_each_with_its_reason() -> None:
    result = convert("camt053_returns_v08.xml", index=_index())
    assert result.format == "camt.053.001.08"
    assert result.skipped == {"credit entries": 1, "entries not booked": 1}  # the customer's payment, the pending
    events = by_payment(result)
    assert sorted(events) == ["ERP-7731-0042", "PAY-2026-000101", "PAY-2026-000102", "PAY-2026-000103"]
    assert {e["type"] for e in events.values()} == {"psp.returned"}
    assert events["PAY-2026-000101"] == {
        "type": "psp.returned",
        "event_id": "return:BYLA-BK-20261130-001204/BYLA-RT-000101",
        "event_time": "2026-11-30T23:59:59+00:00",
        "payment_id": "PAY-2026-000101",
        "amount": "12500.00",
        "currency": "EUR",
        "status_reason": "returned: AC04: Closed account number: the account is closed on the bank's books "
        "(Konto aufgeloest)",
        "reason_code": "AC04",
        "booking_date": "2026-11-30",
        "value_date": "2026-11-30",
        "bank_reference": "BYLA-BK-20261130-001204",
        "statement_message_id": "STMT-BYLA-20261201-01",
        "end_to_end_id": "PAY-2026-000101",
        "seen_in_payment_order": True,
    }
    # One booking, two returns: each its own amount, fee and reason.
    first, second = events["PAY-2026-000102"], events["PAY-2026-000103"]
    assert (first["amount"], first["fee"], first["reason_code"]) == ("8727.95", "2.50", "AC01")
    assert (second["amount"], second["reason_code"], second["event_time"]) == ("990.00", "MD07",
                                                                              "2026-12-01T08:05:00+01:00")  # fmt: skip
    assert second["status_reason"] == "returned: MD07: End customer deceased"
    by_code_only = events["ERP-7731-0042"]  # RRTN without return information
    assert by_code_only["status_reason"] == "returned: no reason given by the bank"
    assert "reason_code" not in by_code_only
    assert by_code_only["seen_in_payment_order"] is False


def test_a_return_without_its_original_reference_is_a_problem_with_its_reason() -> None:
    result = convert("camt053_returns_v08.xml")
    [problem] = result.rejections
    assert problem.where.startswith("/Document/BkToCstmrStmt/Stmt[1]/Ntry[3]")
    assert "without the original payment's end-to-end id" in problem.reason and "MS03" in problem.reason
    assert all(not e["payment_id"].startswith("orphan") for e in result.events)
    assert_no_clear_account(rejections_text(result))


def test_camt054_return_notification_and_the_bank_own_reason_code() -> None:
    [event] = convert("camt054_return_v02.xml").events
    assert (event["type"], event["payment_id"], event["amount"], event["reason_code"]) == (
        "psp.returned", "PAY-2026-000201", "4200.00", "AC06")  # fmt: skip
    assert event["event_time"] == "2026-12-01T11:02:00+01:00"
    assert event["status_reason"].startswith("returned: AC06: Blocked account")
    assert "FR1420041010050500013M02606" not in orjson.dumps(event).decode()
    data = (SAMPLES / "camt054_return_v02.xml").read_text().replace("<Cd>AC06</Cd>", "<Prtry>R-914</Prtry>")
    [proprietary] = convert("r.xml", data=data.encode()).events
    assert proprietary["status_reason"] == "returned: R-914 (bank's own code) (Compte bloque)"
    assert "reason_code" not in proprietary


def test_a_credit_that_is_not_a_return_stays_skipped() -> None:
    data = (SAMPLES / "camt054_return_v02.xml").read_text()
    start, end = data.index("<RtrInf>"), data.index("</RtrInf>") + len("</RtrInf>")
    incoming = (data[:start] + data[end:]).replace("<SubFmlyCd>RRTN</SubFmlyCd>", "<SubFmlyCd>ESCT</SubFmlyCd>")
    result = convert("incoming.xml", data=incoming.encode())
    assert (result.events, result.rejections, result.skipped) == ([], [], {"credit entries": 1})
    # A debit carrying return information is a payment the company sends back: not a return of its own.
    debit = data.replace("<CdtDbtInd>CRDT</CdtDbtInd>", "<CdtDbtInd>DBIT</CdtDbtInd>")
    assert {e["type"] for e in convert("d.xml", data=debit.encode()).events} == {"psp.settled"}


def test_mt940_returns_german_gvc_and_structured_rtrn() -> None:
    result = convert("mt940_returns.sta", index=_index())
    assert result.format == "mt940" and result.skipped == {"credit lines": 1}  # GVC 166 "Retoure Bestellung"
    events = by_payment(result)
    assert sorted(events) == ["ORD-5590", "PAY-2026-000101", "PAY-2026-000103", "PAY-2026-000202"]
    gvc = events["PAY-2026-000101"]
    assert gvc == {
        "type": "psp.returned",
        "event_id": "return:BY2611300001/PAY-2026-000101",
        "event_time": "2026-11-30T23:59:59+00:00",
        "payment_id": "PAY-2026-000101",
        "amount": "12500.00",
        "currency": "EUR",
        "status_reason": "returned: AC04: Closed account number: the account is closed on the bank's books "
        "(RETOURE AC04 KONTO AUFGELOEST)",
        "reason_code": "AC04",
        "booking_date": "2026-11-30",
        "value_date": "2026-11-30",
        "bank_reference": "BY2611300001",
        "statement_reference": "STMT261130DE",
        "end_to_end_id": "PAY-2026-000101",
        "seen_in_payment_order": True,
    }
    assert events["PAY-2026-000103"]["reason_code"] == "MD07"  # :61: type NRTI, reason in the purpose
    structured = events["PAY-2026-000202"]
    assert (structured["type"], structured["currency"], structured["reason_code"]) == ("psp.returned", "GBP", "AC01")
    assert events["ORD-5590"]["type"] == "psp.settled"  # the debit of the second statement
    [problem] = result.rejections
    assert problem.where == "statement STMT261130DE, :61: line 10"
    assert "without the original payment's reference" in problem.reason and "MS03" in problem.reason
    assert_no_clear_account(rejections_text(result))


@pytest.mark.parametrize(
    ("details", "kind"),
    [
        (":86:/RTRN/AC04/EREF/PAY-2026-000101//REMI/RETURN/", "psp.returned"),
        (":86:159?00RUECKUEBERWEISUNG?20EREF+PAY-2026-000101?21SVWZ+AM05", "psp.returned"),
        (":86:166?00GUTSCHRIFT?20EREF+PAY-2026-000101?21SVWZ+RETOURE AC04", None),  # a refund, not a return
        (":86:INCOMING PAYMENT RETURN OF GOODS", None),
    ],
)
def test_what_makes_an_mt940_credit_a_return(details: str, kind: str | None) -> None:
    data = f":20:S1\n:25:DE02120300000000202051\n:28C:1/1\n:60F:C261129EUR0,00\n" \
           f":61:2611301130C100,00NTRFNONREF//B1\n{details}\n:62F:C261130EUR100,00\n-\n"  # fmt: skip
    result = convert("one.sta", data=data.encode())
    assert [e["type"] for e in result.events] == ([kind] if kind else [])
    if kind is None:
        assert result.skipped == {"credit lines": 1}


def test_reason_words() -> None:
    assert reason_in_text("RETOURE SEPA UEBERW. AC04 KONTO ERLOSCHEN") == "AC04"
    assert reason_in_text("RECHNUNG AB12 CD34 ZAHLUNG") is None  # four characters, but no listed code
    assert describe_return("ZZ99") == "returned: ZZ99: unlisted reason code"
    assert describe_return(None) == "returned: no reason given by the bank"


def _reconcile(tmp_path: Path, *files: str) -> dict:
    out = tmp_path / "events.jsonl"
    paths = [str(SAMPLES / name) for name in files]
    converted = runner.invoke(connect_app, ["convert", *paths, "--out", str(out)])
    assert converted.exit_code in (0, 1), converted.output  # 1: the return without its reference was rejected
    return compute_reconcile(out, sla_hours=120)


def _day_row(result: dict) -> dict:
    [row] = result["completeness"]
    return row


def test_reconciliation_counts_a_returned_payment_as_returned(tmp_path: Path) -> None:
    # The payment run, then the statement of its returns (no settlement of them in between).
    row = _day_row(_reconcile(tmp_path, "pain001_v03.xml", "camt053_returns_v08.xml"))
    assert (row["released"], row["returned"], row["settled"], row["open"]) == (3, 3, 0, 0)


def test_reconciliation_counts_a_settled_then_returned_payment_as_returned(tmp_path: Path) -> None:
    row = _day_row(_reconcile(tmp_path, "pain001_v03.xml", "camt054_v02.xml", "camt053_returns_v08.xml"))
    assert (row["returned"], row["settled"]) == (3, 0)
