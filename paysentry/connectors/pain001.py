"""pain.001 (customer credit transfer initiation) -> one `payment.released` per credit transfer.

The ERP's payment run hands this file to the bank: each `CdtTrfTxInf` is a payment leaving the company.

- `payment_id`: the `EndToEndId` (the reference that comes back in the bank's pain.002 and camt files);
  when the ERP wrote `NOTPROVIDED`, the `InstrId`, else message id / payment-information id / position.
- company: the debtor (`Dbtr/Id/OrgId/Othr/Id`, else its name, cut to 32 characters);
- vendor: the creditor: `vendor_id` from `Cdtr/Id/.../Othr/Id`, else `NAME:` and the creditor's name;
  `vendor_name`, `payee_account` (IBAN or other id), `payee_bank` (BIC), `payee_country` (postal address,
  else the IBAN's country);
- `amount` and `currency` exactly as written (`InstdAmt`, else `EqvtAmt/Amt`), `due_date` the requested
  execution date, `invoice_id` the first structured referred document number, else the unstructured
  remittance text; `event_time` the message's creation time;
- kept as extra fields: `message_id`, `payment_information_id`, `instruction_id`, `end_to_end_id`,
  `debtor_name`, `debtor_account_masked`, `remittance_info` and `payee_check` (paysentry.connectors.accounts).

The file is streamed one transaction at a time and checked against the official schema of its version
as it goes; an error inside a transaction rejects that transaction, an error in a payment-information
block's header rejects its transactions, and any other error (or a transaction count / control sum that
does not add up, found at the end of the file) refuses the file. A refused file's events are void, also
those already handed on: `convert` takes them back out of its events file, the drop folder checks a
whole file before it publishes any of it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import tzinfo
from decimal import Decimal
from typing import Any, BinaryIO

from lxml import etree

from paysentry.connectors import xmlsafe as x
from paysentry.connectors.accounts import check_bank_details
from paysentry.connectors.base import (
    Conversion,
    FileRefused,
    KnownPayment,
    PaymentIndex,
    RecordRefused,
    SeenKeys,
    clip,
    iso_date,
    iso_time,
    money_text,
    stable_id,
)
from paysentry.redaction import mask_account, normalise_account

ROOT = "CstmrCdtTrfInitn"
NOT_PROVIDED = "NOTPROVIDED"
_BLOCK_HEADER = ("PmtInfId", "PmtMtd", "BtchBookg", "NbOfTxs", "CtrlSum", "PmtTpInf", "ReqdExctnDt", "PoolgAdjstmntDt",
                 "Dbtr", "DbtrAcct", "DbtrAgt", "DbtrAgtAcct", "InstrForDbtrAgt", "UltmtDbtr", "ChrgBr", "ChrgsAcct",
                 "ChrgsAcctAgt")  # fmt: skip


def stream(
    source: BinaryIO, result: Conversion, message: str, *, tz: tzinfo, index: PaymentIndex | None = None
) -> Iterator[dict[str, Any]]:
    """The file's events, one transaction at a time; rejections go to `result`. Raises FileRefused, also
    at the very end (NbOfTxs / CtrlSum): events already yielded then belong to a refused file."""
    schema = x.shipped_schema(message)
    validator = _Validator(schema) if schema is not None else None
    header: _Header | None = None
    block: _Block | None = None
    blocks = position = 0
    seen = SeenKeys()
    totals = _Totals()
    try:
        for kind, element in x.walk(source, result.limits, f"not a {message} message", ROOT, "CdtTrfTxInf", "PmtInf"):
            if kind == "end":
                header = header or _Header.read(element, tz)
                _check_leftovers(x.child(element, ROOT), ("GrpHdr", "SplmtryData"))
                totals.check(header)
                return
            if kind == "block":
                _check_leftovers(element, _BLOCK_HEADER)
                continue
            if x.local(element.getparent()) != "PmtInf":
                raise FileRefused("CdtTrfTxInf outside a PmtInf block", f"line {element.sourceline}")
            if block is None or block.element is not element.getparent():
                blocks, position = blocks + 1, 0
                block = _Block.read(element.getparent())
            problems = validator.problems(element, block.element) if validator is not None else None
            header = header or _Header.read(element.getroottree().getroot(), tz)
            position += 1
            where = f"/Document/{ROOT}/PmtInf[{blocks}]/CdtTrfTxInf[{position}] (line {element.sourceline})"
            totals.add(element)
            event = _convert_one(element, block, header, where, problems, result, seen)
            if event is not None:
                if index is not None:
                    index.remember(event["payment_id"], KnownPayment(event["amount"], event["currency"],
                                   header.message_id, event.get("payment_information_id")))  # fmt: skip
                yield event
    finally:
        seen.close()


@dataclass(frozen=True)
class _Header:
    message_id: str
    event_time: str
    declared_count: str | None
    control_sum: str | None

    @classmethod
    def read(cls, document: Any, tz: tzinfo) -> _Header:
        group = x.child(document, ROOT, "GrpHdr")
        message_id = x.text(group, "MsgId")
        created = x.text(group, "CreDtTm")
        if not message_id or not created:
            raise FileRefused("GrpHdr/MsgId and GrpHdr/CreDtTm are required", "GrpHdr")
        return cls(message_id, _header_time(created, tz), x.text(group, "NbOfTxs"), x.text(group, "CtrlSum"))


def _convert_one(
    record: Any, block: _Block, header: _Header, where: str, problems: list[str] | None, result: Conversion,
    seen: SeenKeys,
) -> dict[str, Any] | None:  # fmt: skip
    try:
        if problems:
            raise RecordRefused("schema: " + "; ".join(problems[:3]))
        event = _event(record, block, header.message_id, header.event_time, where)
        if not seen.add(event["payment_id"]):
            raise RecordRefused(f"EndToEndId {event['payment_id']!r} appears twice in this message")
    except RecordRefused as exc:
        result.reject(where, str(exc))
        return None
    return result.accept(event, where)


class _Validator:
    """Checks one transaction at a time against the official schema, in a small document of copies (the
    group header, the block's header, the transaction): the parser reads ahead of the record it reports,
    so the tree it builds is not what this record alone looks like. Copies keep their lines. An error in
    the transaction or its block's header rejects the transaction; one elsewhere refuses the file."""

    def __init__(self, schema: etree.XMLSchema) -> None:
        self.schema = schema
        self.block: Any = None
        self.holder: Any = None  # the PmtInf copy a transaction is put in to be checked
        self.document: Any = None
        self.errors = 0  # schema errors of the file so far: past x.SCHEMA_ERRORS_KEPT the file is not usable
        self.first = ""

    def problems(self, record: Any, block: Any) -> list[str]:
        if block is not self.block:
            self._frame(record.getroottree().getroot(), block)
        probe = copy.deepcopy(record)
        self.holder.append(probe)
        try:
            problems = []
            for element, line, text in x.schema_errors(etree.ElementTree(self.document), self.schema):
                if element is None or x.enclosing(element, "PmtInf") is None:
                    raise FileRefused(f"schema: {text}", f"line {line}")
                self.errors += 1
                self.first = self.first or f"{text} (line {line})"
                if self.errors > x.SCHEMA_ERRORS_KEPT:
                    raise FileRefused(f"more than {x.SCHEMA_ERRORS_KEPT} schema errors; the first: {self.first}")
                problems.append(f"line {line}: {text}")
            return problems
        finally:
            self.holder.remove(probe)

    def _frame(self, source: Any, block: Any) -> None:
        self.block = block
        self.document = etree.Element(source.tag, nsmap=source.nsmap)
        initiation = x.child(source, ROOT)
        frame = etree.SubElement(self.document, initiation.tag)
        _copy_until(initiation, frame, "PmtInf")
        self.holder = etree.SubElement(frame, block.tag)
        _copy_until(block, self.holder, "CdtTrfTxInf")


def _copy_until(source: Any, target: Any, stop: str) -> None:
    for node in source:
        if x.local(node) == stop:
            return
        target.append(copy.deepcopy(node))


def _check_leftovers(element: Any, allowed: tuple[str, ...]) -> None:
    """Converted records are removed from the tree as the file streams: what is left in a finished block
    (or message) must be its header; anything else is out of place, as the schema says."""
    for node in element:
        if x.local(node) not in allowed:
            raise FileRefused(f"schema: element '{x.local(node)}' is not expected here", f"line {node.sourceline}")


def _header_time(created: str, tz: tzinfo) -> str:
    try:
        return iso_time(created, tz, "GrpHdr/CreDtTm")
    except RecordRefused as exc:
        raise FileRefused(str(exc), "GrpHdr/CreDtTm") from None


class _Totals:
    """NbOfTxs and CtrlSum must add up: a file that does not is cut short or altered, as a bank sees it.
    Counted while streaming (every transaction, converted or not) and checked at the end of the file."""

    def __init__(self) -> None:
        self.count = 0
        self.total = Decimal(0)
        self.unreadable = False

    def add(self, record: Any) -> None:
        self.count += 1
        amount = x.text(record, "Amt", "InstdAmt") or x.text(record, "Amt", "EqvtAmt", "Amt") or "0"
        try:
            self.total += Decimal(amount)
        except ArithmeticError:
            self.unreadable = True

    def check(self, header: _Header) -> None:
        declared = header.declared_count
        if declared is not None and declared != str(self.count):
            raise FileRefused(f"GrpHdr/NbOfTxs says {declared} transactions, the file holds {self.count}", "GrpHdr")
        control = header.control_sum
        if control is not None:
            try:
                matches = not self.unreadable and self.total == Decimal(control)
            except ArithmeticError:
                matches = False
            if not matches:
                raise FileRefused(f"GrpHdr/CtrlSum {control} is not the sum of the transactions' amounts", "GrpHdr")


@dataclass(frozen=True)
class _Block:
    """What a payment-information block says for all its transactions, read once per block."""

    element: Any
    block_id: str | None
    company: str | None
    debtor_name: str | None
    debtor_account: str | None
    execution: str | None
    service: str | None

    @classmethod
    def read(cls, block: Any) -> _Block:
        header: dict[str, Any] = {}
        for node in block:  # the header comes before the transactions: stop at the first of them
            name = x.local(node)
            if name == "CdtTrfTxInf":
                break
            header.setdefault(name, node)
        debtor = header.get("Dbtr")
        execution = header.get("ReqdExctnDt")
        return cls(
            element=block,
            block_id=x.text(header.get("PmtInfId")) if "PmtInfId" in header else None,
            company=clip(_party_id(debtor) or x.text(debtor, "Nm"), 32) if debtor is not None else None,
            debtor_name=clip(x.text(debtor, "Nm"), 140) if debtor is not None else None,
            debtor_account=_account(header.get("DbtrAcct")) if "DbtrAcct" in header else None,
            execution=(x.text(execution, "Dt") or x.text(execution)) if execution is not None else None,
            service=x.text(header.get("PmtTpInf"), "SvcLvl", "Cd") if "PmtTpInf" in header else None,
        )


def _party_id(party: Any) -> str | None:
    return (
        x.text(party, "Id", "OrgId", "Othr", "Id")
        or x.text(party, "Id", "OrgId", "AnyBIC")
        or x.text(party, "Id", "OrgId", "LEI")
        or x.text(party, "Id", "PrvtId", "Othr", "Id")
    )


def _account(holder: Any) -> str | None:
    return x.text(holder, "Id", "IBAN") or x.text(holder, "Id", "Othr", "Id")


def _bic(agent: Any) -> str | None:
    return x.text(agent, "FinInstnId", "BICFI") or x.text(agent, "FinInstnId", "BIC")


def _payment_id(record: Any, block: _Block, message_id: str, position: str) -> tuple[str, str | None, str | None]:
    end_to_end = x.text(record, "PmtId", "EndToEndId")
    instruction = x.text(record, "PmtId", "InstrId")
    if end_to_end and end_to_end.upper() != NOT_PROVIDED:
        return end_to_end, end_to_end, instruction
    if instruction:
        return instruction, end_to_end, instruction
    return stable_id("pain.001", message_id, block.block_id, position), end_to_end, instruction


def _event(record: Any, block: _Block, message_id: str, event_time: str, where: str) -> dict[str, Any]:
    position = where.split(" ", 1)[0].rsplit("/", 2)[-2:]
    payment_id, end_to_end, instruction = _payment_id(record, block, message_id, "/".join(position))
    amount_node = x.child(record, "Amt", "InstdAmt")
    if amount_node is None:
        amount_node = x.child(record, "Amt", "EqvtAmt", "Amt")
    if amount_node is None or not (amount_node.text or "").strip():
        raise RecordRefused("Amt/InstdAmt is missing")
    currency = amount_node.get("Ccy")
    amount = money_text(amount_node.text, "Amt/InstdAmt")
    creditor = x.child(record, "Cdtr")
    name = clip(x.text(creditor, "Nm"), 256)
    vendor_id = _party_id(creditor) or (f"NAME:{' '.join(name.upper().split())}"[:64] if name else None)
    if vendor_id is None:
        raise RecordRefused("the creditor has neither an id nor a name (Cdtr/Nm)")
    account = _account(x.child(record, "CdtrAcct"))
    bic = _bic(x.child(record, "CdtrAgt"))
    country = x.text(creditor, "PstlAdr", "Ctry") or (
        normalise_account(account)[:2] if account and normalise_account(account)[:2].isalpha() else None
    )
    service = x.text(record, "PmtTpInf", "SvcLvl", "Cd") or block.service
    remittance = " ".join(x.text(node) or "" for node in x.children(x.child(record, "RmtInf"), "Ustrd")).strip()
    document = x.text(record, "RmtInf", "Strd", "RfrdDocInf", "Nb")
    if account is not None and not 4 <= len(account) <= 64:
        raise RecordRefused("CdtrAcct: an account is 4 to 64 characters long")
    return {
        "type": "payment.released",
        "event_id": stable_id("pain.001", message_id, block.block_id, payment_id),
        "event_time": event_time,
        "payment_id": payment_id,
        "company_code": block.company,
        "vendor_id": vendor_id,
        "vendor_name": name,
        "invoice_id": clip(document or remittance or None, 128),
        "amount": amount,
        "currency": currency,
        "channel": "sepa" if (service or "").upper() == "SEPA" else "wire",
        "payee_account": account,
        "payee_bank": clip(bic, 128),
        "payee_country": country.upper() if country else None,
        "due_date": iso_date(block.execution, "ReqdExctnDt").isoformat() if block.execution else None,
        "message_id": message_id,
        "payment_information_id": block.block_id,
        "instruction_id": instruction,
        "end_to_end_id": end_to_end,
        "debtor_name": block.debtor_name,
        "debtor_account_masked": mask_account(block.debtor_account) if block.debtor_account else None,
        "remittance_info": clip(remittance or None, 280),
        "payee_check": check_bank_details(account, bic),
    }
