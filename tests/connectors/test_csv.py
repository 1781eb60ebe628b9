"""CSV exports with a YAML column mapping: both shipped mappings, encodings, decimal comma, mapping errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from paysentry.connectors.csvmap import load_mapping, parse_mapping
from paysentry.yamlsource import InvalidSource
from tests.connectors.support import MAPPINGS, SAMPLES, assert_no_clear_account, convert, refused, rejections_text

AP = f"csv:{MAPPINGS / 'generic-ap.yaml'}"
VENDORS = f"csv:{MAPPINGS / 'vendor-master.yaml'}"


def test_shipped_mappings_load() -> None:
    assert load_mapping(MAPPINGS / "generic-ap.yaml").records == "payments"
    assert load_mapping(MAPPINGS / "vendor-master.yaml").records == "vendors"


def test_payment_list_in_windows_1252_with_decimal_comma() -> None:
    result = convert("ap_payments_cp1252.csv", AP)
    assert result.format == "csv:generic-ap.yaml"
    kinds = [(e["type"], e["payment_id"]) for e in result.events]
    assert kinds == [("payment.created", "ZA-2026-0001"), ("payment.approved", "ZA-2026-0001"),
                     ("payment.released", "ZA-2026-0001"), ("payment.released", "ZA-2026-0002")]  # fmt: skip
    assert result.events[2] == {
        "channel": "sepa",
        "payment_id": "ZA-2026-0001",
        "event_time": "2026-11-27T16:30:00+01:00",
        "company_code": "DE01",
        "vendor_id": "V10023",
        "vendor_name": "Müller Stahl AG",
        "invoice_id": "RE-4711",
        "po_id": "PO-551",
        "amount": "12500.00",
        "currency": "EUR",
        "payee_account": "DE89370400440532013000",
        "payee_bank": "COBADEFFXXX",
        "payee_country": "DE",
        "due_date": "2026-12-15",
        "created_by": "u-ap-07",
        "approved_by": ["u-fin-02", "u-fin-03"],
        "type": "payment.released",
        "payee_check": {"bank": "Commerzbank", "valid": True, "problems": []},
        "event_id": "csv:payment.released/ZA-2026-0001",
    }
    second = result.events[3]
    assert (second["vendor_name"], second["amount"]) == ("Größe & Söhne OHG", "1234.56")
    assert second["payee_check"]["valid"] is False
    assert [(r.where, r.reason) for r in result.rejections] == [
        ("line 6", "amount: '-50,00' is not an amount written as 1.234,56"),
        ("line 7", "Status: 'UNBEKANNT' is none of the mapped values"),
    ]


def test_vendor_master_in_utf8_with_bom() -> None:
    result = convert("vendor_master_utf8_bom.csv", VENDORS)
    assert [(e["type"], e["vendor_id"]) for e in result.events] == [
        ("vendor.created", "V10023"), ("vendor.updated", "V10023"), ("vendor.created", "V20415"),
        ("vendor.created", "V30001"),
    ]  # fmt: skip
    update = result.events[1]
    assert update["event_time"] == "2026-11-20T14:05:00+00:00" and update["payee_account"] == "DE02120300000000202051"
    assert (
        update["changed_by"] == "u-mdm-02"
        and update["event_id"] == "csv:vendor.updated/V10023/2026-11-20T14:05:00+00:00"
    )
    assert result.events[2]["vendor_name"] == "Thames Logistics, Ltd"  # a quoted comma
    assert result.events[3]["payee_check"]["problems"] == ["iban_checksum"]
    assert [r.where for r in result.rejections] == ["line 6"] and "'yesterday'" in result.rejections[0].reason


def test_wrong_encoding_refuses_the_file_at_the_line() -> None:
    utf8 = (SAMPLES / "ap_payments_cp1252.csv").read_bytes().decode("cp1252").encode("utf-8")
    # UTF-8 read as Windows-1252 decodes (to the wrong letters): the header no longer has the mapped columns.
    assert "column 'Währung' of the mapping is not in the header" in refused(convert("utf8.csv", AP, data=utf8))
    latin = (SAMPLES / "vendor_master_utf8_bom.csv").read_bytes().decode("utf-8-sig").encode("cp1252")
    result = convert("latin.csv", VENDORS, data=latin)
    assert result.events == [] and result.refused is not None
    assert "not utf-8-sig text: byte 0xfc at line 2" in result.refused


def test_missing_column_and_hostile_cells() -> None:
    data = (SAMPLES / "vendor_master_utf8_bom.csv").read_bytes().replace(b"changed_by", b"author")
    assert "column 'changed_by' of the mapping is not in the header" in refused(convert("v.csv", VENDORS, data=data))
    row = b"V9,Long,DE89370400440532013000,COBADEFFXXX,DE,new,2026-11-01 00:00:00," + b"u" * 5000 + b"\n"
    base = (SAMPLES / "vendor_master_utf8_bom.csv").read_bytes()
    result = convert("v.csv", VENDORS, data=base + row)
    assert "5000 characters" in result.rejections[-1].reason
    assert "NUL" in refused(convert("v.csv", VENDORS, data=base + b"\x00\x01"))
    assert "columns, more than the 200" in refused(convert("v.csv", VENDORS, data=base + b"," * 300 + b"\n"))
    assert_no_clear_account(rejections_text(result))


def test_contract_breaking_row_is_rejected_with_the_contract_reason() -> None:
    data = (SAMPLES / "vendor_master_utf8_bom.csv").read_bytes()
    data += b"V9,Bad,DE89370400440532013000,COBADEFFXXX,Deutschland,new,2026-11-01 00:00:00,u\n"
    rejection = convert("v.csv", VENDORS, data=data).rejections[-1]
    assert rejection.where == "line 7" and "payee_country" in rejection.reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "records: payments\ntype: payment.released\ncolumns: {A: amount}\n",
            "m.yaml:3:1: columns: payment_id, vendor_id, currency, event_time must be mapped",
        ),
        (
            "records: payments\ntype: payment.released\nencodign: utf-8\ncolumns: {A: amount}\n",
            "m.yaml:3:1: unknown key 'encodign' in the mapping — did you mean 'encoding'?",
        ),
        (
            "records: vendors\ntype: payment.created\ncolumns: {V: vendor_id, T: event_time}\n",
            "m.yaml:2:7: type: payment.created is not a vendors event type",
        ),
        (
            "records: vendors\ntype: vendor.created\ncolumns: {V: vendor_id, T: event_time}\ntimezone: Mars/Base\n",
            "unknown time zone 'Mars/Base'",
        ),
        (
            "records: vendors\ntype: vendor.created\ncolumns: {V: vendor_id, T: time}\n",
            "m.yaml:3:28: columns.T: 'time' is not one of",
        ),
        ("- a\n- b\n", "m.yaml:1:1: a mapping file is a YAML mapping"),
        ("records: [unclosed\n", "m.yaml:2:1: invalid YAML"),
    ],
)
def test_mapping_errors_name_file_line_and_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(InvalidSource) as caught:
        parse_mapping(text, "m.yaml")
    assert message in str(caught.value)


def test_unreadable_mapping(tmp_path: Path) -> None:
    with pytest.raises(InvalidSource, match="cannot read"):
        load_mapping(tmp_path / "absent.yaml")
