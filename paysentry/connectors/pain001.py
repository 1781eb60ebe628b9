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

The file is checked against the official schema of its version; an error inside a transaction rejects
that transaction, an error in a payment-information block's header rejects its transactions, and any
other error (or a transaction count / control sum that does not add up) refuses the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import tzinfo
from decimal import Decimal
from typing import Any

from paysentry.connectors import xmlsafe as x
from paysentry.connectors.accounts import check_bank_details
from paysentry.connectors.base import (
    Conversion,
    FileRefused,
    KnownPayment,
    Limits,
    PaymentIndex,
    RecordRefused,
    clip,
    iso_date,
    iso_time,
    money_text,
    stable_id,
)
from paysentry.redaction import mask_account, normalise_account

ROOT = "CstmrCdtTrfInitn"
NOT_PROVIDED = "NOTPROVIDED"


def convert(
    data: bytes, source: str, message: str, *, tz: tzinfo, limits: Limits, index: PaymentIndex | None = None
) -> Conversion:
    result = Conversion(source, message, limits=limits)
    try:
        tree = x.parse(data, limits)
        root = x.child(tree.getroot(), ROOT)
        if x.local(tree.getroot()) != "Document" or root is None:
            raise FileRefused(f"not a {message} message: no Document/{ROOT}")
        bad = _schema_problems(tree, message)
        header = x.child(root, "GrpHdr")
        message_id = x.text(header, "MsgId")
        created = x.text(header, "CreDtTm")
        if not message_id or not created:
            raise FileRefused("GrpHdr/MsgId and GrpHdr/CreDtTm are required", "GrpHdr")
        event_time = _header_time(created, tz)
        _check_totals(root, header)
        seen: set[str] = set()
        for where, record, block in _transactions(root):
            problems = bad and (bad.get(record) or bad.get(block.element))
            try:
                if problems:
                    raise RecordRefused("schema: " + "; ".join(problems[:3]))
                event = _event(record, block, message_id, event_time, where)
                if event["payment_id"] in seen:
                    raise RecordRefused(f"EndToEndId {event['payment_id']!r} appears twice in this message")
                seen.add(event["payment_id"])
            except RecordRefused as exc:
                result.reject(where, str(exc))
                continue
            before = len(result.events)
            result.add(event, where)
            if index is not None and len(result.events) > before:
                index.remember(event["payment_id"], KnownPayment(event["amount"], event["currency"], message_id,
                                                                 event.get("payment_information_id")))  # fmt: skip
    except FileRefused as exc:
        result.events.clear()
        result.refuse(exc)
    return result


def _schema_problems(tree: Any, message: str) -> dict[Any, list[str]]:
    """Schema errors by the transaction (or payment-information block) element they fall in; an error
    anywhere else refuses the file. Without a shipped schema, the converter's own checks stand. (The keys
    keep their lxml proxies alive, so walking the tree later meets these very objects.)"""
    schema = x.shipped_schema(message)
    if schema is None:
        return {}
    bad: dict[Any, list[str]] = {}
    for element, line, text in x.schema_errors(tree, schema):
        record = x.enclosing(element, "CdtTrfTxInf") if element is not None else None
        block = x.enclosing(element, "PmtInf") if element is not None else None
        target = record if record is not None else block
        if target is None:
            raise FileRefused(f"schema: {text}", f"line {line}")
        bad.setdefault(target, []).append(f"line {line}: {text}")
    return bad


def _header_time(created: str, tz: tzinfo) -> str:
    try:
        return iso_time(created, tz, "GrpHdr/CreDtTm")
    except RecordRefused as exc:
        raise FileRefused(str(exc), "GrpHdr/CreDtTm") from None


def _check_totals(root: Any, header: Any) -> None:
    """NbOfTxs and CtrlSum must add up: a file that does not is cut short or altered, as a bank sees it."""
    amounts: list[str] = []
    for block in x.children(root, "PmtInf"):
        for record in x.children(block, "CdtTrfTxInf"):
            amounts.append(x.text(record, "Amt", "InstdAmt") or x.text(record, "Amt", "EqvtAmt", "Amt") or "0")
    declared = x.text(header, "NbOfTxs")
    if declared is not None and declared != str(len(amounts)):
        raise FileRefused(f"GrpHdr/NbOfTxs says {declared} transactions, the file holds {len(amounts)}", "GrpHdr")
    control = x.text(header, "CtrlSum")
    if control is not None:
        try:
            total = sum((Decimal(a) for a in amounts), Decimal(0))
            matches = total == Decimal(control)
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


def _transactions(root: Any) -> Iterator[tuple[str, Any, _Block]]:
    for i, element in enumerate(x.children(root, "PmtInf"), start=1):
        block = _Block.read(element)
        for j, record in enumerate(x.children(element, "CdtTrfTxInf"), start=1):
            yield f"/Document/{ROOT}/PmtInf[{i}]/CdtTrfTxInf[{j}] (line {record.sourceline})", record, block


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
