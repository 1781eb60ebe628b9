"""Large payment files of any size, written as streams (one transaction at a time, nothing held), for the
throughput benchmark and the bounded-memory tests: a pain.001.001.03 payment run, the camt.054 (or the
MT940 statements) that book it, and the ERP's CSV payment list (config/connectors/generic-ap.yaml).

Every transaction is valid: the accounts are real-format IBANs with good checksums, amounts have two
decimals, and the group header's NbOfTxs and CtrlSum add up (the sum is worked out before writing).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

# (IBAN, BIC, country): valid checksums, so the payee checks pass as they would in a clean payment run.
_PAYEES = (
    ("DE89370400440532013000", "COBADEFFXXX", "DE"),
    ("GB29NWBK60161331926819", "NWBKGB2LXXX", "GB"),
    ("FR1420041010050500013M02606", "PSSTFRPPXXX", "FR"),
    ("SE4550000000058398257466", "ESSESESSXXX", "SE"),
)
_PAIN001 = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
# The SWIFT blocks before an MT940's text: basic header (sender BIC, session and sequence numbers zero, as
# a generated file has them), output application header (MT 940, times, receiver), text block opened.
MT940_SWIFT_HEADER = "{1:F01BYLADEM1AXXX0000000000}{2:O9400615261128BYLADEM1AXXX00000000002611280615N}{4:\r\n"
_CAMT054 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"
_PER_BLOCK = 1000  # transactions per payment-information block, as an ERP payment run splits them


def amount(number: int) -> Decimal:
    """The amount of transaction `number`: varied, exact, two decimals."""
    return Decimal(100 + number % 9000) + Decimal(number % 100) / 100


def end_to_end(number: int) -> str:
    return f"PAY-{number:09d}"


def write_pain001(path: Path, transactions: int) -> int:
    """A pain.001.001.03 with `transactions` credit transfers; returns its size in bytes."""
    total = sum((amount(n) for n in range(transactions)), Decimal(0))
    with path.open("wb") as out:
        out.write(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{_PAIN001}"><CstmrCdtTrfInitn>\n'
            f"<GrpHdr><MsgId>BENCH-{transactions}</MsgId><CreDtTm>2026-11-27T16:30:00+01:00</CreDtTm>"
            f"<NbOfTxs>{transactions}</NbOfTxs><CtrlSum>{total}</CtrlSum>"
            "<InitgPty><Nm>Acme Industrie GmbH</Nm></InitgPty></GrpHdr>\n".encode()
        )
        for start in range(0, transactions, _PER_BLOCK):
            _write_block(out, start, min(start + _PER_BLOCK, transactions))
        out.write(b"</CstmrCdtTrfInitn></Document>\n")
        return out.tell()


def _write_block(out: BinaryIO, start: int, stop: int) -> None:
    out.write(
        f"<PmtInf><PmtInfId>RUN-{start // _PER_BLOCK}</PmtInfId><PmtMtd>TRF</PmtMtd>"
        f"<NbOfTxs>{stop - start}</NbOfTxs><PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl></PmtTpInf>"
        "<ReqdExctnDt>2026-11-28</ReqdExctnDt><Dbtr><Nm>Acme Industrie GmbH</Nm>"
        "<Id><OrgId><Othr><Id>DE01</Id></Othr></OrgId></Id></Dbtr>"
        "<DbtrAcct><Id><IBAN>DE02120300000000202051</IBAN></Id></DbtrAcct>"
        "<DbtrAgt><FinInstnId><BIC>BYLADEM1001</BIC></FinInstnId></DbtrAgt><ChrgBr>SLEV</ChrgBr>\n".encode()
    )
    for number in range(start, stop):
        iban, bic, country = _PAYEES[number % len(_PAYEES)]
        out.write(
            f"<CdtTrfTxInf><PmtId><InstrId>I-{number}</InstrId><EndToEndId>{end_to_end(number)}</EndToEndId>"
            f'</PmtId><Amt><InstdAmt Ccy="EUR">{amount(number)}</InstdAmt></Amt>'
            f"<CdtrAgt><FinInstnId><BIC>{bic}</BIC></FinInstnId></CdtrAgt>"
            f"<Cdtr><Nm>Vendor {number % 5000}</Nm><PstlAdr><Ctry>{country}</Ctry></PstlAdr>"
            f"<Id><OrgId><Othr><Id>V{number % 5000:05d}</Id></Othr></OrgId></Id></Cdtr>"
            f"<CdtrAcct><Id><IBAN>{iban}</IBAN></Id></CdtrAcct>"
            f"<RmtInf><Ustrd>Invoice R-{number}</Ustrd></RmtInf></CdtTrfTxInf>\n".encode()
        )
    out.write(b"</PmtInf>\n")


def write_camt054(path: Path, entries: int) -> int:
    """A camt.054.001.02 booking `entries` debits, one per payment of `write_pain001`; returns its size."""
    with path.open("wb") as out:
        out.write(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{_CAMT054}"><BkToCstmrDbtCdtNtfctn>'
            f"<GrpHdr><MsgId>NTF-BENCH-{entries}</MsgId><CreDtTm>2026-11-28T20:15:00+01:00</CreDtTm></GrpHdr>"
            "<Ntfctn><Id>NTF-1</Id><CreDtTm>2026-11-28T20:15:00+01:00</CreDtTm>"
            "<Acct><Id><IBAN>DE02120300000000202051</IBAN></Id></Acct>\n".encode()
        )
        for number in range(entries):
            booked = amount(number)
            out.write(
                f'<Ntry><Amt Ccy="EUR">{booked + Decimal("2.50")}</Amt><CdtDbtInd>DBIT</CdtDbtInd>'
                "<Sts>BOOK</Sts><BookgDt><Dt>2026-11-28</Dt></BookgDt><ValDt><Dt>2026-11-28</Dt></ValDt>"
                f"<AcctSvcrRef>BK-{number:09d}</AcctSvcrRef><NtryDtls><TxDtls><Refs>"
                f"<EndToEndId>{end_to_end(number)}</EndToEndId></Refs>"
                f'<AmtDtls><TxAmt><Amt Ccy="EUR">{booked}</Amt></TxAmt></AmtDtls>'
                '<Chrgs><Amt Ccy="EUR">2.50</Amt></Chrgs></TxDtls></NtryDtls></Ntry>\n'.encode()
            )
        out.write(b"</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>\n")
        return out.tell()


def _mt940_amount(value: Decimal) -> str:
    return f"{value:.2f}".replace(".", ",")


def write_mt940(path: Path, debits: int, per_statement: int = 500) -> int:
    """MT940 statements (one per `per_statement` bookings, each in its SWIFT message blocks) booking
    `debits` debits, one per payment of `write_pain001`, referenced by SEPA `EREF+`; returns the size."""
    balance = Decimal(10**9)
    with path.open("wb") as out:
        for number, start in enumerate(range(0, debits, per_statement), start=1):
            out.write(
                (
                    MT940_SWIFT_HEADER
                    + f":20:BENCH{number:08d}\r\n:25:BYLADEM1001/DE02120300000000202051\r\n:28C:{number}/1\r\n"
                    f":60F:C261127EUR{_mt940_amount(balance)}\r\n"
                ).encode()
            )
            for n in range(start, min(start + per_statement, debits)):
                booked = amount(n)
                balance -= booked
                out.write(
                    f":61:2611281128D{_mt940_amount(booked)}NTRFNONREF//BK{n:09d}\r\n"
                    f":86:116?00SEPA UEBERWEISUNG?20EREF+{end_to_end(n)}?21SVWZ+R-{n}?32VENDOR {n % 5000}\r\n".encode()
                )
            out.write(f":62F:C261128EUR{_mt940_amount(balance)}\r\n-}}\r\n".encode())
        return out.tell()


_CSV_HEADER = (
    "Zahlungsnummer;Status;Zeitpunkt;Buchungskreis;Kreditor;Name;Rechnung;Bestellung;Betrag;Währung;IBAN;BIC;"
    "Land;Fällig;Erfasser;Freigeber\r\n"
)


def write_ap_csv(path: Path, rows: int) -> int:
    """The generic AP export (Windows-1252, semicolons, decimal comma) with `rows` released payments."""
    with path.open("wb") as out:
        out.write(_CSV_HEADER.encode("cp1252"))
        for number in range(rows):
            iban, bic, country = _PAYEES[number % len(_PAYEES)]
            money = f"{amount(number):,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
            out.write(
                f"{end_to_end(number)};BEZAHLT;27.11.2026 16:30;DE01;V{number % 5000:05d};Vendor {number % 5000};"
                f'R-{number};;"{money}";EUR;{iban};{bic};{country};15.12.2026;u-ap-07;u-fin-02\r\n'.encode("cp1252")
            )
        return out.tell()
