"""camt.053 (statement) and camt.054 (debit/credit notification) -> `psp.settled` per booked debit.

Each booked debit entry (`CdtDbtInd` DBIT, status BOOK, not a reversal) gives one `psp.settled` per
transaction detail (a batch booking has several). `payment_id` is the transaction's `EndToEndId`, which
is the pain.001's, so the engine matches the settlement to the payment it released; a settlement whose id
the ERP never released is reported by the engine's reconciliation as unmatched. An entry with no
end-to-end reference at all is an orphan: it gets an id of its own from the bank's booking reference
(`orphan: true`), and the reconciliation reports it the same way.

`amount` is the booked transaction amount (`AmtDtls/TxAmt`, else the detail's `Amt`, else the entry's
amount when it has a single transaction), `fee` the charges (the detail's, or the entry's for a single
transaction), `booking_date` and `value_date` are kept, and `event_time` is the booking time (a booking
date alone is read as the end of that day, so it sorts after the day's releases). The event id comes
from the bank's booking reference, so the same booking seen in a camt.054 and again in the camt.053
statement is one event, and the second copy is recognised as a redelivery.

A booked credit entry that brings a payment back (return information `TxDtls/RtrInf`, or the bank
transaction code sub-family `RRTN`, returned credit transfer) gives one `psp.returned` per transaction
detail: `payment_id` is the original payment's end-to-end id, which the bank repeats in the return's
`Refs/EndToEndId`; the reason is `RtrInf/Rsn/Cd` (or `Prtry`) with `AddtlInf`, in words in
`status_reason` (reasons.py). A return without the original end-to-end id is rejected with its reason:
which payment came back is never guessed.

sepaxml ships no camt schema: the message is checked structurally, every value bounded before use.
Other credits, pending entries and reversals are counted as skipped. The file is streamed one entry at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import tzinfo
from decimal import Decimal
from typing import Any, BinaryIO, NamedTuple

from paysentry.connectors import xmlsafe as x
from paysentry.connectors.base import (
    Conversion,
    FileRefused,
    PaymentIndex,
    RecordRefused,
    clip,
    end_of_day,
    iso_date,
    iso_time,
    money_text,
    stable_id,
)
from paysentry.connectors.reasons import describe_return

ROOTS = {"camt.053": ("BkToCstmrStmt", "Stmt"), "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}


def stream(
    source: BinaryIO, result: Conversion, message: str, *, tz: tzinfo, index: PaymentIndex | None = None
) -> Iterator[dict[str, Any]]:
    """The file's settlements, one entry at a time; rejections and skipped entries go to `result`."""
    root_name, report_name = ROOTS[message[:8]]
    message_id: str | None = None
    report: Any = None
    reports = position = 0
    for kind, entry in x.walk(source, result.limits, f"not a {message} message", root_name, "Ntry", report_name):
        if kind == "end":
            _message_id(entry, root_name)
        if kind != "record":
            continue
        if x.local(entry.getparent()) != report_name:
            raise FileRefused(f"Ntry outside a {report_name}", f"line {entry.sourceline}")
        message_id = message_id or _message_id(entry.getroottree().getroot(), root_name)
        if entry.getparent() is not report:
            report, reports, position = entry.getparent(), reports + 1, 0
        position += 1
        where = f"/Document/{root_name}/{report_name}[{reports}]/Ntry[{position}] (line {entry.sourceline})"
        skipped = _not_a_settlement(entry)
        convert = _settlements
        if skipped == "credit entries" and _is_return(entry):
            skipped, convert = _not_booked(entry), _returns
        if skipped:
            result.skipped[skipped] += 1
            continue
        try:
            events = list(convert(entry, report, message_id, where, tz, index))
        except RecordRefused as exc:
            result.reject(where, str(exc))
            continue
        for event, detail_where in events:
            accepted = result.accept(event, detail_where)
            if accepted is not None:
                yield accepted


def _message_id(document: Any, root_name: str) -> str:
    message_id = x.text(document, root_name, "GrpHdr", "MsgId")
    if not message_id:
        raise FileRefused("GrpHdr/MsgId is required", "GrpHdr")
    return message_id


def _not_a_settlement(entry: Any) -> str | None:
    """Why this entry is not a settled payment (a credit, not booked, a reversal), or None."""
    direction = (x.text(entry, "CdtDbtInd") or "").upper()
    if direction != "DBIT":
        return "credit entries"
    return _not_booked(entry)


