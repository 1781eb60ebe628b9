"""Keeping bank accounts, secrets and tokens out of notifications and log lines.

The engine never holds a clear payee account past ingest (contract.py), but free text that reaches an
alert (a rule's reason, an annotation) is written by people; these functions are the last line of
defence before anything is sent or logged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from paysentry.redaction import mask_account

# IBAN-like: country code, check digits, 11..30 alphanumerics (spaces allowed between groups).
_IBAN = re.compile(r"\b[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# Long digit runs (account numbers, card numbers), allowing spaces or dashes between digit groups.
_DIGITS = re.compile(r"(?<![0-9A-Za-z])[0-9](?:[ \-]?[0-9]){8,}(?![0-9A-Za-z])")
# key=value / key: value pairs whose key names a secret.
_SECRET_PAIR = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|auth[_-]?token|api[_-]?key|authorization)\b(\s*[=:]\s*)(\S+)"
)
_MASKED = re.compile(r"^\*+[0-9A-Za-z]{0,4}$")


def redact_text(text: str, keep: Iterable[str] = ()) -> str:
    """Mask IBANs and long digit runs (keeping the last 4) and the values of secret-looking pairs.
    Substrings in `keep` (the alert's own payment, vendor and event ids) are left as they are."""
    if not text:
        return text
    kept = sorted({k for k in keep if k}, key=len, reverse=True)
    shields: dict[str, str] = {}
    for i, value in enumerate(kept):
        token = f"\x00{i}\x00"
        if value in text:
            shields[token] = value
            text = text.replace(value, token)
    text = _SECRET_PAIR.sub(lambda m: f"{m[1]}{m[2]}[redacted]", text)
    text = _IBAN.sub(lambda m: mask_account(m[0]), text)
    text = _DIGITS.sub(lambda m: mask_account(m[0]), text)
    for token, value in shields.items():
        text = text.replace(token, value)
    return text


def masked_account(value: str | None) -> str | None:
    """A payee account as it may appear in a notification: already masked (`****1234`) passes, anything
    else is masked here."""
    if value is None or value == "":
        return None
    if _MASKED.match(value):
        return value
    return mask_account(value)


def contains_clear_account(text: str, account: str) -> bool:
    """True if `account` (in any spacing) appears in `text`; for tests and self-checks."""
    compact = re.sub(r"[\s\-]", "", account)
    return compact in re.sub(r"[\s\-]", "", text)
