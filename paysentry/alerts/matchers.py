"""Label matchers in Alertmanager's syntax: `name="value"`, `name!="value"`, `name=~"regex"`, `name!~"regex"`.

Regexes are anchored (they must match the whole value), as in Alertmanager, and run with RE2 (see
paysentry/patterns.py), so a pattern cannot backtrack for minutes on a crafted label. A missing label matches
like the empty string, so `team!="treasury"` matches an alert without a team.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import PlainSerializer, PlainValidator

from paysentry.patterns import PatternError, compile_pattern

Op = Literal["=", "!=", "=~", "!~"]
_LABEL = r"[A-Za-z_][A-Za-z0-9_]*"
_MATCHER = re.compile(
    rf"""^\s*(?P<name>{_LABEL})\s*(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^"'\s]*)\s*$"""
)


@dataclass(frozen=True)
class Matcher:
    name: str
    op: Op
    value: str
    _regex: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        found = _MATCHER.match(text)
        if not found:
            raise ValueError(f"{text!r} is not a matcher like 'severity=\"critical\"' or 'team=~\"ap|treasury\"'")
        raw = found["value"]
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        return cls.build(found["name"], found["op"], raw)  # type: ignore[arg-type]

    @classmethod
    def build(cls, name: str, op: Op, value: str) -> Matcher:
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = compile_pattern(value)
            except PatternError as exc:
                raise ValueError(f"{name}{op}{value!r}: bad regular expression ({exc})") from None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def parse_label_pairs(items: Iterable[str]) -> dict[str, str]:
    """`severity=critical vendor=V-1` (CLI style, quotes optional) as a label dict."""
    labels: dict[str, str] = {}
    for item in items:
        matcher = Matcher.parse(item)
        if matcher.op != "=":
            raise ValueError(f"{item!r}: give labels as LABEL=VALUE")
        labels[matcher.name] = matcher.value
    return labels


def _matcher(value: Any) -> Matcher:
    if isinstance(value, Matcher):
        return value
    if not isinstance(value, str):
        raise ValueError("a matcher is a string like 'severity=\"critical\"'")
    return Matcher.parse(value)


MatcherField = Annotated[Matcher, PlainValidator(_matcher), PlainSerializer(str, return_type=str)]
