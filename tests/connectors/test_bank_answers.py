"""pain.002, camt.054, camt.053 and MT940: the bank's side, matched back to the payments by reference."""

from __future__ import annotations

from paysentry.connectors.base import PaymentIndex
from paysentry.connectors.reasons import REASON_MEANINGS, describe_reason
from tests.connectors.support import SAMPLES, by_payment, convert


def _index() -> PaymentIndex:
    index = PaymentIndex()
    convert("pain001_v03.xml", index=index)
    convert("pain001_v09.xml", index=index)
    return index


def test_pain002_accepted_and_rejected() -> None:
    result = convert("pain002_v03.xml", index=_index())
    assert result.format == "pain.002.001.03" and result.rejections == []
    events = by_payment(result)
    assert events["PAY-2026-000101"] == {
        "type": "psp.submitted",
        "event_id": "pain.002:STS-BYLA-20261127-0093/PAY-2026-000101/ACCP",
        "event_time": "2026-11-27T18:02:11+01:00",
        "payment_id": "PAY-2026-000101",
        "amount": "12500.00",
        "currency": "EUR",
        "status_reason": "ACCP (accepted customer profile)",
        "status_code": "ACCP",
        "status_report_id": "STS-BYLA-20261127-0093",
        "original_message_id": "MSG-2026-1127-01",
        "payment_information_id": "PMT-F110-000457",
        "status_id": "STS-0093-1",
    }
    # No OrgnlTxRef in the report: the amount is the pain.001's.
    assert (events["PAY-2026-000102"]["type"], events["PAY-2026-000102"]["amount"]) == ("psp.submitted", "8730.45")
    failed = events["PAY-2026-000103"]
    assert failed["type"] == "psp.failed" and failed["reason_code"] == "AC01"
    assert failed["status_reason"] == (
        "RJCT (rejected): AC01: Incorrect account number: the account number is invalid or missing "
        "(IBAN check digits invalid)"
    )


def test_pain002_without_the_amount_or_the_pain001_is_rejected_per_transaction() -> None:
    result = convert("pain002_v03.xml")  # no pain.001 seen
    assert sorted(by_payment(result)) == ["PAY-2026-000101", "PAY-2026-000103"]
    [rejection] = result.rejections
    assert "TxInfAndSts[2]" in rejection.where and "was not seen in a pain.001" in rejection.reason


def test_pain002_group_status_applies_to_every_payment_of_the_message() -> None:
    report = b"""<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt>
<GrpHdr><MsgId>STS-2</MsgId><CreDtTm>2026-11-27T19:00:00Z</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>ORA-AP-20261127-7</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>
<GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf></OrgnlGrpInfAndSts>
</CstmrPmtStsRpt></Document>"""
    events = by_payment(convert("group.xml", data=report, index=_index()))
    assert sorted(events) == ["PAY-2026-000201", "PAY-2026-000202"]
    assert {e["type"] for e in events.values()} == {"psp.failed"}
    assert events["PAY-2026-000202"]["amount"] == "15000.00" and events["PAY-2026-000202"]["currency"] == "GBP"
    assert events["PAY-2026-000201"]["status_reason"] == "RJCT (rejected): AM04: Insufficient funds"
    unknown = convert("group.xml", data=report)  # the original message was never seen
    assert unknown.events == [] and "was not seen as a pain.001" in unknown.rejections[0].reason


def test_pending_status_gives_no_event_and_unknown_status_is_rejected() -> None:
    data = (SAMPLES / "pain002_v03.xml").read_bytes()
    data = data.replace(b"<TxSts>ACCP</TxSts>", b"<TxSts>PDNG</TxSts>").replace(
        b"<TxSts>ACSP</TxSts>", b"<TxSts>WHAT</TxSts>"
    )
    result = convert("p.xml", data=data, index=_index())
    assert sorted(by_payment(result)) == ["PAY-2026-000103"]
    assert result.skipped == {"status PDNG (no event)": 1}
    assert "unknown status code 'WHAT'" in result.rejections[0].reason


def test_reason_table() -> None:
    for code in ("AC01", "AC04", "AC06", "AG01", "AM04", "AM05", "BE04", "MD07", "MS02", "MS03", "RC01", "RR01",
                 "RR02", "RR03", "RR04"):  # fmt: skip
        assert REASON_MEANINGS[code]
    assert describe_reason("AC04") == "AC04: Closed account number: the account is closed on the bank's books"
    assert describe_reason("ZZ99") == "ZZ99: unlisted reason code"
    assert describe_reason(None, "X1", "bank text") == "X1 (bank's own code) (bank text)"


