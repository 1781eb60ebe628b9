"""MT940 (customer statement) -> `psp.settled` per booked debit, read with the `mt-940` package.

An MT940 statement has no end-to-end field of its own: the payment's reference is looked for in the
SEPA `EREF+` of the `:86:` details and in the `:61:` customer reference. The first of those that names a
payment seen in a pain.001 (`PaymentIndex`) is the `payment_id`; without such a match, the `EREF+` is
used (it is the end-to-end id by definition), then the customer reference (unless `NONREF`); a debit with
no reference at all is an orphan with an id from the statement and the bank reference, which the
engine's reconciliation reports as unmatched. Every statement line is a booking; only debits (`D`, and
`RC`, the reversal of a credit) are settlements. The entry date (else the value date) is the booking
date, read as the end of that day.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, tzinfo
from typing import Any, BinaryIO

import mt940

from paysentry.connectors.base import (
    Conversion,
    FileRefused,
    PaymentIndex,
    RecordRefused,
    clip,
    end_of_day,
    money_text,
    stable_id,
)
from paysentry.connectors.xmlsafe import BoundedReader

_NO_REFERENCE = {"", "NONREF", "NOTPROVIDED"}
_TAG = re.compile(r"^:(20|25|28C?|60[FM]|61|62[FM]):", re.MULTILINE)


def looks_like_mt940(head: str) -> bool:
    tags = set(_TAG.findall(head))
    return "61" in tags or {"20", "25"} <= tags


def _keep_customer_reference(transactions: Any, tag: Any, tag_dict: Any, result: Any) -> Any:
    # The :86: details processor overwrites customer_reference with its own KREF (usually absent).
    result["statement_customer_reference"] = result.get("customer_reference")
    return result


def stream(
    source: BinaryIO, result: Conversion, message: str, *, tz: tzinfo, index: PaymentIndex | None = None
) -> Iterator[dict[str, Any]]:
    """The statement's settlements. The `mt-940` package reads a whole text, so an MT940 file is held in
    memory (bounded by the file size limit; statements are small next to payment orders)."""
    data = BoundedReader(source, result.limits.max_file_bytes).read()
    if b"\x00" in data:
        raise FileRefused("binary data (NUL bytes) in a text statement")
    text = data.decode("utf-8") if _is_utf8(data) else data.decode("latin-1")
    if not looks_like_mt940(text):
        raise FileRefused("no MT940 statement tags (:20:, :25:, :61:) found")
    parsed = mt940.models.Transactions(processors={"post_statement": [_keep_customer_reference]})
    try:
        parsed.parse(text)
    except Exception as exc:  # the package raises many kinds on malformed input
        raise FileRefused(f"not a readable MT940 statement: {type(exc).__name__}: {str(exc)[:200]}") from None
    statement_ref = str(parsed.data.get("transaction_reference") or "")
    for position, transaction in enumerate(parsed, start=1):
        where = f"statement {statement_ref or '-'}, :61: line {position}"
        details = transaction.data
        status = str(details.get("status") or "")
        if status not in ("D", "RC"):
            result.skipped["credit lines"] += 1
            continue
        try:
            event = _event(details, statement_ref, position, tz, index)
        except RecordRefused as exc:
            result.reject(where, str(exc))
            continue
        accepted = result.accept(event, where)
        if accepted is not None:
            yield accepted


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _reference(details: dict[str, Any], index: PaymentIndex | None) -> tuple[str | None, bool]:
    """(payment id, whether it names a payment seen in a pain.001)."""
    candidates = [details.get("end_to_end_reference"), details.get("statement_customer_reference")]
    usable = [str(c).strip() for c in candidates if c and str(c).strip().upper() not in _NO_REFERENCE]
    if index is not None:
        for candidate in usable:
            if index.get(candidate) is not None:
                return candidate, True
    return (usable[0] if usable else None), False


def _day(value: Any) -> date | None:
    if value is None:
        return None
    return date(value.year, value.month, value.day)


def _event(
    details: dict[str, Any], statement_ref: str, position: int, tz: tzinfo, index: PaymentIndex | None
) -> dict[str, Any]:
    amount = details.get("amount")
    if amount is None:
        raise RecordRefused(":61: without an amount")
    value_day = _day(details.get("date"))
    booked = _day(details.get("entry_date")) or value_day
    if booked is None:
        raise RecordRefused(":61: without a date")
    payment_id, matched = _reference(details, index)
    bank_reference = clip(details.get("bank_reference"), 64)
    reference = bank_reference or f"{statement_ref}/{position}"
    return {
        "type": "psp.settled",
        "event_id": stable_id("booking", reference, payment_id or str(position)),
        "event_time": end_of_day(booked, tz),
        "payment_id": clip(payment_id, 128) or stable_id("orphan", statement_ref, reference, str(position)),
        "amount": money_text(abs(amount.amount), ":61: amount"),
        "currency": str(amount.currency or details.get("currency") or ""),
        "booking_date": booked.isoformat(),
        "value_date": value_day.isoformat() if value_day else None,
        "bank_reference": bank_reference,
        "statement_reference": clip(statement_ref, 64),
        "end_to_end_id": clip(details.get("end_to_end_reference"), 64),
        "creditor_name": clip(details.get("applicant_name"), 140),
        "orphan": True if payment_id is None else None,
        "seen_in_payment_order": matched if index is not None and payment_id else None,
    }