def _not_booked(entry: Any) -> str | None:
    """Why this entry is not a booking to convert (pending, a reversal), or None."""
    status = (x.text(entry, "Sts", "Cd") or x.text(entry, "Sts") or "").upper()
    if status != "BOOK":
        return "entries not booked"
    if (x.text(entry, "RvslInd") or "").lower() == "true":
        return "reversals"
    return None


def _is_return(entry: Any) -> bool:
    """A credit that is a payment coming back: return information, or a returned-transfer bank code."""
    details = [d for block in x.children(entry, "NtryDtls") for d in x.children(block, "TxDtls")]
    if any(x.child(detail, "RtrInf") is not None for detail in details):
        return True
    return any(_sub_family(node) == "RRTN" for node in [entry, *details])


def _sub_family(node: Any) -> str:
    code = x.text(node, "BkTxCd", "Domn", "Fmly", "SubFmlyCd") or ""
    return code.strip().upper()


def _charges(node: Any, what: str) -> tuple[str, str] | None:
    """(total, currency) of the charges below `node` (any camt version's shape), or None."""
    records = [c for c in x.children(node, "Chrgs")]
    amounts = []
    for charges in records:
        total = x.child(charges, "TtlChrgsAndTaxAmt")
        if total is not None:
            amounts.append(total)
            continue
        amounts += [x.child(r, "Amt") for r in x.children(charges, "Rcrd")]
        amounts.append(x.child(charges, "Amt"))
    amounts = [a for a in amounts if a is not None and (a.text or "").strip()]
    if not amounts:
        return None
    currencies = {a.get("Ccy") for a in amounts}
    if len(currencies) != 1:
        raise RecordRefused(f"{what}: charges in more than one currency")
    total = sum((Decimal(money_text(a.text, f"{what}/Amt", allow_zero=True)) for a in amounts), Decimal(0))
    return format(total, "f"), str(currencies.pop())


def _amount(node: Any) -> Any:
    for path in (("AmtDtls", "TxAmt", "Amt"), ("Amt",), ("AmtDtls", "InstdAmt", "Amt")):
        found = x.child(node, *path)
        if found is not None and (found.text or "").strip():
            return found
    return None


def _booking_time(entry: Any, tz: tzinfo) -> tuple[str, str | None]:
    moment = x.text(entry, "BookgDt", "DtTm")
    if moment:
        return iso_time(moment, tz, "BookgDt/DtTm"), moment[:10]
    day = x.text(entry, "BookgDt", "Dt")
    if not day:
        raise RecordRefused("a booked entry without BookgDt")
    return end_of_day(iso_date(day, "BookgDt/Dt"), tz), day


class _Transaction(NamedTuple):
    """One transaction of a booked entry, with what settlements and returns read alike."""

    number: int
    detail: Any  # TxDtls, or None for an entry without details
    where: str
    end_to_end: str | None
    detail_ref: str | None
    reference: str  # the booking's reference, or one made from the statement's place
    entry_charges: Any  # the entry's charges, for a transaction that has none of its own


def _transactions(
    entry: Any, report: Any, message_id: str, where: str, details: list[Any], booking_ref: str | None
) -> Iterator[_Transaction]:
    entry_charges = _charges(entry, "Ntry") if len(details) <= 1 else None
    for k, detail in enumerate(details or [None], start=1):
        detail_where = where
        if detail is not None:
            detail_where = f"{where.split(' ')[0]}/NtryDtls/TxDtls[{k}] (line {detail.sourceline})"
        refs = x.child(detail, "Refs") if detail is not None else None
        reference = booking_ref or f"{message_id}/{x.text(report, 'Id') or '-'}/{where.split(' ')[0]}"
        yield _Transaction(k, detail, detail_where, x.text(refs, "EndToEndId"),
                           x.text(refs, "AcctSvcrRef") or x.text(refs, "TxId"), reference, entry_charges)  # fmt: skip


def _amount_of(entry: Any, detail: Any, single: bool, what: str) -> Any:
    amount_node = _amount(detail) if detail is not None else None
    if amount_node is None and single:
        amount_node = x.child(entry, "Amt")
    if amount_node is None:
        raise RecordRefused(f"{what} without its own amount (AmtDtls/TxAmt or Amt)")
    return amount_node


def _details(entry: Any) -> list[Any]:
    return [d for block in x.children(entry, "NtryDtls") for d in x.children(block, "TxDtls")]