def test_camt054_booked_debits_orphans_and_skips() -> None:
    result = convert("camt054_v02.xml", index=_index())
    assert result.format == "camt.054.001.02" and result.rejections == []
    assert result.skipped == {"credit entries": 1, "entries not booked": 1}
    events = by_payment(result)
    assert events["PAY-2026-000101"] == {
        "type": "psp.settled",
        "event_id": "booking:BYLA-BK-20261128-000781/PAY-2026-000101",
        "event_time": "2026-11-28T23:59:59+00:00",
        "payment_id": "PAY-2026-000101",
        "amount": "12500.00",
        "currency": "EUR",
        "fee": "2.50",
        "fee_currency": "EUR",
        "booking_date": "2026-11-28",
        "value_date": "2026-11-28",
        "bank_reference": "BYLA-BK-20261128-000781",
        "statement_message_id": "NTF-BYLA-20261128-0411",
        "end_to_end_id": "PAY-2026-000101",
        "creditor_name": "Müller Stahl AG",
        "seen_in_payment_order": True,
    }
    # A single transaction without its own amount: the entry's amount.
    assert events["PAY-2026-000102"]["amount"] == "8730.45" and "fee" not in events["PAY-2026-000102"]
    [orphan] = [e for e in events.values() if e.get("orphan")]
    assert orphan["payment_id"] == "orphan:BYLA-BK-20261128-000790/-/1"
    assert (orphan["amount"], orphan["end_to_end_id"], orphan["creditor_name"]) == ("4870.00", "NOTPROVIDED",
                                                                                  "Unknown Payee Ltd")  # fmt: skip


def test_camt053_version_08_and_an_unknown_end_to_end_id() -> None:
    events = by_payment(convert("camt053_v08.xml", index=_index()))
    settled = events["PAY-2026-000201"]
    assert (settled["event_time"], settled["fee"], settled["booking_date"]) == ("2026-11-29T09:12:00+01:00", "1.20",
                                                                               "2026-11-29")  # fmt: skip
    assert settled["creditor_name"] == "Fournitures Dupont SARL"
    unknown = events["ZX-UNKNOWN-7781"]  # the engine's reconciliation reports it unmatched
    assert unknown["seen_in_payment_order"] is False and "orphan" not in unknown


def test_the_same_booking_in_camt054_and_camt053_is_one_event() -> None:
    statement = (SAMPLES / "camt054_v02.xml").read_bytes()
    statement = statement.replace(b"camt.054.001.02", b"camt.053.001.02").replace(
        b"BkToCstmrDbtCdtNtfctn", b"BkToCstmrStmt"
    )
    statement = statement.replace(b"Ntfctn>", b"Stmt>").replace(b"NTF-BYLA-20261128-0411", b"STMT-BYLA-1128")
    notified, stated = (
        convert("n.xml", data=(SAMPLES / "camt054_v02.xml").read_bytes()),
        convert("s.xml", data=statement),
    )
    assert stated.format == "camt.053.001.02"
    assert [e["event_id"] for e in notified.events] == [e["event_id"] for e in stated.events]


def test_camt_batch_booking_needs_amounts_per_transaction() -> None:
    data = (SAMPLES / "camt054_v02.xml").read_text()
    two = "".join(f"<TxDtls><Refs><EndToEndId>A-{n}</EndToEndId></Refs></TxDtls>" for n in (1, 2))
    data = data.replace(
        "<NtryDtls>\n          <TxDtls>\n            <Refs>\n              <EndToEndId>PAY-2026-000102",
        "<NtryDtls>" + two + "<TxDtls><Refs><EndToEndId>PAY-2026-000102",
        1,
    )
    result = convert("batch.xml", data=data.encode())
    assert "PAY-2026-000102" not in by_payment(result)
    assert any("batch booking" in r.reason for r in result.rejections)


def test_mt940_debits_matched_by_reference() -> None:
    result = convert("mt940_statement.sta", index=_index())
    assert result.format == "mt940" and result.rejections == [] and result.skipped == {"credit lines": 1}
    events = by_payment(result)
    assert events["PAY-2026-000202"] == {
        "type": "psp.settled",
        "event_id": "booking:NWBK2611280044/PAY-2026-000202",
        "event_time": "2026-11-28T23:59:59+00:00",
        "payment_id": "PAY-2026-000202",
        "amount": "15000.00",
        "currency": "GBP",
        "booking_date": "2026-11-28",
        "value_date": "2026-11-28",
        "bank_reference": "NWBK2611280044",
        "statement_reference": "STMT261128GB",
        "end_to_end_id": "PAY-2026-000202",
        "creditor_name": "THAMES LOGISTICS LTD",
        "seen_in_payment_order": True,
    }
    assert events["ORD-5581"]["seen_in_payment_order"] is False  # a customer reference, no known payment


def test_mt940_customer_reference_that_names_a_known_payment() -> None:
    data = (SAMPLES / "mt940_statement.sta").read_bytes().replace(b"NTRFORD-5581", b"NTRFPAY-2026-000201")
    events = by_payment(convert("m.sta", data=data, index=_index()))
    assert events["PAY-2026-000201"]["seen_in_payment_order"] is True
    data = data.replace(b"NTRFPAY-2026-000201", b"NTRFNONREF")
    orphan = [e for e in convert("m.sta", data=data).events if e.get("orphan")]
    assert [e["payment_id"] for e in orphan] == ["orphan:STMT261128GB/NWBK2611280045/2"]
