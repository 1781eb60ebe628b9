"""pain.002 (payment status report) -> `psp.submitted` (accepted) / `psp.failed` (rejected) per transaction.

The bank's answer to a pain.001. Per `TxInfAndSts`: the original `EndToEndId` (else `InstrId`) is the
`payment_id`, `TxSts` the status (a transaction without one takes its block's or the group's status);
`RJCT` gives `psp.failed`, the accepted statuses (`ACCP`, `ACTC`, `ACSP`, `ACSC`, ...) `psp.submitted`,
and pending ones (`PDNG`, `RCVD`) no event. `status_reason` carries the status, the ISO reason code and
its meaning and the bank's additional text. The amount is the original transaction's (`OrgnlTxRef/Amt`);
a report that leaves it out takes it from the pain.001 seen before (`PaymentIndex`), and so does a report
that gives only a group or payment-information status: it applies to every payment of that original
message. `event_time` is the report's creation time. The report is streamed one transaction at a time.

sepaxml ships no pain.002 schema: the message is checked structurally here (root, header, a status and a
reference per transaction), and every value is bounded before it is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import tzinfo
from typing import Any, BinaryIO

from paysentry.connectors import xmlsafe as x
from paysentry.connectors.base import (
    Conversion,
    FileRefused,
    KnownPayment,
    PaymentIndex,
    RecordRefused,
    clip,
    iso_time,
    money_text,
    stable_id,
)
from paysentry.connectors.reasons import ACCEPTED, PENDING, REJECTED, STATUS_MEANINGS, describe_reason

ROOT = "CstmrPmtStsRpt"


def stream(
    source: BinaryIO, result: Conversion, message: str, *, tz: tzinfo, index: PaymentIndex | None = None
) -> Iterator[dict[str, Any]]:
    """The report's events, one transaction status at a time; rejections and skipped go to `result`."""
    report = _Report(index if index is not None else PaymentIndex())
    for kind, element in x.walk(source, result.limits, f"not a {message} message", ROOT, "TxInfAndSts",
                                "OrgnlPmtInfAndSts"):  # fmt: skip
        if kind == "end":
            statuses = report.at_end(element, tz)
        elif x.local(element.getparent()) != ("OrgnlPmtInfAndSts" if kind == "record" else ROOT):
            raise FileRefused(f"{x.local(element)} out of place", f"line {element.sourceline}")
        elif kind == "record":
            statuses = report.record(element, tz)
        else:
            statuses = report.block_end(element, tz)
        for where, status, reason, payment_id, known, extra in statuses:
            try:
                assert report.header is not None
                event = _event(*report.header, status, reason, payment_id, known, extra)
            except RecordRefused as exc:
                result.reject(where, str(exc))
                continue
            if event is None:
                result.skipped[f"status {status} (no event)"] += 1
                continue
            accepted = result.accept(event, where)
            if accepted is not None:
                yield accepted


