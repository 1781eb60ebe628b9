"""YAML sources with positions: every error the rules tooling reports points at `file:line:col`.

The files are read with ruamel.yaml's round-trip loader, which remembers where every key, value and list
item starts. Errors found later (by pydantic, the expression parser, the checker) are mapped back to
those positions, including positions *inside* a string such as an `expr:` or a reason template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml.error import MarkedYAMLError

from paysentry.yamlsource import (
    InvalidSource,
    Loc,
    SourceError,
    did_you_mean,
    load_yaml,
    position,
    read_text,
    suggest,
    validation_errors,
)

__all__ = ["RuleError", "RulesLoadError", "Source", "did_you_mean", "plain", "suggest", "yaml_type"]

RuleError = SourceError
"""One problem in a rules directory, printed as `file:line:col: message` (1-based)."""


class RulesLoadError(InvalidSource):
    """A ruleset that failed `check`: carries every error, each printable as file:line:col: message."""

    def __init__(self, errors: Sequence[RuleError]):
        super().__init__(errors, empty="invalid ruleset")


def _syntax_error(exc: MarkedYAMLError) -> str:
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    if "duplicate key" in problem:
        problem = problem.replace("found duplicate key", "duplicate key").split(" with value")[0]
    return f"invalid YAML: {problem}"


@dataclass
class Source:
    """One YAML file: its text, its round-trip tree and a way to turn tree paths into positions."""

    path: str  # as shown in messages
    text: str
    tree: Any = None
    _line_starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        starts = [0]
        for i, ch in enumerate(self.text):
            if ch == "\n":
                starts.append(i + 1)
        self._line_starts = starts

    # -- loading ---------------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: Path, shown: str, errors: list[RuleError]) -> Source | None:
        try:
            text = read_text(path, shown)
        except InvalidSource as exc:
            errors.extend(exc.errors)
            return None
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(RuleError(shown, 1, 1, f"cannot read file: {exc}"))
            return None
        return cls.parse(text, shown, errors)

    @classmethod
    def parse(cls, text: str, shown: str, errors: list[RuleError]) -> Source | None:
        src = cls(shown, text)
        try:
            src.tree = load_yaml(text, shown, _syntax_error)
        except InvalidSource as exc:
            errors.extend(exc.errors)
            return None
        return src

    # -- positions -------------------------------------------------------------------------------------
    def error(self, pos: tuple[int, int], message: str) -> RuleError:
        return RuleError(self.path, pos[0], pos[1], message)

    def node(self, loc: Sequence[Any]) -> Any:
        node = self.tree
        for part in loc:
            node = node[part]
        return node

    def pos(self, loc: Sequence[Any], *, key: bool = False) -> tuple[int, int]:
        """Position of the value at `loc` (or of its key with key=True). Falls back to the deepest
        container that exists, so a missing key points at the mapping that should have had it."""
        return position(self.tree, loc, key=key)

    def offset_pos(self, loc: Sequence[Any], offset: int) -> tuple[int, int]:
        """Position of character `offset` inside the string value at `loc`, following the string back
        into the file (quoted, plain, literal `|` and folded `>` styles alike)."""
        line, col = self.pos(loc)
        value = self.node(loc)
        if not isinstance(value, str):
            return line, col
        ptr = self._line_starts[line - 1] + col - 1
        text = self.text
        if ptr < len(text) and text[ptr] in "|>":
            nl = text.find("\n", ptr)
            ptr = len(text) if nl < 0 else nl + 1
        elif ptr < len(text) and text[ptr] in "\"'":
            ptr += 1
        at = ptr
        for i, ch in enumerate(value[: offset + 1]):
            if ch.isspace():
                at = ptr
                continue
            probe = ptr
            while probe < len(text) and text[probe] != ch:
                probe += 1
            if probe >= len(text):
                break
            at, ptr = probe, probe + 1
            if i == offset:
                break
        else:
            at = ptr
        return self._line_col(at)

    def _line_col(self, index: int) -> tuple[int, int]:
        lo, hi = 0, len(self._line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._line_starts[mid] <= index:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, index - self._line_starts[lo] + 1

    # -- pydantic --------------------------------------------------------------------------------------
    def validate(
        self, model: type[BaseModel], data: Any, loc: Sequence[Any], errors: list[RuleError], what: str
    ) -> Any:
        """Validate `data` (found at `loc`) against `model`; on failure, add one positioned error per
        problem, worded for people who edit YAML rather than read pydantic."""
        try:
            return model.model_validate(plain(data))
        except ValidationError as exc:
            describe = partial(_describe, model, what=what)
            errors.extend(validation_errors(exc, self.tree, self.path, describe, base=tuple(loc)))
            return None


def _describe(model: type[BaseModel], err: ErrorDetails, what: str) -> tuple[Loc, str]:
    """Where below the validated value a pydantic error is (its `loc` without validator names) and its
    wording for people who edit YAML."""
    eloc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
    kind = err["type"]
    name = ".".join(str(p) for p in eloc[_last_index(eloc) + 1 :]) or what
    if kind == "extra_forbidden":
        key = str(eloc[-1])
        parent = _model_at(model, eloc[:-1])
        allowed = list(parent.model_fields) if parent else []
        return eloc, f"unknown key '{key}' in {what}{did_you_mean(key, allowed)}"
    if kind == "missing":
        return eloc, f"missing required key '{eloc[-1]}' in {what}"
    value = err.get("input")
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "").replace("'", "")
        return eloc, f"{name}: {value!r} is not one of {expected}"
    if kind.endswith("_type") or kind in ("int_from_float", "bool_parsing", "int_parsing"):
        wanted = _TYPE_WORDS.get(kind.removesuffix("_type").removesuffix("_parsing"), kind)
        return eloc, f"{name}: expected {wanted}, got {yaml_type(value)}"
    return eloc, f"{name}: {err['msg'].removeprefix('Value error, ')}"


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


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The nested model class found by walking field names (list indexes skipped)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        current = _inner_model(fields[part].annotation)
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


def plain(value: Any) -> Any:
    """ruamel's round-trip values as plain Python (dict, list, str, int, float, bool, None, dates)."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime):
        return datetime.fromisoformat(value.isoformat()) if hasattr(value, "isoformat") else value
    return value
