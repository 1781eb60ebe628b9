"""The condition language's syntax tree: what `rules/expr.py` parses an `expr:` or a template slot into.
Every node knows where it came from (`start`/`end`, character offsets into the text) so a problem found
later can be reported at its place."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Union


@dataclass(frozen=True, slots=True)
class Num:
    value: Decimal | int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Range:
    """`vendor[2h]`: an entity and a look-back, only valid as a window function's argument."""

    entity: str
    seconds: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Node, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Node
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Arith:
    op: str
    left: Node
    right: Node
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # one of CMP_OPS, or "=~" / "!~"
    left: Node
    right: Node
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Between:
    value: Node
    low: Node
    high: Node
    negated: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Node, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ListRef:
    name: str
    name_start: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class In:
    value: Node
    items: ListLit | ListRef
    negated: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # "and" | "or"
    items: tuple[Node, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    start: int
    end: int


Node = Union[Num, Str, Bool, Name, Range, Call, Neg, Arith, Compare, Between, In, Logic, Not]  # noqa: UP007


def children(node: Node) -> list[Node]:
    """The sub-expressions of `node`, in source order."""
    out: list[Node] = []
    for name in node.__slots__:
        value = getattr(node, name)
        if isinstance(value, tuple):
            out.extend(v for v in value if not isinstance(v, int | str))
        elif not isinstance(value, int | str | bool | Decimal) and value is not None:
            out.append(value)
    return out


def depth_beyond(root: Node, limit: int) -> Node | None:
    """The first node found deeper than `limit` (walking with an explicit stack, never recursing), or
    None."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return node
        stack.extend((child, depth + 1) for child in children(node))
    return None
