"""YAML files whose problems are reported as `path:line:col: message`.

Shared by the rules tooling (`rules/source.py`) and the alert routes loader
(`paysentry/alerts/yamlsource.py`). Files are read with ruamel.yaml's round-trip loader, which remembers
where every key, value and list item starts; a syntax error, a pydantic ValidationError or any later
finding is turned into a `SourceError` at the place it is about. How a problem is worded stays with
each caller.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

Loc = tuple[Any, ...]
"""A path into a document: mapping keys and list indexes, as in a pydantic error's `loc`."""


@dataclass(frozen=True, order=True, slots=True)
class SourceError:
    """One problem in a file. Lines and columns are 1-based."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class InvalidSource(Exception):
    """Files that cannot be used: `errors` holds every problem, sorted by `sort_key`; the exception's
    text is one `path:line:col: message` line per problem (or `empty` when there are none)."""

    def __init__(self, errors: Iterable[SourceError], *, empty: str = ""):
        self.errors = sorted(errors, key=self.sort_key)
        super().__init__("\n".join(str(e) for e in self.errors) or empty)

    @staticmethod
    def sort_key(error: SourceError) -> Any:
        """By path, position, then message."""
        return error


def load_yaml(text: str, path: str, describe: Callable[[MarkedYAMLError], str]) -> Any:
    """The round-trip tree of `text` (duplicate keys are refused). A syntax error raises InvalidSource
    with one error at the problem's position (else its context's, else 1:1), worded by `describe`."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise InvalidSource([SourceError(path, line, col, describe(exc))]) from None
    except YAMLError as exc:  # e.g. a control character the reader refuses: no mark to point at
        raise InvalidSource([SourceError(path, 1, 1, f"invalid YAML: {exc}")]) from None


def _start(node: Any) -> tuple[int, int] | None:
    if isinstance(node, CommentedMap | CommentedSeq) and node.lc.line is not None:
        return node.lc.line + 1, node.lc.col + 1
    return None


def position(root: Any, loc: Sequence[Any], *, key: bool = False, containers_at_key: bool = False) -> tuple[int, int]:
    """1-based line and column of the value at `loc` in a round-trip tree. With `key`, of its key; with
    `containers_at_key`, of its key when the value is a mapping or a list (a list item has no key: it
    is always its own position). A path that leaves the document (a missing key, a pydantic union tag)
    gives the start of the deepest mapping or list reached, so a missing key points at the mapping that
    should have had it."""
    best = _start(root) or (1, 1)
    node = root
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            child = node[part]
            if last:
                at_key = key or (containers_at_key and isinstance(child, CommentedMap | CommentedSeq))
                line, col = node.lc.key(part) if at_key else node.lc.value(part)
                return line + 1, col + 1
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            if last:
                line, col = node.lc.item(part)
                return line + 1, col + 1
            child = node[part]
        else:
            return best
        node = child
        best = _start(node) or best
    return best


def validation_errors(
    exc: ValidationError,
    root: Any,
    path: str,
    describe: Callable[[ErrorDetails], tuple[Loc, str]],
    *,
    base: Loc = (),
    containers_at_key: bool = False,
) -> list[SourceError]:
    """One SourceError per problem in `exc`, raised while validating the value at `base` in `root`.

    `describe(error)` gives the problem's path below `base` (pydantic's `loc` without the parts that
    are not in the document) and its message. An unknown key points at that key, a missing key at the
    mapping that lacks it, anything else at the value (see `position` for `containers_at_key`)."""
    found = []
    for error in exc.errors(include_url=False):
        loc, message = describe(error)
        full = (*base, *loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            line, col = position(root, full, key=True)
        elif kind == "missing":
            line, col = position(root, full[:-1])
        else:
            line, col = position(root, full, containers_at_key=containers_at_key)
        found.append(SourceError(path, line, col, message))
    return found


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
