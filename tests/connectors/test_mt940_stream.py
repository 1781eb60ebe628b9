"""MT940 is read one statement at a time: memory stays flat whatever the file's size, a damaged or oversized
statement is rejected with its line while the others convert, and statements are found with or without
their SWIFT message blocks."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from paysentry.connectors import synthetic
from paysentry.connectors.base import Limits
from paysentry.connectors.mt940split import statements
from tests.connectors.support import assert_no_clear_account, convert, refused, rejections_text
from tests.harness.conversion_memory import assert_memory_flat, measure_conversion

STATEMENT = (
    ":20:{ref}\n:25:DE02120300000000202051\n:28C:1/1\n:60F:C261127EUR100000,00\n"
    ":61:2611281128D{amount},00NTRFNONREF//BK-{ref}\n:86:116?00SEPA UEBERWEISUNG?20EREF+PAY-{ref}\n"
    ":62F:C261128EUR90000,00\n"
)


def _statement(ref: str, amount: int = 10000) -> str:
    return STATEMENT.format(ref=ref, amount=amount)


def test_memory_does_not_grow_with_the_statement_file(tmp_path: Path) -> None:
    # Read whole, the large file's text and its parsed bookings would take tens of MB more than the small
    # one's (~2.5 MB): read statement by statement (500 bookings each), the peaks are alike.
    small = measure_conversion(synthetic.write_mt940, 2_000, tmp_path / "small.sta")
    large = measure_conversion(synthetic.write_mt940, 20_000, tmp_path / "large.sta")
    assert_memory_flat(small, large)


def test_a_damaged_statement_is_rejected_with_its_line_and_the_rest_go_on(caplog: pytest.LogCaptureFixture) -> None:
    damaged = _statement("S2").replace(":60F:C261127EUR100000,00", ":60F:GARBAGE DE89370400440532013000")
    data = _statement("S1") + "-\n" + damaged + "-\n" + _statement("S3") + "-\n"
    with caplog.at_level(logging.DEBUG):
        result = convert("three.sta", data=data.encode())
    assert [e["payment_id"] for e in result.events] == ["PAY-S1", "PAY-S3"]
    [rejection] = result.rejections
    assert rejection.where == "statement S2 at line 9" and "not a readable MT940 statement" in rejection.reason
    assert result.refused is None
    assert_no_clear_account(rejections_text(result))
    assert_no_clear_account(caplog.text)  # the package's own log of the line is silenced


def test_a_statement_whose_bookings_the_package_drops_is_rejected() -> None:
    # A :61: the package reads as nothing (here: a second amount sign) must not vanish silently.
    data = _statement("S1") + "-\n" + _statement("S2").replace("D10000,00", "D10000,00,5") + "-\n"
    result = convert("two.sta", data=data.encode())
    assert [e["payment_id"] for e in result.events] == ["PAY-S1"]
    assert result.rejections[0].where == "statement S2 at line 9"


def test_an_oversized_statement_is_skipped_to_its_end() -> None:
    big = _statement("BIG").replace(":62F:", ":86:" + "X" * 2000 + "\n:62F:")
    data = _statement("S1") + "-\n" + big + "-\n" + _statement("S3") + "-\n"
    result = convert("big.sta", data=data.encode(), limits=Limits(max_statement_bytes=1024))
    assert [e["payment_id"] for e in result.events] == ["PAY-S1", "PAY-S3"]
    assert "larger than the 1024 bytes allowed" in result.rejections[0].reason


def test_statements_with_and_without_their_swift_blocks() -> None:
    blocked = synthetic.MT940_SWIFT_HEADER + _statement("B1").replace("\n", "\r\n") + "-}{5:{CHK:0123456789AB}}\r\n"
    bare = _statement("P1") + _statement("P2")  # no closing lines: each :20: opens the next statement
    result = convert("mixed.sta", data=(blocked + bare).encode())
    assert [e["payment_id"] for e in result.events] == ["PAY-B1", "PAY-P1", "PAY-P2"]
    assert result.rejections == []
    found = list(statements(io.BytesIO((blocked + bare).encode()), Limits()))
    assert [(s.reference, s.first_line, s.transaction_lines) for s in found] == [
        ("B1", 1, [6]), ("P1", 10, [14]), ("P2", 17, [21])]  # fmt: skip


def test_a_file_with_no_readable_statement_is_refused() -> None:
    data = _statement("S1").replace(":60F:C261127EUR100000,00", ":60F:GARBAGE")
    assert "no readable MT940 statement" in refused(convert("bad.sta", data=data.encode()))


def test_a_line_without_end_refuses_the_file() -> None:
    data = _statement("S1") + ":86:" + "X" * 5000
    result = convert("long.sta", data=data.encode(), limits=Limits(max_line_bytes=4096))
    assert "a line longer than the 4096 bytes allowed" in refused(result)
