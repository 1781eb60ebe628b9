"""Masking of anything that looks like a bank account, for every copy of a record that leaves ingest.

Two kinds of token are taken for an account wherever they appear, whatever field they sit in:

- an IBAN-like token: two letters, two digits, then 10 to 30 letters or digits (written in one piece
  or in groups of four separated by single spaces, as IBANs are printed);
- a run of 8 or more digits, optionally grouped by single spaces (card and account numbers are
  printed that way).

A decimal amount (up to 15 integer digits and 4 decimals) is left readable; so are times in RFC 3339
form, whose digit groups are shorter than 8. Identifiers that are long digit runs are masked too:
the dead-letter copy is for diagnosing, and a masked id is a smaller loss than a leaked account.
Values under a key that names an account (`payee_account`, `iban`, `bank_account`, `acct`, ...) are
masked whatever their shape. A mask shows at most the last 4 characters, and fewer of a short account.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "****"
# How much of a bad record the dead-letter copy keeps: enough to diagnose, bounded whatever comes in.
REDACTED_MAX_CHARS = 2048
# Only this much of the raw record is examined; escapes decoded, it still covers the copy kept.
_REDACT_INPUT_CHARS = 16 * 1024
TRUNCATED_MARK = "…[truncated]"

_ACCOUNT_TOKEN = re.compile(
    r"(?P<amount>(?<![\d.])\d{1,15}\.\d{1,4}(?!\d))"
    r"|(?P<iban>(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}"
    r"(?:[A-Za-z0-9]{10,30}|(?: [A-Za-z0-9]{4}){2,7}(?: [A-Za-z0-9]{1,4})?)(?![A-Za-z0-9]))"
    r"|(?P<digits>\d(?: ?\d){7,})"
)
# A key names an account when, lower-cased and without punctuation, it contains one of these.
_ACCOUNT_KEY = re.compile(r"iban|bban|acct|account|accno|acctno|kontonr")
_UNICODE_ESCAPE = re.compile(r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})|\\u([0-9a-fA-F]{4})")
# Every string in order, so that quotes pair up as a JSON reader pairs them; a key is one followed by ':'.
_STRING_IN_TEXT = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:\s*)?')
_BARE_VALUE = re.compile(r"[^,}\]\s]*")


def normalise_account(account: str) -> str:
    """Accounts are compared without spaces, dashes or case: 'gb33 bukb-2020' is 'GB33BUKB2020'."""
    return re.sub(r"[\s\-]", "", account).upper()


def mask_account(account: str) -> str:
    """'****' and the last characters: 4 of an account of 8 or more, fewer of a shorter one (a short
    account shown in full would not be masked at all), none of one under 5."""
    normalised = normalise_account(account)
    shown = min(4, len(normalised) - 4)
    return MASK + (normalised[-shown:] if shown > 0 else "")


def names_account(key: str) -> bool:
    return bool(_ACCOUNT_KEY.search(re.sub(r"[^0-9a-z]", "", key.lower())))


def scrub_text(text: str) -> str:
    """The text with every account-like token masked (see the module's description)."""

    def mask(match: re.Match[str]) -> str:
        return match.group(0) if match.group("amount") else mask_account(match.group(0))

    return _ACCOUNT_TOKEN.sub(mask, text)


def scrub_value(value: Any) -> Any:
    """A JSON-like value with account-like strings and numbers masked and account-named keys' values
    replaced by their mask. The value is small and shallow (bounded at parse time), so recursion is safe."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return mask_account(str(abs(value))) if abs(value) >= 10**7 else value
    if isinstance(value, float):
        return mask_account(f"{abs(value):.0f}") if value.is_integer() and abs(value) >= 1e7 else value
    if isinstance(value, dict):
        return {
            scrub_text(str(k)): mask_named(v) if names_account(str(k)) else scrub_value(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub_value(item) for item in value]
    return MASK


def _scrub_item(key: str, value: Any) -> Any:
    return mask_named(value) if names_account(key) else scrub_value(value)


def mask_named(value: Any) -> Any:
    """The value of a field named like an account: its mask, whatever its shape (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return mask_account(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return mask_account(str(value))
    return MASK


def _decode_unicode_escapes(text: str) -> str:
    """JSON `\\u` escapes (four hex digits) decoded, so an escaped key (`payee\\u005faccount`) or escaped
    digits are seen for what they are. Quote, backslash and control characters stay escaped, so JSON stays
    JSON."""

    def decode(match: re.Match[str]) -> str:
        if match.group(1):
            high, low = int(match.group(1), 16), int(match.group(2), 16)
            return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
        code = int(match.group(3), 16)
        if code < 0x20 or code in (0x22, 0x5C) or 0xD800 <= code <= 0xDFFF:
            return match.group(0)
        return chr(code)

    return _UNICODE_ESCAPE.sub(decode, text)


def _value_end(text: str, start: int) -> int:
    """Where the JSON value starting at `start` ends (the end of the text if it is cut short)."""
    if start >= len(text):
        return start
    opening = text[start]
    if opening == '"':
        index = start + 1
        while index < len(text):
            if text[index] == "\\":
                index += 2
            elif text[index] == '"':
                return index + 1
            else:
                index += 1
        return len(text)
    if opening in "[{":
        depth, index, in_string = 0, start, False
        while index < len(text):
            char = text[index]
            if in_string:
                if char == "\\":
                    index += 1
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
                if depth == 0:
                    return index + 1
            index += 1
        return len(text)
    match = _BARE_VALUE.match(text, start)
    return match.end() if match else start


def _mask_named_values(text: str) -> str:
    """Every value written under an account-named key replaced by its mask, in JSON-like text."""
    pieces: list[str] = []
    position = 0
    for match in _STRING_IN_TEXT.finditer(text):
        if match.start() < position or not match.group(2) or not names_account(match.group(1)):
            continue
        start = match.end()
        end = _value_end(text, start)
        value = text[start:end]
        if value in ("null", "true", "false"):
            continue
        shown = mask_account(value[1:-1] if value.startswith('"') and value.endswith('"') else value)
        if value.startswith(("[", "{")):
            shown = MASK
        pieces += [text[position:start], '"', shown, '"']
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters; a token cut in two is dropped, so no part of an account is left over."""
    if len(text) <= limit:
        return text
    return re.sub(r"[A-Za-z0-9 ]+\Z", "", text[:limit]) + TRUNCATED_MARK


def redact_raw(raw: bytes | str) -> str:
    """The dead-letter copy of a bad record, whatever its shape (well-formed, truncated, not JSON, CSV,
    an account in a list, under an escaped key or in any field): no account-like token in clear."""
    if not isinstance(raw, bytes | bytearray):  # a str may hold lone surrogates, which no sink can write
        raw = str(raw).encode("utf-8", "replace")
    text = raw.decode("utf-8", "replace")
    text = _cut(text.rstrip("\r\n"), _REDACT_INPUT_CHARS)
    text = _mask_named_values(_decode_unicode_escapes(text))
    return _cut(scrub_text(text), REDACTED_MAX_CHARS)
