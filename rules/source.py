"""YAML sources with positions: every error the rules tooling reports points at `file:line:col`.

The files are read with ruamel.yaml's round-trip loader, which remembers where every key, value and list
item starts. Errors found later (by pydantic, the expression parser, the checker) are mapped back to
those positions, including positions *inside* a string such as an `expr:` or a reason template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from paysentry.yaml_messages import describe_validation_error
from paysentry.yamlsource import InvalidSource, SourceError, load_yaml, position, read_source, validation_errors

RuleError = SourceError
"""One problem in a rules directory, printed as `file:line:col: message` (1-based)."""


class RulesLoadError(InvalidSource):
    """A ruleset that failed `check`: carries every error, each printable as file:line:col: message."""

    def __init__(self, errors: Sequence[RuleError]):
        super().__init__(errors, empty="invalid ruleset")


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
            text = read_source(path, shown)
        except InvalidSource as exc:
            errors.extend(exc.errors)
            return None
        return cls.parse(text, shown, errors)

    @classmethod
    def parse(cls, text: str, shown: str, errors: list[RuleError]) -> Source | None:
        src = cls(shown, text)
        try:
            src.tree = load_yaml(text, shown)
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
            describe = partial(describe_validation_error, what=what, model=model)
            errors.extend(validation_errors(exc, self.tree, self.path, describe, base=tuple(loc)))
            return None


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
