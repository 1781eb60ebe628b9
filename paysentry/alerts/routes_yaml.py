"""The routes file's YAML: loading, `${ENV}` placeholders, and validation errors as
`path:line:col: message` lines that point at the offending key or value. The bounded loader is
paysentry/yamlsource.py and the wording paysentry/yaml_messages.py, as for the rules files."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from paysentry import yamlsource
from paysentry.yaml_messages import Loc, describe_validation_error
from paysentry.yamlsource import InvalidSource, SourceError, validation_errors

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

ConfigIssue = SourceError
"""One problem in a config file, printed as `path:line:col: message` (1-based)."""


class ConfigError(InvalidSource, ValueError):
    """A config file that cannot be used; `issues` holds one entry per problem, in file order."""

    @staticmethod
    def sort_key(issue: ConfigIssue) -> Any:
        return issue.line, issue.col  # one file; problems at one place keep the order they were found in

    @property
    def issues(self) -> list[ConfigIssue]:
        return self.errors


def load_routes_yaml(text: str, path: str) -> Any:
    try:
        return yamlsource.load_yaml(text, path)
    except InvalidSource as exc:
        raise ConfigError(exc.errors) from None


def routes_position(root: Any, loc: Sequence[str | int], *, at_key: bool = False) -> tuple[int, int]:
    """1-based line and column of the node at `loc` (of its key, with `at_key` or when the node is a
    mapping or a list), or the start of the deepest mapping or list on the way that exists."""
    return yamlsource.position(root, loc, key=at_key, containers_at_key=True)


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


def issues_from_validation(
    exc: ValidationError, root: Any, path: str, model: type[BaseModel] | None = None
) -> list[ConfigIssue]:
    """One issue per problem, worded as for every YAML file people write (`paysentry.yaml_messages`);
    an unknown or missing key is said to be in the mapping that holds it (`route.routes[0]`), a wrong
    value is named by its whole path, as the checks after validation name it (`issue_at`)."""

    def describe(error: ErrorDetails) -> tuple[Loc, str]:
        loc = _clean_loc(error["loc"], root)
        holder = loc_text(loc[:-1]) if error["type"] in ("extra_forbidden", "missing") else loc_text(loc)
        return describe_validation_error(error, holder or "routes file", model, loc, name=loc_text(loc) or None)

    return validation_errors(exc, root, path, describe, containers_at_key=True)


def issue_at(root: Any, path: str, loc: Sequence[str | int], message: str) -> ConfigIssue:
    line, col = routes_position(root, loc)
    where = loc_text(loc)
    return ConfigIssue(path, line, col, f"{where}: {message}" if where else message)


ENV_PREFIX = "PAYSENTRY_ROUTES_"
"""Only variables named like this are read by `${NAME}`: the file cannot reach any other setting."""
_SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|PASS|TOKEN|SECRET|KEY|CREDENTIAL|AUTH|PRIVATE|SALT|SID|COOKIE|SESSION")
"""Names that look like a secret are never substituted, even under the prefix: the value could end up in
a notification or an error message."""


def _refusal(name: str) -> str | None:
    """Why `${name}` may not be used in the routes file, or None."""
    if not name.startswith(ENV_PREFIX):
        return f"${{{name}}}: only variables named {ENV_PREFIX}... can be used here"
    secret = _SECRET_WORDS.search(name.upper())
    if secret:
        return f"${{{name}}} looks like a secret (its name contains {secret[0]}); secrets are never read into this file"
    return None


def substitute_env(
    node: Any, path: str, environ: Mapping[str, str] | None = None, skip: tuple[str, ...] = ()
) -> tuple[list[ConfigIssue], dict[str, str]]:
    """Replace `${NAME}` and `${NAME:-default}` in every string value, in place, except under the
    top-level keys in `skip` (templates, whose own placeholders look the same). Only ENV_PREFIX names
    that do not look like secrets are read. A refused name, or a missing variable without a default,
    is an issue at that value. Also returns the values substituted by name, for `scrub`."""
    env = os.environ if environ is None else environ
    issues: list[ConfigIssue] = []
    substituted: dict[str, str] = {}

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
            problems: list[str] = []

            def replace(found: re.Match[str]) -> str:
                name, default = found[1], found[2]
                refused = _refusal(name)
                if refused is not None:
                    problems.append(refused)
                    return ""
                if name in env:
                    substituted[name] = env[name]
                    return env[name]
                if default is not None:
                    return default
                problems.append(f"environment variable {name} is not set")
                return ""

            new = _PLACEHOLDER.sub(replace, value)
            issues.extend(issue_at(node, path, where, problem) for problem in problems)
            if container is not None:
                container[key] = new

    visit(None, None, node, ())  # depth is bounded by the loader (paysentry.yamlsource.MAX_DEPTH)
    return issues, substituted


def scrub(issues: Iterable[ConfigIssue], substituted: Mapping[str, str]) -> list[ConfigIssue]:
    """`issues` with every substituted value in their text replaced by `${NAME}`: an error message never
    shows what a variable holds (a matcher or receiver name that failed can come from one)."""
    values = sorted(((v, n) for n, v in substituted.items() if v), key=lambda vn: -len(vn[0]))
    if not values:
        return list(issues)
    # A short value (a digit, "UTC") is hidden only where it stands alone, so other words stay readable.
    pattern = re.compile("|".join(re.escape(v) if len(v) >= 4 else rf"(?<!\w){re.escape(v)}(?!\w)" for v, _ in values))
    names = {v: n for v, n in values}

    def hide(found: re.Match[str]) -> str:
        return "${" + names[found[0]] + "}"

    return [replace(issue, message=pattern.sub(hide, issue.message)) for issue in issues]
