"""How an MT940 credit line is recognised as a payment coming back, and where its reason and the original
payment's reference are written.

A credit is a return when the `:61:` transaction type is `RTI` (returned item: `NRTI`, `SRTI`, `FRTI`),
when the `:86:` carries the structured return code `/RTRN/` (`/RTRN/AC04/`, as Dutch and other banks
write their structured details), or when the German business transaction code (GVC) is 159, the return
of a SEPA credit transfer. A word such as "Retoure" alone does not make one: an incoming refund for
returned goods reads the same.

The reason is the `/RTRN/` code, else an ISO reason code written in the details (the German banks
write it in the purpose, `SVWZ+`), else the bank's own code in `?34`. The original payment's reference
is the `/EREF/` of structured details, the SEPA `EREF+`, then the `:61:` customer reference.
"""

from __future__ import annotations

import re
from typing import Any

from paysentry.connectors.reasons import reason_in_text
from paysentry.redaction import scrub_text

_RETURN_TYPES = frozenset({"NRTI", "SRTI", "FRTI"})
_RETURN_GVC = frozenset({"159"})
_RTRN = re.compile(r"/RTRN/([A-Z0-9]{1,35})(?:/|$)")
_EREF = re.compile(r"/EREF/([^/]{1,35})(?:/|$)")


def _text(details: dict[str, Any], *keys: str) -> str:
    parts = (str(details.get(key) or "") for key in keys)
    return " ".join("".join(part.splitlines()) for part in parts if part).upper()


def _raw(details: dict[str, Any]) -> str:
    """The unstructured `:86:` text, lines joined (structured German details are parsed by the package)."""
    return "".join(str(details.get("transaction_details") or "").splitlines())


def is_return(details: dict[str, Any]) -> bool:
    kind = str(details.get("id") or "").strip().upper()
    gvc = str(details.get("transaction_code") or "").strip()
    return kind in _RETURN_TYPES or gvc in _RETURN_GVC or _RTRN.search(_raw(details).upper()) is not None


def return_reason(details: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(ISO code, the bank's own code, the bank's words) of a return."""
    found = _RTRN.search(_raw(details).upper())
    code = found.group(1) if found else None
    if code is None:
        code = reason_in_text(_text(details, "purpose", "posting_text", "additional_purpose"))
    proprietary = None
    if code is None and details.get("return_debit_notes"):
        proprietary = str(details["return_debit_notes"]).strip()[:35] or None
    words = " ".join(str(details.get("purpose") or "").split())[:140]
    return code, proprietary, scrub_text(words) if words else None


def original_references(details: dict[str, Any]) -> list[Any]:
    """The original payment's reference candidates, in order of trust."""
    found = _EREF.search(_raw(details))
    structured = found.group(1).strip() if found else None
    return [structured, details.get("end_to_end_reference"), details.get("statement_customer_reference")]
