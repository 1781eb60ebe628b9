"""YAML sources with positions: every error the rules tooling reports points at `file:line:col`.

The files are read with ruamel.yaml's round-trip loader, which remembers where every key, value and list
item starts. Errors found later (by pydantic, the expression parser, the checker) are mapped back to
those positions, including positions *inside* a string such as an `expr:` or a reason template.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError


@dataclass(frozen=True, order=True, slots=True)
class RuleError:
    """One problem in a rules directory. Lines and columns are 1-based."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class RulesLoadError(Exception):
    """A ruleset that failed `check`: carries every error, each printable as file:line:col: message."""

    def __init__(self, errors: Sequence[RuleError]):
        self.errors = sorted(errors)
        super().__init__("\n".join(str(e) for e in self.errors) or "invalid ruleset")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """The " — did you mean 'x'?" tail for the closest known name, or "" when nothing is close."""
    known = list(known)
    close = sorted((k for k in known if name and k.startswith(name)), key=len)[:1]
    if not close:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


def suggest(name: str, known: Iterable[str], what: str) -> str:
    """Like "unknown feature 'amount_ratio' — did you mean 'amount_ratio_median_30d'?"."""
    return f"unknown {what} '{name}'{did_you_mean(name, known)}"


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
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(RuleError(shown, 1, 1, f"cannot read file: {exc}"))
            return None
        return cls.parse(text, shown, errors)

    @classmethod
    def parse(cls, text: str, shown: str, errors: list[RuleError]) -> Source | None:
        src = cls(shown, text)
        yaml = YAML(typ="rt")
        yaml.allow_duplicate_keys = False
        try:
            src.tree = yaml.load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            problem = (exc.problem or exc.context or "invalid YAML").strip()
            if "duplicate key" in problem:
                problem = problem.replace("found duplicate key", "duplicate key").split(" with value")[0]
            errors.append(RuleError(shown, line, col, f"invalid YAML: {problem}"))
            return None
        except YAMLError as exc:
            errors.append(RuleError(shown, 1, 1, f"invalid YAML: {exc}"))
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
        node = self.tree
        best = (1, 1)
        if isinstance(node, CommentedMap | CommentedSeq):
            best = (node.lc.line + 1, node.lc.col + 1)
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            if isinstance(node, CommentedMap) and part in node:
                if last:
                    line, col = node.lc.key(part) if key else node.lc.value(part)
                    return line + 1, col + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                if last:
                    line, col = node.lc.item(part)
                    return line + 1, col + 1
                node = node[part]
            else:
                return best
            if isinstance(node, CommentedMap | CommentedSeq):
                best = (node.lc.line + 1, node.lc.col + 1)
        return best

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
            for err in exc.errors(include_url=False):
                errors.append(self._pydantic_error(model, tuple(loc), err, what))
            return None

    def _pydantic_error(self, model: type[BaseModel], base: tuple[Any, ...], err: Any, what: str) -> RuleError:
        eloc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        full = base + eloc
        kind = err["type"]
        name = ".".join(str(p) for p in eloc[_last_index(eloc) + 1 :]) or what
        if kind == "extra_forbidden":
            key = str(eloc[-1])
            parent = _model_at(model, eloc[:-1])
            allowed = list(parent.model_fields) if parent else []
            message = f"unknown key '{key}' in {what}{did_you_mean(key, allowed)}"
            return self.error(self.pos(full, key=True), message)
        if kind == "missing":
            return self.error(self.pos(full[:-1]), f"missing required key '{eloc[-1]}' in {what}")
        value = err.get("input")
        if kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "").replace("'", "")
            return self.error(self.pos(full), f"{name}: {value!r} is not one of {expected}")
        if kind.endswith("_type") or kind in ("int_from_float", "bool_parsing", "int_parsing"):
            wanted = _TYPE_WORDS.get(kind.removesuffix("_type").removesuffix("_parsing"), kind)
            return self.error(self.pos(full), f"{name}: expected {wanted}, got {yaml_type(value)}")
        message = err["msg"].removeprefix("Value error, ")
        return self.error(self.pos(full), f"{name}: {message}")


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