class _Report:
    """What the report says above its transactions (read once), and where the stream stands in it."""

    def __init__(self, index: PaymentIndex) -> None:
        self.index = index
        self.header: tuple[str, str, str] | None = None  # report id, event time, original message id
        self.group: Any = None
        self.blocks = 0
        self.block: Any = None
        self.records = 0

    def _read_header(self, document: Any, tz: tzinfo) -> tuple[str, str, str]:
        if self.header is None:
            root = x.child(document, ROOT)
            report_id = x.text(root, "GrpHdr", "MsgId")
            created = x.text(root, "GrpHdr", "CreDtTm")
            if not report_id or not created:
                raise FileRefused("GrpHdr/MsgId and GrpHdr/CreDtTm are required", "GrpHdr")
            try:
                event_time = iso_time(created, tz, "GrpHdr/CreDtTm")
            except RecordRefused as exc:
                raise FileRefused(str(exc), "GrpHdr/CreDtTm") from None
            self.group = x.child(root, "OrgnlGrpInfAndSts")
            original_message = x.text(self.group, "OrgnlMsgId")
            if self.group is None or not original_message:
                raise FileRefused("OrgnlGrpInfAndSts/OrgnlMsgId is required", "OrgnlGrpInfAndSts")
            self.header = (report_id, event_time, original_message)
        return self.header

    def _block_status(self, block: Any) -> tuple[str | None, tuple[str | None, str | None]]:
        group_status = x.text(self.group, "GrpSts")
        status = x.text(block, "PmtInfSts") or group_status
        reason = _reason(block) if x.child(block, "StsRsnInf") is not None else _reason(self.group)
        return status, reason

    def _enter(self, block: Any) -> None:
        if block is not self.block:
            self.block, self.blocks, self.records = block, self.blocks + 1, 0

    def record(self, record: Any, tz: tzinfo) -> Iterator[Status]:
        self._read_header(record.getroottree().getroot(), tz)
        block = record.getparent()
        self._enter(block)
        self.records += 1
        block_status, block_reason = self._block_status(block)
        where = (
            f"/Document/{ROOT}/OrgnlPmtInfAndSts[{self.blocks}]/TxInfAndSts[{self.records}] (line {record.sourceline})"
        )
        status = x.text(record, "TxSts") or block_status
        reason = _reason(record) if x.child(record, "StsRsnInf") is not None else block_reason
        end_to_end = x.text(record, "OrgnlEndToEndId")
        payment_id = end_to_end if end_to_end and end_to_end.upper() != "NOTPROVIDED" else None
        payment_id = payment_id or x.text(record, "OrgnlInstrId")
        known = _original_amount(record) or (self.index.get(payment_id) if payment_id else None)
        extra = {"payment_information_id": x.text(block, "OrgnlPmtInfId"), "status_id": x.text(record, "StsId")}
        yield where, status, reason, payment_id, known, extra

    def block_end(self, block: Any, tz: tzinfo) -> Iterator[Status]:
        """A block without transactions whose status stands for all of its payments seen in a pain.001."""
        _, _, original = self._read_header(block.getroottree().getroot(), tz)
        self._enter(block)
        status, reason = self._block_status(block)
        if self.records == 0 and status:
            where = f"/Document/{ROOT}/OrgnlPmtInfAndSts[{self.blocks}] (line {block.sourceline})"
            payments = self.index.of_message(original, x.text(block, "OrgnlPmtInfId"))
            yield from _expanded(where, status, reason, payments, original)

    def at_end(self, document: Any, tz: tzinfo) -> Iterator[Status]:
        """A report without blocks whose group status stands for every payment of the original message."""
        _, _, original = self._read_header(document, tz)
        group_status = x.text(self.group, "GrpSts")
        if self.blocks == 0 and group_status:
            yield from _expanded(f"/Document/{ROOT}/OrgnlGrpInfAndSts", group_status, _reason(self.group),
                                 self.index.of_message(original), original)  # fmt: skip


def _reason(node: Any) -> tuple[str | None, str | None]:
    """(code, words) of the first StsRsnInf below `node`."""
    info = x.child(node, "StsRsnInf")
    if info is None:
        return None, None
    code = x.text(info, "Rsn", "Cd")
    details = " ".join(x.text(n) or "" for n in x.children(info, "AddtlInf")).strip() or None
    return code, describe_reason(code, x.text(info, "Rsn", "Prtry"), clip(details, 200))


Status = tuple[str, str | None, tuple[str | None, str | None], str | None, KnownPayment | None, dict[str, Any]]


def _expanded(where: str, status: str, reason: Any, payments: Iterable[tuple[str, KnownPayment]], original: str) -> Any:
    """A status given for a whole message or block: one record per payment of it seen in a pain.001."""
    found = False
    for payment_id, known in payments:
        found = True
        yield where, status, reason, payment_id, known, {"payment_information_id": known.payment_information_id}
    if not found:
        yield (where, status, reason, None, None,
               {"unresolved": f"a status for all of message {original} that was not seen as a pain.001"})  # fmt: skip


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
