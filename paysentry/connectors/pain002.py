"""pain.002 (payment status report) -> `psp.submitted` (accepted) / `psp.failed` (rejected) per transaction.

The bank's answer to a pain.001. Per `TxInfAndSts`: the original `EndToEndId` (else `InstrId`) is the
`payment_id`, `TxSts` the status (a transaction without one takes its block's or the group's status);
`RJCT` gives `psp.failed`, the accepted statuses (`ACCP`, `ACTC`, `ACSP`, `ACSC`, ...) `psp.submitted`,
and pending ones (`PDNG`, `RCVD`) no event. `status_reason` carries the status, the ISO reason code and
its meaning and the bank's additional text. The amount is the original transaction's (`OrgnlTxRef/Amt`);
a report that leaves it out takes it from the pain.001 seen before (`PaymentIndex`), and so does a report
that gives only a group or payment-information status: it applies to every payment of that original
message. `event_time` is the report's creation time.

sepaxml ships no pain.002 schema: the message is checked structurally here (root, header, a status and a
reference per transaction), and every value is bounded before it is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import tzinfo
from typing import Any

from paysentry.connectors import xmlsafe as x
from paysentry.connectors.base import (
    Conversion,
    FileRefused,
    KnownPayment,
    Limits,
    PaymentIndex,
    RecordRefused,
    clip,
    iso_time,
    money_text,
    stable_id,
)
from paysentry.connectors.reasons import ACCEPTED, PENDING, REJECTED, STATUS_MEANINGS, describe_reason

ROOT = "CstmrPmtStsRpt"


def convert(
    data: bytes, source: str, message: str, *, tz: tzinfo, limits: Limits, index: PaymentIndex | None = None
) -> Conversion:
    result = Conversion(source, message, limits=limits)
    index = index if index is not None else PaymentIndex()
    try:
        tree = x.parse(data, limits)
        root = x.child(tree.getroot(), ROOT)
        if x.local(tree.getroot()) != "Document" or root is None:
            raise FileRefused(f"not a {message} message: no Document/{ROOT}")
        report_id = x.text(root, "GrpHdr", "MsgId")
        created = x.text(root, "GrpHdr", "CreDtTm")
        if not report_id or not created:
            raise FileRefused("GrpHdr/MsgId and GrpHdr/CreDtTm are required", "GrpHdr")
        try:
            event_time = iso_time(created, tz, "GrpHdr/CreDtTm")
        except RecordRefused as exc:
            raise FileRefused(str(exc), "GrpHdr/CreDtTm") from None
        group = x.child(root, "OrgnlGrpInfAndSts")
        original_message = x.text(group, "OrgnlMsgId")
        if group is None or not original_message:
            raise FileRefused("OrgnlGrpInfAndSts/OrgnlMsgId is required", "OrgnlGrpInfAndSts")
        for where, status, reason, payment_id, known, extra in _statuses(root, group, original_message, index):
            try:
                event = _event(report_id, event_time, original_message, status, reason, payment_id, known, extra)
            except RecordRefused as exc:
                result.reject(where, str(exc))
                continue
            if event is None:
                result.skipped[f"status {status} (no event)"] += 1
                continue
            result.add(event, where)
    except FileRefused as exc:
        result.events.clear()
        result.refuse(exc)
    return result


def _reason(node: Any) -> tuple[str | None, str | None]:
    """(code, words) of the first StsRsnInf below `node`."""
    info = x.child(node, "StsRsnInf")
    if info is None:
        return None, None
    code = x.text(info, "Rsn", "Cd")
    details = " ".join(x.text(n) or "" for n in x.children(info, "AddtlInf")).strip() or None
    return code, describe_reason(code, x.text(info, "Rsn", "Prtry"), clip(details, 200))


Status = tuple[str, str | None, tuple[str | None, str | None], str | None, KnownPayment | None, dict[str, Any]]


def _statuses(root: Any, group: Any, original_message: str, index: PaymentIndex) -> Iterator[Status]:
    """(where, status, reason, payment id, what is known of it, extras) for every payment reported on."""
    group_status = x.text(group, "GrpSts")
    group_reason = _reason(group)
    blocks = list(x.children(root, "OrgnlPmtInfAndSts"))
    if not blocks and group_status:
        yield from _expanded(f"/Document/{ROOT}/OrgnlGrpInfAndSts", group_status, group_reason,
                             index.of_message(original_message), original_message)  # fmt: skip
    for i, block in enumerate(blocks, start=1):
        block_id = x.text(block, "OrgnlPmtInfId")
        block_status = x.text(block, "PmtInfSts") or group_status
        block_reason = _reason(block) if x.child(block, "StsRsnInf") is not None else group_reason
        records = list(x.children(block, "TxInfAndSts"))
        base = f"/Document/{ROOT}/OrgnlPmtInfAndSts[{i}]"
        if not records and block_status:
            yield from _expanded(f"{base} (line {block.sourceline})", block_status, block_reason,
                                 index.of_message(original_message, block_id), original_message)  # fmt: skip
        for j, record in enumerate(records, start=1):
            where = f"{base}/TxInfAndSts[{j}] (line {record.sourceline})"
            status = x.text(record, "TxSts") or block_status
            reason = _reason(record) if x.child(record, "StsRsnInf") is not None else block_reason
            end_to_end = x.text(record, "OrgnlEndToEndId")
            payment_id = end_to_end if end_to_end and end_to_end.upper() != "NOTPROVIDED" else None
            payment_id = payment_id or x.text(record, "OrgnlInstrId")
            known = _original_amount(record) or (index.get(payment_id) if payment_id else None)
            extra = {"payment_information_id": block_id, "status_id": x.text(record, "StsId")}
            yield where, status, reason, payment_id, known, extra


def _expanded(where: str, status: str, reason: Any, payments: list[tuple[str, KnownPayment]], original: str) -> Any:
    """A status given for a whole message or block: one record per payment of it seen in a pain.001."""
    if not payments:
        yield (where, status, reason, None, None,
               {"unresolved": f"a status for all of message {original} that was not seen as a pain.001"})  # fmt: skip
    for payment_id, known in payments:
        yield where, status, reason, payment_id, known, {"payment_information_id": known.payment_information_id}


def _original_amount(record: Any) -> KnownPayment | None:
    node = x.child(record, "OrgnlTxRef", "Amt", "InstdAmt")
    if node is None or not (node.text or "").strip():
        return None
    return KnownPayment(node.text.strip(), node.get("Ccy") or "", None, None)


def _event(
    report_id: str,
    event_time: str,
    original_message: str,
    status: str | None,
    reason: tuple[str | None, str | None],
    payment_id: str | None,
    known: KnownPayment | None,
    extra: dict[str, Any],
) -> dict[str, Any] | None:
    if "unresolved" in extra:
        raise RecordRefused(extra["unresolved"])
    if not status:
        raise RecordRefused("no status (TxSts, PmtInfSts or GrpSts)")
    status = status.upper()
    if status in PENDING:
        return None
    if status not in REJECTED and status not in ACCEPTED:
        raise RecordRefused(f"unknown status code {status[:8]!r}")
    if not payment_id:
        raise RecordRefused("no OrgnlEndToEndId or OrgnlInstrId to match the payment by")
    if known is None:
        raise RecordRefused(f"no amount: no OrgnlTxRef/Amt, and payment {payment_id!r} was not seen in a pain.001")
    code, words = reason
    status_text = f"{status} ({STATUS_MEANINGS.get(status, 'status')})"
    return {
        "type": "psp.failed" if status in REJECTED else "psp.submitted",
        "event_id": stable_id("pain.002", report_id, payment_id, status),
        "event_time": event_time,
        "payment_id": payment_id,
        "amount": money_text(known.amount, "OrgnlTxRef/Amt/InstdAmt"),
        "currency": known.currency,
        "status_reason": clip(f"{status_text}: {words}" if words else status_text, 512),
        "status_code": status,
        "reason_code": code,
        "status_report_id": report_id,
        "original_message_id": original_message,
        **{name: value for name, value in extra.items() if value is not None},
    }
