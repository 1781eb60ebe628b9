"""Invoice references as the duplicate-invoice check compares them."""

from __future__ import annotations

import re
from functools import lru_cache

_PUNCT = re.compile(r"[^0-9A-Z]")
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")
_INVOICE_WORD = re.compile(r"^(INVOICE|INV|BILL|RE)(NO|NR)?(?=[0-9])")


@lru_cache(maxsize=4096)  # an invoice's events (created, approved, released) each normalise it, twice
def normalise_invoice(reference: str) -> str:
    """'INV-0088812', 'inv 88812', 'Invoice No. 88812' and '0088812' are the same invoice: case,
    spaces, punctuation, leading zeros and a leading 'invoice'-like word do not count."""
    return _LEADING_ZEROS.sub("", _INVOICE_WORD.sub("", _PUNCT.sub("", reference.upper())))
