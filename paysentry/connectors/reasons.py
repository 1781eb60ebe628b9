"""ISO 20022 status codes and the common external status and return reason codes, in words.

A bank's pain.002 says why it refused a payment, and a statement why a payment came back (ExternalStatusReason1Code,
ExternalReturnReason1Code: the two lists share their codes) with a four-character code; the engine and the
people reading its decisions see the code and what it means.
"""

from __future__ import annotations

import re

# Transaction / group status (ExternalPaymentTransactionStatus1Code, ExternalPaymentGroupStatus1Code).
REJECTED = frozenset({"RJCT"})
ACCEPTED = frozenset({"ACCP", "ACSC", "ACSP", "ACTC", "ACWC", "ACCC", "ACFC", "ACWP", "ACIS", "PART"})
PENDING = frozenset({"PDNG", "RCVD"})

STATUS_MEANINGS: dict[str, str] = {
    "ACCP": "accepted customer profile",
    "ACSC": "accepted, settlement completed",
    "ACSP": "accepted, settlement in process",
    "ACTC": "accepted, technical validation",
    "ACWC": "accepted with change",
    "ACCC": "accepted, credit settlement completed",
    "ACFC": "accepted, funds checked",
    "ACWP": "accepted without posting",
    "ACIS": "accepted and settlement initiated",
    "PART": "partially accepted",
    "PDNG": "pending",
    "RCVD": "received",
    "RJCT": "rejected",
}

REASON_MEANINGS: dict[str, str] = {
    "AC01": "Incorrect account number: the account number is invalid or missing",
    "AC02": "Invalid debtor account number",
    "AC03": "Invalid creditor account number",
    "AC04": "Closed account number: the account is closed on the bank's books",
    "AC05": "Closed debtor account number",
    "AC06": "Blocked account: the account is blocked, no transfers are allowed",
    "AC07": "Closed creditor account number",
    "AC13": "Invalid debtor account type",
    "AC14": "Invalid agent: an agent in the payment chain is invalid",
    "AC15": "Account details changed",
    "AC16": "Card number invalid",
    "AG01": "Transaction forbidden on this type of account",
    "AG02": "Invalid bank operation code",
    "AG03": "Transaction type not supported or authorised on this account",
    "AG07": "Unsuccessful direct debit",
    "AG08": "Invalid access rights",
    "AGNT": "Incorrect agent",
    "AM01": "Zero amount",
    "AM02": "Amount above the allowed maximum",
    "AM03": "Currency not allowed",
    "AM04": "Insufficient funds",
    "AM05": "Duplication: the payment is a duplicate of an earlier one",
    "AM06": "Amount below the agreed minimum",
    "AM07": "Amount blocked by a regulatory authority",
    "AM09": "Wrong amount",
    "AM10": "Control sum does not add up",
    "AM11": "Invalid transaction currency",
    "AM12": "Invalid amount",
    "AM13": "Amount exceeds the clearing system limit",
    "AM14": "Amount exceeds the agreed limit",
    "AM18": "Number of transactions does not match the declared count",
    "BE01": "Inconsistent with end customer: the name does not match the account",
    "BE04": "Missing creditor address",
    "BE05": "Unrecognised initiating party",
    "BE06": "Unknown end customer",
    "BE07": "Missing debtor address",
    "BE16": "Invalid debtor identification",
    "BE17": "Invalid creditor identification",
    "CH03": "Requested execution date too far in the future",
    "CH04": "Requested execution date too far in the past",
    "CH11": "Creditor identifier incorrect",
    "CH16": "Elements in the message are not allowed (content error)",
    "CH17": "Element not admitted",
    "CNOR": "Creditor bank is not registered under this BIC in the clearing system",
    "CURR": "Incorrect currency",
    "CUST": "Requested by the customer",
    "DNOR": "Debtor bank is not registered under this BIC in the clearing system",
    "DS04": "Order rejected by the bank",
    "DT01": "Invalid date",
    "DUPL": "Duplicate payment",
    "ED05": "Settlement failed",
    "ERIN": "Extended remittance information option not supported",
    "FF01": "Invalid file format",
    "FF05": "Invalid local instrument code",
    "FOCR": "Following a cancellation request",
    "FR01": "Fraudulent origin: returned or rejected as fraud",
    "MD01": "No mandate",
    "MD06": "Refund requested by the end customer",
    "MD07": "End customer deceased",
    "MS02": "Reason not specified, by the customer",
    "MS03": "Reason not specified, by the agent",
    "NARR": "Narrative: see the additional information",
    "NOAS": "No answer from the customer",
    "NOOR": "No original transaction received",
    "RC01": "Bank identifier incorrect (BIC invalid)",
    "RC03": "Invalid debtor bank identifier",
    "RC04": "Invalid creditor bank identifier",
    "RC07": "Invalid creditor BIC",
    "RF01": "Not unique transaction reference",
    "RR01": "Regulatory reason: missing debtor account or identification",
    "RR02": "Regulatory reason: missing debtor name or address",
    "RR03": "Regulatory reason: missing creditor name or address",
    "RR04": "Regulatory reason",
    "RR05": "Regulatory information invalid",
    "RR06": "Tax information invalid",
    "RR07": "Remittance information invalid",
    "RR08": "Remittance information truncated",
    "RR09": "Invalid structured creditor reference",
    "RUTA": "Returned because the beneficiary's bank was unable to apply it",
    "SL01": "Specific service offered by the debtor's bank",
    "TM01": "Received after the bank's cut-off time",
    "UPAY": "Undue payment",
}


def describe_reason(code: str | None, proprietary: str | None = None, details: str | None = None) -> str | None:
    """'AC04: Closed account number: ... (bank's words)' or None when nothing is given."""
    parts = []
    if code:
        meaning = REASON_MEANINGS.get(code.upper())
        parts.append(f"{code}: {meaning}" if meaning else f"{code}: unlisted reason code")
    elif proprietary:
        parts.append(f"{proprietary} (bank's own code)")
    if details:
        parts.append(f"({details})")
    return " ".join(parts) or None


_CODE_TOKEN = re.compile(r"\b[A-Z]{2}[0-9A-Z]{2}\b")


def reason_in_text(text: str | None) -> str | None:
    """The first listed reason code written in free text ('RETOURE AC04 KONTO ERLOSCHEN' -> 'AC04'). Only
    codes of the list count, so an ordinary word or reference of four characters is never read as one."""
    for token in _CODE_TOKEN.findall((text or "").upper()):
        if token in REASON_MEANINGS:
            return token
    return None


def describe_return(code: str | None, proprietary: str | None = None, details: str | None = None) -> str:
    """The `status_reason` of a returned payment: 'returned: AC04: Closed account number: ... (bank's words)'."""
    words = describe_reason(code, proprietary, details)
    return f"returned: {words}" if words else "returned: no reason given by the bank"
