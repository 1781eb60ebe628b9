"""MT940 (customer statement) -> `psp.settled` per booked debit, read with the `mt-940` package.

An MT940 statement has no end-to-end field of its own: the payment's reference is looked for in the
SEPA `EREF+` of the `:86:` details and in the `:61:` customer reference. The first of those that names a
payment seen in a pain.001 (`PaymentIndex`) is the `payment_id`; without such a match, the `EREF+` is
used (it is the end-to-end id by definition), then the customer reference (unless `NONREF`); a debit with
no reference at all is an orphan with an id from the statement and the bank reference, which the
engine's reconciliation reports as unmatched. Every statement line is a booking; only debits (`D`, and
`RC`, the reversal of a credit) are settlements. The entry date (else the value date) is the booking
date, read as the end of that day.

A credit line (`C`, or `RD`, the reversal of a debit) that brings a payment back is a `psp.returned`
(mt940returns.py says how a return is recognised and where its reason and original reference are); a
return without the original payment's reference is rejected with its reason, never matched by guess.
Other credit lines are skipped. The file is read one statement at a time (mt940split.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import date, tzinfo
from typing import Any, BinaryIO

import mt940

from paysentry.connectors.base import (
    Conversion,
    FileRefused,
    Limits,
    PaymentIndex,
    RecordRefused,
    clip,
    end_of_day,
    money_text,
    stable_id,
)
from paysentry.connectors.mt940returns import is_return, original_references, return_reason
from paysentry.connectors.mt940split import Statement, statements
from paysentry.connectors.reasons import describe_return
from paysentry.redaction import scrub_text

_NO_REFERENCE = {"", "NONREF", "NOTPROVIDED"}
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+> ?")
# The package logs the text of a line it cannot read, account numbers and all: the connector reports the
# statement itself, with a masked reason.
logging.getLogger("mt940").setLevel(logging.CRITICAL + 1)
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
    """The file's settlements and returns, read one statement at a time (mt940split.py): each statement
    is parsed by the `mt-940` package on its own, so memory stays flat whatever the file's size. A
    statement that cannot be read (or is past its size bound) is rejected with its line and the rest go
    on; a file none of whose statements can be read is refused."""
    read = 0
    first_damage: tuple[str, str] | None = None
    for statement in statements(source, result.limits):
        where = f"statement {scrub_text(statement.reference or '-')} at line {statement.first_line}"
        try:
            parsed = _parse(statement, result.limits)
        except RecordRefused as exc:
            first_damage = first_damage or (where, str(exc))
            result.reject(where, str(exc))
            continue
        read += 1
        yield from _statement_events(parsed, statement, result, tz, index)
        parsed.transactions.clear()  # each booking points back at its statement: free them now, not at a GC pass
    if read == 0:
        if first_damage is None:
            raise FileRefused("no MT940 statement tags (:20:, :25:, :61:) found")
        raise FileRefused(f"no readable MT940 statement: {first_damage[1]}", first_damage[0])


def _parse(statement: Statement, limits: Limits) -> Any:
    if statement.oversize:
        raise RecordRefused(f"a statement larger than the {limits.max_statement_bytes} bytes allowed")
    text = statement.text()
    if not looks_like_mt940(text):
        raise RecordRefused("no MT940 statement tags (:20:, :25:, :61:) in this statement")
    parsed = mt940.models.Transactions(processors={"post_statement": [_keep_customer_reference]})
    try:
        parsed.parse(text)
    except Exception as exc:  # the package raises many kinds on malformed input
        said = _OBJECT_REPR.sub("", str(exc.args[0] if exc.args else exc))
        raise RecordRefused(f"not a readable MT940 statement: {type(exc).__name__}: {said[:200]}") from None
    if len(parsed) != len(statement.transaction_lines):
        raise RecordRefused(f"{len(statement.transaction_lines)} :61: lines but {len(parsed)} readable bookings")
    return parsed


def _statement_events(
    parsed: Any, statement: Statement, result: Conversion, tz: tzinfo, index: PaymentIndex | None
) -> Iterator[dict[str, Any]]:
    statement_ref = str(parsed.data.get("transaction_reference") or "")
    for position, transaction in enumerate(parsed, start=1):
        line = statement.transaction_lines[position - 1]
        where = f"statement {scrub_text(statement_ref or '-')}, :61: line {line}"
        details = transaction.data
        status = str(details.get("status") or "")
        returned = status in ("C", "RD") and is_return(details)
        if status not in ("D", "RC") and not returned:
            result.skipped["credit lines"] += 1
            continue
        try:
            if returned:
                event = _return_event(details, statement_ref, position, tz, index)
            else:
                event = _event(details, statement_ref, position, tz, index)
        except RecordRefused as exc:
            result.reject(where, str(exc))
            continue
        accepted = result.accept(event, where)
        if accepted is not None:
            yield accepted


def _reference(candidates: list[Any], index: PaymentIndex | None) -> tuple[str | None, bool]:
    """(payment id, whether it names a payment seen in a pain.001) from the references found, in order."""
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


def _booking(details: dict[str, Any]) -> tuple[Any, date, date | None]:
    """(amount, booking day, value day) of a :61: line."""
    amount = details.get("amount")
    if amount is None:
        raise RecordRefused(":61: without an amount")
    value_day = _day(details.get("date"))
    booked = _day(details.get("entry_date")) or value_day
    if booked is None:
        raise RecordRefused(":61: without a date")
    return amount, booked, value_day


def _event(
    details: dict[str, Any], statement_ref: str, position: int, tz: tzinfo, index: PaymentIndex | None
) -> dict[str, Any]:
    amount, booked, value_day = _booking(details)
    payment_id, matched = _reference([details.get("end_to_end_reference"), details.get("statement_customer_reference")],
                                     index)  # fmt: skip
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


def _return_event(
    details: dict[str, Any], statement_ref: str, position: int, tz: tzinfo, index: PaymentIndex | None
) -> dict[str, Any]:
    """A credit line that brings a payment back: `psp.returned` for the original payment's reference."""
    amount, booked, value_day = _booking(details)
    code, proprietary, words = return_reason(details)
    reason = describe_return(code, proprietary, words)
    payment_id, matched = _reference(original_references(details), index)
    if payment_id is None:
        raise RecordRefused(f"a return without the original payment's reference (EREF or :61: reference); {reason}")
    bank_reference = clip(details.get("bank_reference"), 64)
    reference = bank_reference or f"{statement_ref}/{position}"
    return {
        "type": "psp.returned",
        "event_id": stable_id("return", reference, payment_id),
        "event_time": end_of_day(booked, tz),
        "payment_id": clip(payment_id, 128),
        "amount": money_text(abs(amount.amount), ":61: amount"),
        "currency": str(amount.currency or details.get("currency") or ""),
        "status_reason": clip(reason, 512),
        "reason_code": code,
        "booking_date": booked.isoformat(),
        "value_date": value_day.isoformat() if value_day else None,
        "bank_reference": bank_reference,
        "statement_reference": clip(statement_ref, 64),
        "end_to_end_id": clip(payment_id, 64),
        "seen_in_payment_order": matched if index is not None else None,
    }
