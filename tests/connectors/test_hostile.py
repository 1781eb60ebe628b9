"""Hostile and broken files: each is refused (or its bad records rejected) with a reason, never a crash,
never a clear account in what is written about it."""

from __future__ import annotations

import pytest

from paysentry.connectors.base import Limits
from tests.bounded import finishes
from tests.connectors.support import MAPPINGS, SAMPLES, assert_no_clear_account, convert, refused, rejections_text

PAIN001 = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"


def _refused(name: str, data: bytes, limits: Limits | None = None) -> str:
    result = finishes(lambda: convert(name, data=data, limits=limits))
    assert result.events == [] and result.refused is not None
    assert_no_clear_account(rejections_text(result))
    return result.refused


def test_xxe_is_refused_and_nothing_is_read(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-DE89370400440532013000")
    data = (SAMPLES / "pain001_v03.xml").read_text()
    data = data.replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY x SYSTEM "file://{secret}">]>',
    )
    data = data.replace("<Nm>Nordic Parts AB</Nm>", "<Nm>&x;</Nm>")
    reason = _refused("xxe.xml", data.encode())
    assert "document type declaration" in reason and "TOPSECRET" not in reason


def test_billion_laughs_is_refused() -> None:
    lols = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))  # 10^9 "lol"s
    data = f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY l0 "lol">{lols}]><Document xmlns="{PAIN001}">&l9;</Document>'
    assert "document type declaration" in _refused("lol.xml", data.encode())


def test_doctype_hidden_in_utf16_is_refused() -> None:
    data = f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY a "b">]><Document xmlns="{PAIN001}"/>'
    assert "document type declaration" in _refused("u16.xml", data.encode("utf-16"))


def test_huge_file_is_refused_before_parsing() -> None:
    data = (SAMPLES / "pain001_v03.xml").read_bytes() + b" " * 2048
    assert "more than the 2048 allowed" in _refused("big.xml", data, Limits(max_file_bytes=2048))


def test_deep_nesting_is_refused() -> None:
    data = (
        f'<Document xmlns="{PAIN001}"><CstmrCdtTrfInitn>'
        + "<a>" * 5000
        + "</a>" * 5000
        + "</CstmrCdtTrfInitn></Document>"
    )
    reason = _refused("deep.xml", data.encode())
    assert "nested more than 40 levels" in reason


def test_too_many_records_is_refused() -> None:
    reason = _refused("many.xml", (SAMPLES / "pain001_v03.xml").read_bytes(), Limits(max_records=2))
    assert "more than 2 records" in reason


def test_truncated_xml_is_refused_with_its_line() -> None:
    data = (SAMPLES / "pain001_v03.xml").read_bytes()
    result = convert("cut.xml", data=data[: len(data) // 2])
    assert result.events == [] and result.refused is not None and "not well-formed XML" in result.refused
    assert result.rejections[0].where.startswith("line ")


def test_wrong_schema_is_refused() -> None:
    data = (SAMPLES / "pain001_v03.xml").read_bytes().replace(b"<CstmrCdtTrfInitn>", b"<Other>", 1)
    data = data.replace(b"</CstmrCdtTrfInitn>", b"</Other>")
    assert "no Document/CstmrCdtTrfInitn" in _refused("other.xml", data)
    alien = b'<?xml version="1.0"?><invoice xmlns="urn:example:invoice"><total>10</total></invoice>'
    assert "without an ISO 20022" in _refused("alien.xml", alien)
    unsupported = b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"/>'
    assert "not converted" in _refused("dd.xml", unsupported)


def test_format_named_but_file_is_another() -> None:
    assert "not a pain.002" in refused(convert("pain001_v03.xml", "pain.002"))


@pytest.mark.parametrize("junk", [bytes(range(256)) * 64, b"\x89PNG\r\n\x1a\n" + bytes(500), b"", b"   \n"])
def test_binary_junk_is_refused(junk: bytes) -> None:
    _refused("junk.bin", junk)
    _refused("junk.sta", b":20:X\n:25:Y\n:61:" + junk)


def test_mt940_that_the_package_cannot_read() -> None:
    result = convert("bad.sta", data=b":20:REF\n:25:ACC\n:61:NOT A VALID LINE\n")
    assert result.events == [] and (result.refused or result.rejections)


def test_iban_with_a_wrong_checksum_is_carried_not_fatal() -> None:
    data = (SAMPLES / "pain001_v03.xml").read_bytes().replace(b"DE89370400440532013000", b"DE00370400440532013000", 1)
    [first] = [e for e in convert("x.xml", data=data).events if e["payment_id"] == "PAY-2026-000101"]
    assert first["payee_check"] == {"valid": False, "problems": ["iban_checksum"]}


def _check(account: str, bic: str | None) -> dict:
    from paysentry.connectors.accounts import check_bank_details

    outcome = check_bank_details(account, bic)
    assert outcome is not None
    return outcome


def test_bic_checks() -> None:
    from paysentry.connectors.accounts import check_bank_details

    iban = "DE89370400440532013000"
    assert _check(iban, "COBADEFFXXX") == {"bank": "Commerzbank", "valid": True, "problems": []}
    assert _check(iban, "NOT-A-BIC") == {"bank": "Commerzbank", "valid": False, "problems": ["bic_structure"]}
    assert _check(iban, "BNPAFRPPXXX")["problems"] == ["bic_country_mismatch"]
    assert _check(iban, "DEUTDEFFXXX")["problems"] == ["bic_mismatch"]
    assert _check(iban, "DEUTDEFFXXX")["valid"] is True  # a note, not invalid
    assert _check("XX89370400440532013000", None)["problems"] == ["iban_country"]
    assert check_bank_details("12345678", None) is None  # a national account number is not checked


def test_overlong_field_rejects_the_record() -> None:
    data = (
        (SAMPLES / "camt054_v02.xml")
        .read_bytes()
        .replace(b"<Nm>Unknown Payee Ltd</Nm>", b"<Nm>" + b"N" * 3000 + b"</Nm>")
    )
    data = data.replace(b"<EndToEndId>PAY-2026-000102</EndToEndId>", b"<EndToEndId>" + b"E" * 3000 + b"</EndToEndId>")
    result = convert("long.xml", data=data)
    assert [e["payment_id"][:7] for e in result.events] == ["PAY-202", "orphan:"]
    assert len(result.events[1]["creditor_name"]) == 140  # a name is cut to what a payment file allows
    [rejection] = result.rejections
    assert rejection.reason == "end_to_end_id is longer than the 2048 characters allowed"
    assert "TxDtls[1] (line 69)" in rejection.where


def test_record_limit_counts_rejected_records_too() -> None:
    rows = b"".join(b"V%d,N,DE89370400440532013000,COBADEFFXXX,DE,new,not a time,u\n" % n for n in range(50))
    data = b"vendor,name,iban,bic,country,change,changed_at,changed_by\n" + rows
    result = convert("v.csv", f"csv:{MAPPINGS / 'vendor-master.yaml'}", data=data, limits=Limits(max_records=20))
    assert "more than 20 records" in refused(result)
