"""CSV exports (payment lists, vendor master) -> contract events, by a column mapping (csvmap.py).

The file is read one line at a time and decoded as the mapping says (a UTF-8 byte-order mark is skipped); a
byte that is not in that encoding refuses the file with its line, since every later row would be read wrong
too. The header row must hold every mapped column. Each row then becomes one event or one rejection naming
its line: amounts are read exactly (decimal comma and thousands separator as mapped, no sign), dates and
times by the mapped formats, times without an offset in the mapped time zone.

Unless a column is mapped to `event_id`, the id is made from the row's own keys (type and payment id,
or type, vendor id and time for vendor rows), so the same export converted twice gives the same events.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

from paysentry.connectors.accounts import check_bank_details
from paysentry.connectors.base import (
    Conversion,
    FileRefused,
    Limits,
    RecordRefused,
    money_text,
    stable_id,
    zone,
)
from paysentry.connectors.csvmap import CsvMapping, TypeByColumn
from paysentry.connectors.xmlsafe import BoundedReader

_MONEY = ("amount", "fee")
_LENGTHS = {"event_id": 128, "payment_id": 128, "company_code": 32, "vendor_id": 64, "vendor_name": 256,
            "invoice_id": 128, "po_id": 128, "payee_account": 64, "payee_bank": 128, "created_by": 64,
            "changed_by": 64, "status_reason": 512}  # fmt: skip
_BIC_SHAPE = re.compile(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?")


def stream(source: BinaryIO, result: Conversion, mapping: CsvMapping) -> Iterator[dict[str, Any]]:
    """The export's events, one row at a time; rejections go to `result`."""
    limits = result.limits
    rows = _rows(_lines(source, mapping, limits), mapping, limits)
    header = next(rows, None)
    if header is None:
        raise FileRefused("empty file: no header row")
    positions = _positions(header[1], mapping)
    for line, cells in rows:
        where = f"line {line}"
        if not any(cell.strip() for cell in cells):
            continue
        try:
            event = _event(cells, positions, mapping, limits)
        except RecordRefused as exc:
            result.reject(where, str(exc))
            continue
        accepted = result.accept(event, where)
        if accepted is not None:
            yield accepted


def _lines(source: BinaryIO, mapping: CsvMapping, limits: Limits) -> Iterator[str]:
    """The file's lines decoded as the mapping says, read one at a time within the file's limits."""
    reader = BoundedReader(source, limits.max_file_bytes)
    decode = codecs.getincrementaldecoder("utf-8-sig" if mapping.encoding == "utf-8" else mapping.encoding)()
    number = 0
    while True:
        raw = _line(reader, limits.max_line_bytes)
        if not raw:
            return
        number += 1
        if b"\x00" in raw:
            raise FileRefused(f"binary data (a NUL byte) at line {number}", f"line {number}")
        try:
            yield decode.decode(raw, final=not raw.endswith(b"\n"))
        except UnicodeDecodeError as exc:
            reason = (
                f"not {mapping.encoding} text: byte 0x{raw[exc.start]:02x} at line {number} (is the encoding right?)"
            )
            raise FileRefused(reason, f"line {number}") from None


def _line(reader: BoundedReader, limit: int) -> bytes:
    """The next line with its newline ('' at the end), refused past `limit` bytes."""
    line = reader.raw.readline(limit + 1)
    reader.count += len(line)
    if reader.count > reader.limit:
        raise FileRefused(f"file is larger than allowed: more than the {reader.limit} allowed bytes")
    if len(line) > limit:
        raise FileRefused(f"a line longer than the {limit} bytes allowed")
    return line


def _rows(lines: Iterator[str], mapping: CsvMapping, limits: Limits) -> Any:
    """(first line of the row, cells) for every row, the header first."""
    reader = csv.reader(lines, delimiter=mapping.delimiter, quotechar=mapping.quotechar)
    last = 0
    try:
        for cells in reader:
            start, last = last + 1, reader.line_num
            if len(cells) > limits.max_csv_columns:
                too_many = f"{len(cells)} columns, more than the {limits.max_csv_columns} allowed"
                raise FileRefused(too_many, f"line {start}")
            yield start, cells
    except csv.Error as exc:
        raise FileRefused(f"not readable as CSV: {exc}", f"line {reader.line_num}") from None


