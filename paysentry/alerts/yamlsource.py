"""YAML with positions: load with ruamel.yaml, substitute `${ENV}` placeholders, and turn validation
errors into `path:line:col: message` lines that point at the offending key or value."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

Loc = tuple[str | int, ...]
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class ConfigError(ValueError):
    """A config file that cannot be used; `issues` holds one entry per problem, in file order."""

    def __init__(self, issues: Iterable[ConfigIssue]):
        self.issues = sorted(issues, key=lambda i: (i.line, i.col))
        super().__init__("\n".join(str(i) for i in self.issues))


def load_yaml(text: str, path: str) -> Any:
    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ConfigError([ConfigIssue(path, line, col, f"YAML syntax error: {problem}")]) from None


def position(root: Any, loc: Sequence[str | int], *, at_key: bool = False) -> tuple[int, int]:
    """1-based line and column of the node at `loc` (of its key, with `at_key`), or of the deepest
    ancestor that exists."""
    line, col = 1, 1
    if isinstance(root, CommentedMap | CommentedSeq) and root.lc.line is not None:
        line, col = root.lc.line + 1, root.lc.col + 1
    node = root
    parts = list(loc)
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if isinstance(node, CommentedMap) and not isinstance(part, int) and part in node:
            child = node[part]
            if last and (at_key or isinstance(child, CommentedMap | CommentedSeq)):
                key_line, key_col = node.lc.key(part)
            else:
                key_line, key_col = node.lc.value(part)
            line, col = key_line + 1, key_col + 1
            node = child
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            item_line, item_col = node.lc.item(part)
            line, col = item_line + 1, item_col + 1
            node = node[part]
        # anything else (a pydantic union tag, a missing key): stay on the deepest node found
    return line, col


def _clean_loc(loc: Iterable[str | int], root: Any) -> Loc:
    """Drop the parts of a pydantic error location that are not keys of the document."""
    cleaned: list[str | int] = []
    node = root
    for part in loc:
        in_map = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_map or in_list:
            cleaned.append(part)
            node = node[part]
        elif isinstance(part, str) and not re.search(r"[\[\(]|function-|^(str|int|list|dict|bool)$", part):
            cleaned.append(part)  # a missing or extra key: keep it in the message
            node = None
    return tuple(cleaned)


def loc_text(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def issues_from_validation(exc: ValidationError, root: Any, path: str) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        loc = _clean_loc(error["loc"], root)
        line, col = position(root, loc, at_key=error["type"] == "extra_forbidden")
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        where = loc_text(loc)
        issues.append(ConfigIssue(path, line, col, f"{where}: {message}" if where else message))
    return issues


def issue_at(root: Any, path: str, loc: Sequence[str | int], message: str) -> ConfigIssue:
    line, col = position(root, loc)
    where = loc_text(loc)
    return ConfigIssue(path, line, col, f"{where}: {message}" if where else message)


def substitute_env(
    node: Any, path: str, environ: Mapping[str, str] | None = None, skip: tuple[str, ...] = ()
) -> list[ConfigIssue]:
    """Replace `${NAME}` and `${NAME:-default}` in every string value, in place, except under the
    top-level keys in `skip` (templates, whose own placeholders look the same). A placeholder without a
    default whose variable is unset is an issue at that value."""
    env = os.environ if environ is None else environ
    issues: list[ConfigIssue] = []

    def visit(container: Any, key: Any, value: Any, where: Loc) -> None:
        if isinstance(value, CommentedMap):
            for k in list(value.keys()):
                if not where and k in skip:
                    continue
                visit(value, k, value[k], (*where, k))
        elif isinstance(value, CommentedSeq):
            for i in range(len(value)):
                visit(value, i, value[i], (*where, i))
        elif isinstance(value, str) and "${" in value:
            missing: list[str] = []

            def replace(found: re.Match[str]) -> str:
                name, default = found[1], found[2]
                if name in env:
                    return env[name]
                if default is not None:
                    return default
                missing.append(name)
                return ""

            new = _PLACEHOLDER.sub(replace, value)
            for name in missing:
                issues.append(issue_at(node, path, where, f"environment variable {name} is not set"))
            if container is not None:
                container[key] = new

    visit(None, None, node, ())
    return issues