def _settlements(
    entry: Any, report: Any, message_id: str, where: str, tz: tzinfo, index: PaymentIndex | None
) -> Iterator[tuple[dict[str, Any], str]]:
    event_time, booking_date = _booking_time(entry, tz)
    booking_ref = x.text(entry, "AcctSvcrRef") or x.text(entry, "NtryRef")
    details = _details(entry)
    for k, detail, detail_where, end_to_end, detail_ref, reference, entry_charges in _transactions(
        entry, report, message_id, where, details, booking_ref
    ):
        amount_node = _amount_of(entry, detail, len(details) <= 1, "a transaction of a batch booking")
        usable = end_to_end if end_to_end and end_to_end.upper() != "NOTPROVIDED" else None
        payment_id = usable or stable_id("orphan", reference, detail_ref if len(details) > 1 else None, str(k))
        charges = (_charges(detail, "TxDtls") if detail is not None else None) or entry_charges
        creditor = x.text(detail, "RltdPties", "Cdtr", "Nm") or x.text(detail, "RltdPties", "Cdtr", "Pty", "Nm")
        event = {
            "type": "psp.settled",
            "event_id": stable_id("booking", reference, detail_ref or usable or str(k)),
            "event_time": event_time,
            "payment_id": clip(payment_id, 128),
            "amount": money_text(amount_node.text, "Amt"),
            "currency": amount_node.get("Ccy"),
            "fee": charges[0] if charges else None,
            "fee_currency": charges[1] if charges else None,
            "booking_date": booking_date,
            "value_date": x.text(entry, "ValDt", "Dt") or x.text(entry, "ValDt", "DtTm"),
            "bank_reference": clip(booking_ref, 64),
            "statement_message_id": message_id,
            "end_to_end_id": end_to_end,
            "creditor_name": clip(creditor, 140),
            "orphan": True if usable is None else None,
            "seen_in_payment_order": (index.get(usable) is not None) if index is not None and usable else None,
        }
        yield event, detail_where


def _return_reason(detail: Any) -> tuple[str | None, str | None, str | None]:
    """(ISO code, bank's own code, the bank's words) of a return's `RtrInf`."""
    info = x.child(detail, "RtrInf")
    words = " ".join(t for t in (x.text(a) for a in x.children(info, "AddtlInf")) if t)
    code = x.text(info, "Rsn", "Cd")
    return (code.upper() if code else None), x.text(info, "Rsn", "Prtry"), clip(words, 200)


def _returns(
    entry: Any, report: Any, message_id: str, where: str, tz: tzinfo, index: PaymentIndex | None
) -> Iterator[tuple[dict[str, Any], str]]:
    event_time, booking_date = _booking_time(entry, tz)
    booking_ref = x.text(entry, "AcctSvcrRef") or x.text(entry, "NtryRef")
    details = _details(entry)
    for _k, detail, detail_where, end_to_end, detail_ref, reference, entry_charges in _transactions(
        entry, report, message_id, where, details, booking_ref
    ):
        code, proprietary, words = _return_reason(detail) if detail is not None else (None, None, None)
        reason = describe_return(code, proprietary, words)
        if not end_to_end or end_to_end.upper() == "NOTPROVIDED":
            raise RecordRefused(f"a return without the original payment's end-to-end id (Refs/EndToEndId); {reason}")
        amount_node = _amount_of(entry, detail, len(details) <= 1, "a return in a batch booking")
        charges = (_charges(detail, "TxDtls") if detail is not None else None) or entry_charges
        event = {
            "type": "psp.returned",
            "event_id": stable_id("return", reference, detail_ref or end_to_end),
            "event_time": event_time,
            "payment_id": clip(end_to_end, 128),
            "amount": money_text(amount_node.text, "Amt"),
            "currency": amount_node.get("Ccy"),
            "fee": charges[0] if charges else None,
            "fee_currency": charges[1] if charges else None,
            "status_reason": clip(reason, 512),
            "reason_code": code,
            "booking_date": booking_date,
            "value_date": x.text(entry, "ValDt", "Dt") or x.text(entry, "ValDt", "DtTm"),
            "bank_reference": clip(booking_ref, 64),
            "statement_message_id": message_id,
            "end_to_end_id": end_to_end,
            "seen_in_payment_order": (index.get(end_to_end) is not None) if index is not None else None,
        }
        yield event, detail_where
