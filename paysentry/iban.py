"""The IBAN check at the ingest boundary, where the clear account is still at hand.

An account written as an IBAN (two letters of a country that uses IBANs, two check digits, the rest) is
checked with schwifty: check digits (ISO 13616 mod 97), the country's length and structure. One that
fails is a payment that will bounce, or a doctored account; the engine sees the finding as a short code
(`iban_checksum`, `iban_length`, `iban_structure`), never the account. National account numbers, and
prefixes of countries without IBANs, are not IBANs and are not checked.
"""

from __future__ import annotations

import re

from schwifty import IBAN
from schwifty import exceptions as swx

_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{8,30}")
IBAN_PROBLEMS: tuple[tuple[type[Exception], str], ...] = (
    (swx.InvalidChecksumDigits, "iban_checksum"),
    (swx.InvalidLength, "iban_length"),
    (swx.InvalidCountryCode, "iban_country"),
    (swx.InvalidBankCode, "iban_bank_code"),
    (swx.InvalidBranchCode, "iban_bank_code"),
    (swx.InvalidAccountCode, "iban_structure"),
    (swx.InvalidBBANChecksum, "iban_national_checksum"),
    (swx.InvalidStructure, "iban_structure"),
)


def looks_like_iban(account: str) -> bool:
    """Two letters and two digits up front: an IBAN (valid or not) rather than a national account number."""
    return bool(_IBAN_SHAPE.fullmatch(re.sub(r"\s", "", account).upper()))


def iban_problem(account: str) -> str | None:
    """The code of what is wrong with an IBAN-shaped account of an IBAN country, else None (valid, or not
    an IBAN at all)."""
    if not looks_like_iban(account):
        return None
    try:
        IBAN(account)
    except swx.InvalidCountryCode:
        return None  # letters up front, but no IBAN country: a national format, not ours to judge
    except ValueError as exc:  # schwifty's exceptions are ValueErrors
        for kind, code in IBAN_PROBLEMS:
            if isinstance(exc, kind):
                return code
        return "iban_structure"
    return None