def _positions(header: list[str], mapping: CsvMapping) -> dict[str, int]:
    names = [cell.strip().lstrip("\ufeff") for cell in header]
    positions: dict[str, int] = {}
    wanted = dict(mapping.columns)
    if isinstance(mapping.type, TypeByColumn):
        wanted[mapping.type.column] = "type"  # type: ignore[assignment]
    for column, field in wanted.items():
        if column not in names:
            shown = ", ".join(repr(n[:40]) for n in names[:20])
            raise FileRefused(f"column {column!r} of the mapping is not in the header (found: {shown})", "line 1")
        positions[field] = names.index(column)
    return positions


def _number(text: str, mapping: CsvMapping, what: str) -> str:
    cleaned = text.replace("\u00a0", " ").strip()
    if mapping.thousands:
        cleaned = cleaned.replace(mapping.thousands, "")
    if mapping.decimal == ",":
        cleaned = cleaned.replace(",", ".")
    if not cleaned or not all(c.isdigit() or c == "." for c in cleaned) or cleaned.count(".") > 1:
        raise RecordRefused(f"{what}: {text[:40]!r} is not an amount written as {_example(mapping)}")
    return money_text(cleaned, what, allow_zero=what == "fee")


def _example(mapping: CsvMapping) -> str:
    return f"1{mapping.thousands}234{mapping.decimal}56"


def _time(text: str, mapping: CsvMapping) -> str:
    for pattern in (mapping.time_format, mapping.date_format):
        try:
            moment = datetime.strptime(text, pattern)
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone(mapping.timezone))
        return moment.isoformat()
    raise RecordRefused(f"event_time: {text[:40]!r} does not match {mapping.time_format!r} or {mapping.date_format!r}")


def _value(field: str, text: str, mapping: CsvMapping, limits: Limits) -> Any:
    if len(text) > limits.max_field_chars:
        raise RecordRefused(f"{field}: {len(text)} characters, more than the {limits.max_field_chars} allowed")
    if field in _MONEY:
        return _number(text, mapping, field)
    if field == "event_time":
        return _time(text, mapping)
    if field == "due_date":
        try:
            return datetime.strptime(text, mapping.date_format).date().isoformat()
        except ValueError:
            raise RecordRefused(f"due_date: {text[:40]!r} does not match {mapping.date_format!r}") from None
    if field == "approved_by":
        return [name.strip() for name in text.split(mapping.list_separator) if name.strip()]
    if field in ("currency", "fee_currency", "payee_country"):
        return text.upper()
    limit = _LENGTHS.get(field)
    if limit is not None and len(text) > limit:
        raise RecordRefused(f"{field}: {len(text)} characters, more than the contract's {limit}")
    return text


def _event(cells: list[str], positions: dict[str, int], mapping: CsvMapping, limits: Limits) -> dict[str, Any]:
    event: dict[str, Any] = {str(name): value for name, value in mapping.constants.items()}
    for field, position in positions.items():
        text = cells[position].strip() if position < len(cells) else ""
        if not text:
            continue
        if field == "type":
            assert isinstance(mapping.type, TypeByColumn)
            kind = mapping.type.values.get(text)
            if kind is None:
                raise RecordRefused(f"{mapping.type.column}: {text[:40]!r} is none of the mapped values")
            event["type"] = kind
            continue
        event[field] = _value(field, text, mapping, limits)
    if isinstance(mapping.type, str):
        event["type"] = mapping.type
    if "type" not in event:
        raise RecordRefused(f"{mapping.type.column}: empty, no event type")  # type: ignore[union-attr]
    bank = event.get("payee_bank")
    bic = bank if isinstance(bank, str) and _BIC_SHAPE.fullmatch(bank) else None
    event["payee_check"] = check_bank_details(event.get("payee_account"), bic)
    if "event_id" not in event:
        if mapping.records == "payments":
            event["event_id"] = stable_id("csv", event["type"], event.get("payment_id"))
        else:
            event["event_id"] = stable_id("csv", event["type"], event.get("vendor_id"), event.get("event_time"))
    return event
