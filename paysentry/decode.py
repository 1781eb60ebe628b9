"""Decoding an inbound record into plain JSON values, within bounds, exactly.

orjson is the fast path. The standard `json` module is used only when the fast path cannot be exact:
a money field written as a JSON number with a fraction (orjson reads it as a binary double, so
`1234567890123.4567` would become `...4568`) or a record whose keys are not all distinct (orjson keeps
the last silently). Every record is bounded before anything else sees it: size, nesting depth, number
of keys, length of strings. The bounds are far above what a real event needs and low enough that any
accepted event can be re-encoded (orjson refuses to encode more than 254 levels) and held cheaply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from decimal import Decimal
from typing import Any

import orjson

MAX_RECORD_BYTES = 64 * 1024
MAX_DEPTH = 16  # the event object is level 1, `extra` level 2
MAX_KEYS_PER_OBJECT = 64
MAX_EXTRA_KEYS = 32
MAX_STRING_CHARS = 4096
MAX_KEY_CHARS = 256
MONEY_FIELDS = ("amount", "fee")

# Every string in order, so quotes pair up as a JSON reader pairs them; a key is one followed by ':'.
# (The loop unrolled, runs of plain characters between escapes: twice as fast as one alternation per
# character, for the same strings.)
_STRING_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?')
# orjson reads integers in [-2**63, 2**64) exactly and others as doubles, and can only write those back.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


class RecordRefused(ValueError):
    """A record that cannot be decoded within bounds; the message is the reason, without the record."""


def _plain_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def encode_plain(data: Any) -> bytes:
    """An already decoded record (e.g. from YAML or a test) as JSON text, so it takes the same road."""
    try:
        return orjson.dumps(data, default=_plain_default)
    except orjson.JSONEncodeError as exc:
        raise RecordRefused(f"not representable as JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise RecordRefused(f"not valid JSON: {name} is not a number")


def _exact_int(text: str) -> int | float:
    value = int(text) if len(text) <= 21 else _INT_MAX + 1
    return value if _INT_MIN <= value <= _INT_MAX else float(text)


def _distinct_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise RecordRefused(f"duplicate key {key[:64]!r}: each field may appear once")
        record[key] = value
    return record


def _slow_exact(text: str) -> Any:
    """Decimals for fractions (turned back into floats outside money fields by `_check`), duplicate keys
    refused by name. Only reached for text orjson accepted, so the text is valid and at most 1024 deep."""
    try:
        return json.loads(text, object_pairs_hook=_distinct_keys, parse_float=Decimal, parse_int=_exact_int,
                          parse_constant=_refuse_constant)  # fmt: skip
    except RecursionError:
        raise RecordRefused(f"nested deeper than {MAX_DEPTH} levels") from None
    except RecordRefused:
        raise
    except ValueError as exc:
        raise RecordRefused(f"not valid JSON: {exc}") from None


def decode_record(raw: bytes | str, *, known_fields: Collection[str]) -> dict[str, Any]:
    """One JSON object, bounded and exact, or RecordRefused with the reason.

    `known_fields` are the event's own top-level fields: any other top-level field is kept under
    `extra`, one level deeper, and the depth bound counts it there so that an accepted event can be
    written out and read back."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_RECORD_BYTES:
        raise RecordRefused(f"record is {size} bytes, more than the {MAX_RECORD_BYTES} allowed")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RecordRefused(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RecordRefused(f"an event is a JSON object, got {_json_type(data)}")
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    tokens = _STRING_TOKEN.findall(text)  # one group: ':' after a key, '' after a value
    written_keys = len(tokens) - tokens.count("")
    parsed_keys = _check(data, known_fields)
    if written_keys != parsed_keys or any(isinstance(data.get(name), float) for name in MONEY_FIELDS):
        data = _slow_exact(text)
        _check(data, known_fields)
    return data


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _check(record: dict[str, Any], known_fields: Collection[str]) -> int:
    """Walk the record (without recursion) against the bounds; return how many keys it has. Decimals
    outside top-level money fields are turned into floats, as the fast path would have read them."""
    keys = 0
    stack: list[tuple[Any, int]] = [(record, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise RecordRefused(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            if depth > 1 and len(value) > MAX_KEYS_PER_OBJECT:
                raise RecordRefused(f"an object has {len(value)} keys, more than the {MAX_KEYS_PER_OBJECT} allowed")
            keys += len(value)
            for key, item in value.items():
                if len(key) > MAX_KEY_CHARS:
                    raise RecordRefused(f"a key is {len(key)} characters long, more than {MAX_KEY_CHARS}")
                if isinstance(item, str):
                    if len(item) > MAX_STRING_CHARS:
                        raise RecordRefused(_too_long(item, f"{key[:64]}: "))
                elif isinstance(item, dict | list):
                    # An unknown top-level field is kept under `extra`, one level deeper.
                    pushed = depth + 1 if depth > 1 or key in known_fields or key == "extra" else depth + 2
                    stack.append((item, pushed))
                elif isinstance(item, Decimal) and not (depth == 1 and key in MONEY_FIELDS):
                    value[key] = float(item)
        else:
            for index, item in enumerate(value):
                if isinstance(item, str):
                    if len(item) > MAX_STRING_CHARS:
                        raise RecordRefused(_too_long(item, ""))
                elif isinstance(item, dict | list):
                    stack.append((item, depth + 1))
                elif isinstance(item, Decimal):
                    value[index] = float(item)
    return keys


def _too_long(text: str, where: str) -> str:
    return f"{where}text of {len(text)} characters, more than the {MAX_STRING_CHARS} allowed"
