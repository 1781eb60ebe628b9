"""pain.001 -> payment.released: every field, both schema versions, schema errors per transaction."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sepaxml import SepaTransfer

from paysentry.connectors.base import PaymentIndex
from tests.connectors.support import SAMPLES, assert_no_clear_account, by_payment, convert, rejections_text


def test_version_03_every_field() -> None:
    index = PaymentIndex()
    result = convert("pain001_v03.xml", index=index)
    assert result.format == "pain.001.001.03"
    assert result.rejections == [] and result.refused is None
    events = by_payment(result)
    assert list(events) == ["PAY-2026-000101", "PAY-2026-000102", "PAY-2026-000103"]
    assert events["PAY-2026-000101"] == {
        "type": "payment.released",
        "event_id": "pain.001:MSG-2026-1127-01/PMT-F110-000457/PAY-2026-000101",
        "event_time": "2026-11-27T16:30:00+01:00",
        "payment_id": "PAY-2026-000101",
        "company_code": "DE01",
        "vendor_id": "V10023",
        "vendor_name": "Müller Stahl AG",
        "invoice_id": "INV-88812",
        "amount": "12500.00",
        "currency": "EUR",
        "channel": "sepa",
        "payee_account": "DE89370400440532013000",
        "payee_bank": "COBADEFFXXX",
        "payee_country": "DE",
        "due_date": "2026-11-28",
        "message_id": "MSG-2026-1127-01",
        "payment_information_id": "PMT-F110-000457",
        "instruction_id": "F110-1",
        "end_to_end_id": "PAY-2026-000101",
        "debtor_name": "Acme Industrie GmbH",
        "debtor_account_masked": "****2051",
        "payee_check": {"bank": "Commerzbank", "valid": True, "problems": []},
    }
    second = events["PAY-2026-000102"]
    # No creditor id: the vendor is named after the creditor; the country comes from the IBAN.
    assert second["vendor_id"] == "NAME:NORDIC PARTS AB"
    assert second["payee_country"] == "SE"
    assert second["invoice_id"] == second["remittance_info"] == "Invoice 4471 PO 551"
    assert second["amount"] == "8730.45"
    # A wrong IBAN checksum is carried, not fatal.
    assert events["PAY-2026-000103"]["payee_check"] == {"valid": False, "problems": ["iban_checksum"]}
    known = index.get("PAY-2026-000102")
    assert known is not None and (known.amount, known.currency, known.message_id) == (
        "8730.45",
        "EUR",
        "MSG-2026-1127-01",
    )


def test_version_09_every_field() -> None:
    result = convert("pain001_v09.xml")
    assert result.format == "pain.001.001.09" and result.rejections == []
    events = by_payment(result)
    gbp = events["PAY-2026-000202"]
    assert gbp["event_time"] == "2026-11-27T11:05:00+00:00"  # no offset written: read in the given zone (UTC)
    assert (gbp["amount"], gbp["currency"], gbp["channel"]) == ("15000.00", "GBP", "wire")
    assert (gbp["vendor_id"], gbp["payee_bank"], gbp["payee_country"]) == ("V20415", "NWBKGB2L", "GB")
    assert (gbp["due_date"], gbp["invoice_id"], gbp["company_code"]) == ("2026-11-30", "TL-99812", "FR01")
    eur = events["PAY-2026-000201"]
    assert (eur["channel"], eur["payee_bank"], eur["instruction_id"]) == ("sepa", "PSSTFRPPPAR", "ORA-7-1")
    assert eur["payee_check"]["valid"] is True


def test_file_built_by_sepaxml() -> None:
    config = {"name": "Acme Industrie GmbH", "IBAN": "DE02120300000000202051", "BIC": "BYLADEM1001",
              "batch": True, "currency": "EUR"}  # fmt: skip
    transfer = SepaTransfer(config, schema="pain.001.001.03", clean=True)
    amounts = [123456, 99, 4200000]
    for number, cents in enumerate(amounts, start=1):
        transfer.add_payment({
            "name": f"Lieferant {number}", "IBAN": "DE89370400440532013000", "BIC": "COBADEFFXXX",
            "amount": cents, "execution_date": date(2026, 12, 1), "description": f"Rechnung R-{number}",
            "endtoend_id": f"E2E{number:05d}",
        })  # fmt: skip
    data = transfer.export(validate=True)
    result = convert("built.xml", data=data)
    assert result.rejections == [] and result.format == "pain.001.001.03"
    events = by_payment(result)
    assert sorted(events) == ["E2E00001", "E2E00002", "E2E00003"]
    assert [Decimal(events[f"E2E{n:05d}"]["amount"]) for n in (1, 2, 3)] == [Decimal("1234.56"), Decimal("0.99"),
                                                                           Decimal("42000.00")]  # fmt: skip
    assert {e["due_date"] for e in events.values()} == {"2026-12-01"}
    assert {e["invoice_id"] for e in events.values()} == {"Rechnung R-1", "Rechnung R-2", "Rechnung R-3"}


def _v03(replace: tuple[str, str] | None = None, extra: str = "") -> bytes:
    text = (SAMPLES / "pain001_v03.xml").read_text()
    if replace:
        assert replace[0] in text
        text = text.replace(replace[0], replace[1], 1)
    return text.replace(
        "<RmtInf>\n          <Ustrd>RE 2026-5531", extra + "<RmtInf>\n          <Ustrd>RE 2026-5531"
    ).encode()


def test_schema_error_rejects_its_transaction_only() -> None:
    data = _v03(('<InstdAmt Ccy="EUR">8730.45</InstdAmt>', '<InstdAmt Ccy="EUR">8730.4x</InstdAmt>'))
    data = data.replace(b"<CtrlSum>22220.45</CtrlSum>", b"")
    result = convert("bad.xml", data=data)
    assert result.refused is None
    assert sorted(by_payment(result)) == ["PAY-2026-000101", "PAY-2026-000103"]
    [rejection] = result.rejections
    assert rejection.where.startswith("/Document/CstmrCdtTrfInitn/PmtInf[1]/CdtTrfTxInf[2] (line ")
    assert rejection.reason.startswith("schema: line 90: Element 'InstdAmt': '8730.4x' is not a valid value")


def test_unknown_element_in_a_transaction_is_a_schema_error() -> None:
    result = convert("bad.xml", data=_v03(extra="<Hacked>1</Hacked>"))
    assert sorted(by_payment(result)) == ["PAY-2026-000101", "PAY-2026-000102"]
    assert "Hacked" in result.rejections[0].reason and "CdtTrfTxInf[3]" in result.rejections[0].where


def test_schema_error_in_the_header_refuses_the_file() -> None:
    result = convert("bad.xml", data=_v03(("<MsgId>MSG-2026-1127-01</MsgId>", "<MsgId></MsgId>")))
    assert result.events == [] and result.refused is not None and result.refused.startswith("schema:")
    assert result.rejections[0].where == "line 5"


@pytest.mark.parametrize(
    ("replace", "reason"),
    [
        (("<NbOfTxs>3</NbOfTxs>", "<NbOfTxs>4</NbOfTxs>"), "NbOfTxs says 4 transactions, the file holds 3"),
        (("<CtrlSum>22220.45</CtrlSum>", "<CtrlSum>22220.46</CtrlSum>"), "CtrlSum 22220.46 is not the sum"),
    ],
)
def test_totals_that_do_not_add_up_refuse_the_file(replace: tuple[str, str], reason: str) -> None:
    result = convert("bad.xml", data=_v03(replace))
    assert result.events == [] and result.refused is not None and reason in result.refused


def test_duplicate_end_to_end_id_and_not_provided() -> None:
    data = _v03(("<EndToEndId>PAY-2026-000102</EndToEndId>", "<EndToEndId>PAY-2026-000101</EndToEndId>"))
    result = convert("dup.xml", data=data)
    assert sorted(by_payment(result)) == ["PAY-2026-000101", "PAY-2026-000103"]
    assert "appears twice" in result.rejections[0].reason
    data = _v03(("<EndToEndId>PAY-2026-000101</EndToEndId>", "<EndToEndId>NOTPROVIDED</EndToEndId>"))
    events = by_payment(convert("np.xml", data=data))
    assert events["F110-1"]["end_to_end_id"] == "NOTPROVIDED"  # the instruction id stands in


def test_rejections_never_show_an_account() -> None:
    # Spaces make the IBAN break the schema: the schema's message quotes the value, the rejection masks it.
    data = _v03(("<IBAN>DE89370400440532013000</IBAN>", "<IBAN>DE89 3704 0044 0532 0130 00</IBAN>"))
    result = convert("bad.xml", data=data)
    assert len(result.rejections) == 1 and "Element 'IBAN'" in result.rejections[0].reason
    assert "****3000" in result.rejections[0].reason
    assert_no_clear_account(rejections_text(result))


def test_too_many_schema_errors_refuse_the_file() -> None:
    text = (SAMPLES / "pain001_v03.xml").read_text()
    head, rest = text.split("<CdtTrfTxInf>", 1)
    record = "<CdtTrfTxInf>" + rest.split("</CdtTrfTxInf>", 1)[0] + "</CdtTrfTxInf>"
    bad = "".join(record.replace("PAY-2026-000101", f"P-{n}").replace("12500.00", "1.x") for n in range(250))
    data = (head + bad + "</PmtInf></CstmrCdtTrfInitn></Document>").replace("<NbOfTxs>3<", "<NbOfTxs>250<")
    result = convert("many.xml", data=data.replace("<CtrlSum>22220.45</CtrlSum>", "").encode())
    assert result.events == [] and result.refused is not None
    assert result.refused.startswith("more than 200 schema errors; the first: Element 'InstdAmt': '1.x'")


def test_ingest_keeps_the_check_and_the_references_under_extra() -> None:
    from paysentry.contract import parse_event

    [event] = [e for e in convert("pain001_v03.xml").events if e["payment_id"] == "PAY-2026-000103"]
    parsed = parse_event(event, account_key=b"k" * 32)
    assert parsed.extra["payee_check"] == {"valid": False, "problems": ["iban_checksum"]}
    assert (parsed.extra["message_id"], parsed.extra["payment_information_id"]) == ("MSG-2026-1127-01",
                                                                                    "PMT-F110-000457")  # fmt: skip
    assert parsed.payee_account_masked == "****3000" and parsed.extra["debtor_account_masked"] == "****2051"
