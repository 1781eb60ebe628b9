"""Cheap "this condition can never be true" checks, run by `rules check` on every parsed condition.

Not a solver: it looks at conjunctions of simple facts about one value at a time (a feature or a window
aggregate compared with constants, `in` lists, bool features), after pushing `not` inwards (valid in
three-valued logic too), and at each value's known domain (hours are 0-23, counts are never negative).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from paysentry.feature_catalog import FEATURES
from rules import expr as ast
from rules.expr import Node

_NEGATED = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<", "=~": "!~", "!~": "=~"}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_DOMAINS: dict[str, tuple[Decimal, Decimal | None]] = {
    "hour_local": (Decimal(0), Decimal(23)),
    "weekday_local": (Decimal(0), Decimal(6)),
    "channel_failure_rate_1h": (Decimal(0), Decimal(1)),
}
_SIGNED = {"amount_zscore_30d"}


def negate(node: Node) -> Node:
    """`not node`, pushed one level in where that keeps the same meaning under three-valued logic."""
    if isinstance(node, ast.Not):
        return node.operand
    if isinstance(node, ast.Compare):
        return ast.Compare(_NEGATED[node.op], node.left, node.right, node.start, node.end)
    if isinstance(node, ast.In):
        return ast.In(node.value, node.items, not node.negated, node.start, node.end)
    if isinstance(node, ast.Between):
        return ast.Between(node.value, node.low, node.high, not node.negated, node.start, node.end)
    if isinstance(node, ast.Logic):
        other = "or" if node.op == "and" else "and"
        return ast.Logic(other, tuple(negate(i) for i in node.items), node.start, node.end)
    if isinstance(node, ast.Bool):
        return ast.Bool(not node.value, node.start, node.end)
    return ast.Not(node, node.start, node.end)


def _key(node: Node) -> str | None:
    if isinstance(node, ast.Name):
        return node.name
    if isinstance(node, ast.Call) and len(node.args) == 1 and isinstance(node.args[0], ast.Range):
        rng = node.args[0]
        return f"{node.func}({rng.entity}[{rng.seconds}s])"
    return None


def _domain(key: str) -> tuple[Decimal, Decimal | None] | None:
    if key in _DOMAINS:
        return _DOMAINS[key]
    if "(" in key:
        return Decimal(0), None
    spec = FEATURES.get(key)
    if spec is not None and spec.kind == "number" and key not in _SIGNED:
        return Decimal(0), None
    return None


def _const(node: Node) -> Any:
    if isinstance(node, ast.Num):
        return Decimal(node.value)
    if isinstance(node, ast.Str | ast.Bool):
        return node.value
    return None


@dataclass
class _Facts:
    text: str
    lo: dict[str, tuple[Decimal, bool, str]] = field(default_factory=dict)
    hi: dict[str, tuple[Decimal, bool, str]] = field(default_factory=dict)
    allowed: dict[str, tuple[frozenset[Any], str]] = field(default_factory=dict)
    excluded: dict[str, set[Any]] = field(default_factory=dict)

    def snip(self, node: Node) -> str:
        return self.text[node.start : node.end]

    def numeric(self, key: str, op: str, value: Decimal, why: str) -> str | None:
        if op in ("==",):
            return self.numeric(key, ">=", value, why) or self.numeric(key, "<=", value, why)
        if op in (">", ">="):
            old = self.lo.get(key)
            if old is None or value > old[0] or (value == old[0] and op == ">"):
                self.lo[key] = (value, op == ">=", why)
        elif op in ("<", "<="):
            old = self.hi.get(key)
            if old is None or value < old[0] or (value == old[0] and op == "<"):
                self.hi[key] = (value, op == "<=", why)
        else:
            return None
        lo, hi = self.lo.get(key), self.hi.get(key)
        domain = _domain(key)
        if domain is not None:
            dlo, dhi = domain
            if hi is not None and (hi[0] < dlo or (hi[0] == dlo and not hi[1])):
                return f"'{hi[2]}' can never be true: {key} is never below {dlo}"
            if dhi is not None and lo is not None and (lo[0] > dhi or (lo[0] == dhi and not lo[1])):
                return f"'{lo[2]}' can never be true: {key} is never above {dhi}"
        if lo is not None and hi is not None and (lo[0] > hi[0] or (lo[0] == hi[0] and not (lo[1] and hi[1]))):
            if lo[2] == hi[2]:
                return f"'{lo[2]}' can never be true"
            return f"'{lo[2]}' and '{hi[2]}' can never both be true"
        return None

    def members(self, key: str, values: frozenset[Any], negated: bool, why: str) -> str | None:
        if negated:
            self.excluded.setdefault(key, set()).update(values)
        else:
            old = self.allowed.get(key)
            if old is not None:
                narrowed = old[0] & values
                if not narrowed:
                    return f"'{old[1]}' and '{why}' can never both be true"
                self.allowed[key] = (narrowed, why)
            else:
                self.allowed[key] = (values, why)
        found = self.allowed.get(key)
        if found is not None and not (found[0] - self.excluded.get(key, set())):
            return (
                f"'{why}' can never be true together with '{found[1]}'"
                if found[1] != why
                else (f"'{why}' can never be true")
            )
        return None


def never_true(node: Node, text: str, lists: dict[str, frozenset[Any]]) -> tuple[int, str] | None:
    """(offset, message) when the condition can be shown false for every event, else None."""
    if isinstance(node, ast.Not):
        pushed = negate(node.operand)
        if not isinstance(pushed, ast.Not):
            return never_true(pushed, text, lists)
    if isinstance(node, ast.Logic) and node.op == "or":
        found = [never_true(item, text, lists) for item in node.items]
        if all(found):
            return found[0]
        return None
    items = _flatten_and(node)
    facts = _Facts(text)
    for item in items:
        problem = _add(facts, item, lists)
        if problem:
            return item.start, f"condition can never be true: {problem}"
        if isinstance(item, ast.Logic) and item.op == "or":
            inner = never_true(item, text, lists)
            if inner:
                return inner
    return None


def _flatten_and(node: Node) -> list[Node]:
    if isinstance(node, ast.Logic) and node.op == "and":
        return [leaf for item in node.items for leaf in _flatten_and(item)]
    if isinstance(node, ast.Not):
        pushed = negate(node.operand)
        return [pushed] if isinstance(pushed, ast.Not) else _flatten_and(pushed)
    return [node]


def _add(facts: _Facts, item: Node, lists: dict[str, frozenset[Any]]) -> str | None:
    why = facts.snip(item)
    if isinstance(item, ast.Bool) and not item.value:
        return f"'{why}' is always false"
    if isinstance(item, ast.Name):
        spec = FEATURES.get(item.name)
        if spec is not None and spec.kind == "bool":
            return facts.members(item.name, frozenset({True}), False, why)
    if isinstance(item, ast.Not) and isinstance(item.operand, ast.Name):
        return facts.members(item.operand.name, frozenset({False}), False, why)
    if isinstance(item, ast.Compare) and item.op in _FLIPPED:
        left, right, op = item.left, item.right, item.op
        if _key(left) is None and _key(right) is not None:
            left, right, op = right, left, _FLIPPED[op]
        key, value = _key(left), _const(right)
        const_left = _const(left)
        if const_left is not None and value is not None and type(const_left) is type(value):
            ok = {"==": const_left == value, "!=": const_left != value}.get(op)
            if ok is None:
                ok = {
                    "<": const_left < value,
                    "<=": const_left <= value,
                    ">": const_left > value,
                    ">=": const_left >= value,
                }[op]
            return None if ok else f"'{why}' is always false"
        if key is None or value is None:
            return None
        if isinstance(value, Decimal):
            return facts.numeric(key, op, value, why)
        return facts.members(key, frozenset({value}), op == "!=", why)
    if isinstance(item, ast.Between):
        key, low, high = _key(item.value), _const(item.low), _const(item.high)
        if isinstance(low, Decimal) and isinstance(high, Decimal):
            if low > high and not item.negated:
                return f"'{why}' is always false: {low} is above {high}"
            if key is not None and not item.negated:
                return facts.numeric(key, ">=", low, why) or facts.numeric(key, "<=", high, why)
        return None
    if isinstance(item, ast.In):
        key = _key(item.value)
        if isinstance(item.items, ast.ListRef):
            values = lists.get(item.items.name)
        else:
            consts = [_const(i) for i in item.items.items]
            values = frozenset(consts) if all(c is not None for c in consts) else None
        if values is None:
            return None
        if not values:  # an empty named list is a normal state (nothing blocked yet), not an error
            return (
                f"'{why}' is always false: the list is empty"
                if isinstance(item.items, ast.ListLit) and not item.negated
                else None
            )
        if key is not None:
            return facts.members(key, values, item.negated, why)
    return None
