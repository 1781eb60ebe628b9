"""How a problem in a YAML file people write is worded: one wording for every loader (rules, lists,
companies, rule tests, alert routes), so an editor reads the same kind of message whichever file is wrong.

Each message says what is expected at the place it is about: `unknown key 'sevrity' in rule 'big' — did
you mean 'severity'?`, `missing required key 'action' in rule 'big'`, `threshold: expected a number, got
a string`, `invalid YAML: duplicate key "action"`. The position (`file:line:col`) is added by the caller
(`paysentry.yamlsource.SourceError`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails
from ruamel.yaml.error import MarkedYAMLError

Loc = tuple[Any, ...]
"""A path into a document: mapping keys and list indexes, as in a pydantic error's `loc`."""


def describe_syntax_error(exc: MarkedYAMLError) -> str:
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    if "duplicate key" in problem:
        problem = problem.replace("found duplicate key", "duplicate key").split(" with value")[0]
    return f"invalid YAML: {problem}"


def describe_validation_error(
    error: ErrorDetails,
    what: str,
    model: type[BaseModel] | None = None,
    loc: Loc | None = None,
    name: str | None = None,
) -> tuple[Loc, str]:
    """Where below the validated value a pydantic error is and its wording for people who edit YAML.

    `what` names the validated value ("rule 'big'", "route"); `model`, when given, lets an unknown key
    suggest the closest allowed one. `loc` overrides the error's own location (by default pydantic's
    `loc` without its validator names); `name` how a wrong value is named (by default its keys below
    the nearest list item, else `what`)."""
    eloc = loc if loc is not None else tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
    kind = error["type"]
    name = name or ".".join(str(p) for p in eloc[_last_index(eloc) + 1 :]) or what
    if kind == "extra_forbidden":
        key = str(eloc[-1]) if eloc else what
        parent = _model_at(model, eloc[:-1]) if model is not None else None
        return eloc, f"unknown key '{key}' in {what}{did_you_mean(key, _keys(parent) if parent else [])}"
    if kind == "missing":
        return eloc, f"missing required key '{eloc[-1] if eloc else what}' in {what}"
    value = error.get("input")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "").replace("'", "")
        return eloc, f"{name}: {value!r} is not one of {expected}"
    if kind.endswith("_type") or kind in ("int_from_float", "bool_parsing", "int_parsing"):
        wanted = _TYPE_WORDS.get(kind.removesuffix("_type").removesuffix("_parsing"), kind)
        return eloc, f"{name}: expected {wanted}, got {yaml_type(value)}"
    return eloc, f"{name}: {error['msg'].removeprefix('Value error, ').removeprefix('Assertion failed, ')}"


_TYPE_WORDS = {
    "string": "a string",
    "list": "a list",
    "dict": "a mapping",
    "model": "a mapping",
    "int": "an integer",
    "float": "a number",
    "decimal": "a number",
    "bool": "true or false",
    "tuple": "a list",
    "datetime": "a date-time",
    "date": "a date",
    "model_attributes": "a mapping",
    "int_from_float": "an integer",
}


def _last_index(loc: Sequence[Any]) -> int:
    for i in range(len(loc) - 1, -1, -1):
        if isinstance(loc[i], int):
            return i
    return -1


def _keys(model: type[BaseModel]) -> list[str]:
    """The keys a file may use for `model`'s fields (a field's alias where it has one)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The nested model class found by walking keys (field names or aliases; list indexes skipped)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None) or {}
        info = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if info is None:
            return None
        current = _inner_model(info.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def yaml_type(value: Any) -> str:
    """What a YAML value is, in the words of the file: "a mapping", "a list", "nothing (null)", ..."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, datetime | date):
        return "a date"
    return type(value).__name__


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """The " — did you mean 'x'?" tail for the closest known name, or "" when nothing is close."""
    known = list(known)
    close = sorted((k for k in known if name and k.startswith(name)), key=len)[:1]
    if not close:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""
