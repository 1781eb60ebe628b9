"""Type-check a parsed condition and turn it into Python closures over the evaluation environment.

Every name is resolved at load time (a feature from paysentry.feature_catalog, `event.<field>`, `company.<param>`,
a named list, a window function), so evaluating a rule is a handful of closure calls and dict lookups.

Missing data never crashes and never fires: a feature that is None makes a comparison *unknown*, and
`and` / `or` / `not` follow three-valued logic (SQL's), so `not (amount > 5)` is unknown, not true,
when the amount is missing. A rule fires only when its condition is definitely true.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from paysentry.feature_catalog import FEATURES
from paysentry.patterns import PatternError, compile_pattern
from paysentry.yaml_messages import did_you_mean
from rules import expr as ast
from rules.expr import ExprError, Node

Kind = Literal["number", "bool", "text", "any"]
Fn = Callable[["Env"], Any]

EVENT_FIELDS: dict[str, Kind] = {
    "type": "text",
    "event_id": "text",
    "payment_id": "text",
    "company_code": "text",
    "vendor_id": "text",
    "vendor_name": "text",
    "invoice_id": "text",
    "po_id": "text",
    "amount": "number",
    "currency": "text",
    "channel": "text",
    "payee_account_hash": "text",
    "payee_account_masked": "text",
    "payee_account_problem": "text",
    "payee_bank": "text",
    "payee_country": "text",
    "created_by": "text",
    "fee": "number",
    "fee_currency": "text",
    "status_reason": "text",
    "changed_by": "text",
}
COMPANY_PARAMS: dict[str, Kind] = {
    "approval_limit": "number",
    "settlement_sla_hours": "number",
    "timezone": "text",
    "currency": "text",
}
WINDOW_FUNCS = {
    "count_over_time": "count",
    "sum_over_time": "sum",
    "avg_over_time": "mean",
    "stddev_over_time": "std",
    "max_over_time": "max",
    "failures_over_time": "failures",
}
ENTITIES = ("vendor", "company", "creator", "account", "channel")
MAX_WINDOW_SECONDS = 31 * 86400
PLAIN_FUNCS = ("abs", "min", "max", "present", "coalesce")


class Env:
    """What a compiled rule reads: built once per evaluated event from the core's RuleContext."""

    __slots__ = ("event_type", "event", "features", "company", "_window", "_cache")

    def __init__(self, event_type: str, event: Any, features: Mapping[str, Any], company: Any, window: Any):
        self.event_type = event_type
        self.event = event
        self.features = features
        self.company = company
        self._window = window
        self._cache: dict[tuple[str, str, int], Any] = {}

    def window(self, entity: str, stat: str, seconds: int) -> Any:
        key = (entity, stat, seconds)
        if key not in self._cache:
            self._cache[key] = self._window(entity, stat, seconds)
        return self._cache[key]


@dataclass(frozen=True, slots=True)
class ListValue:
    name: str
    kind: Kind
    items: frozenset[Any]


@dataclass
class Scope:
    """What names mean while compiling, and where compile errors go (offset into the text, message)."""

    lists: Mapping[str, ListValue]
    text: str = ""
    errors: list[tuple[int, str]] = field(default_factory=list)
    used_lists: set[str] = field(default_factory=set)
    names: dict[str, Node] = field(default_factory=dict)  # referenced values, for default reasons

    def fail(self, offset: int, message: str) -> None:
        self.errors.append((offset, message))


@dataclass(frozen=True, slots=True)
class Compiled:
    fn: Fn
    kind: Kind


def _unknown(_env: Env) -> None:
    return None


def _none_or_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _coerce_pair(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, Decimal) and isinstance(b, float):
        return float(a), b
    if isinstance(b, Decimal) and isinstance(a, float):
        return a, float(b)
    return a, b


def _arith(op: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    a, b = _coerce_pair(a, b)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return None if b == 0 else a / b


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


class Compiler:
    def __init__(self, scope: Scope):
        self.scope = scope

    # -- entry points ----------------------------------------------------------------------------------
    def condition(self, node: Node) -> Fn:
        out = self.compile(node)
        if out.kind not in ("bool", "any"):
            self.scope.fail(node.start, f"a condition must be true or false, but {self.snippet(node)} is a {out.kind}")
        return out.fn

    def value(self, node: Node) -> Compiled:
        return self.compile(node)

    # -- dispatch --------------------------------------------------------------------------------------
    def compile(self, node: Node) -> Compiled:
        method = getattr(self, "c_" + type(node).__name__.lower())
        result: Compiled = method(node)
        return result

    def bad(self, offset: int, message: str) -> Compiled:
        self.scope.fail(offset, message)
        return Compiled(_unknown, "any")

    def c_num(self, node: ast.Num) -> Compiled:
        value = node.value
        return Compiled(lambda env: value, "number")

    def c_str(self, node: ast.Str) -> Compiled:
        value = node.value
        return Compiled(lambda env: value, "text")

    def c_bool(self, node: ast.Bool) -> Compiled:
        value = node.value
        return Compiled(lambda env: value, "bool")

    def c_name(self, node: ast.Name) -> Compiled:
        name = node.name
        if name.startswith("event."):
            attr = name.removeprefix("event.")
            if attr not in EVENT_FIELDS:
                return self.bad(node.start, f"unknown event field '{attr}'{did_you_mean(attr, EVENT_FIELDS)}")
            self.scope.names.setdefault(name, node)
            return Compiled(lambda env: getattr(env.event, attr, None), EVENT_FIELDS[attr])
        if name.startswith("company."):
            attr = name.removeprefix("company.")
            if attr not in COMPANY_PARAMS:
                known = COMPANY_PARAMS
                return self.bad(node.start, f"unknown company parameter '{attr}'{did_you_mean(attr, known)}")
            self.scope.names.setdefault(name, node)
            return Compiled(lambda env: getattr(env.company, attr, None), COMPANY_PARAMS[attr])
        spec = FEATURES.get(name)
        if spec is None:
            if name in ENTITIES:
                return self.bad(
                    node.start, f"'{name}' is an entity: use it in a range, e.g. count_over_time({name}[1h])"
                )
            if name in self.scope.lists:
                return self.bad(node.start, f"'{name}' is a list: use it as 'x in list({name})'")
            return self.bad(node.start, f"unknown feature '{name}'{did_you_mean(name, FEATURES)}")
        self.scope.names.setdefault(name, node)
        if spec.kind == "bool":
            return Compiled(lambda env: _none_or_bool(env.features.get(name)), "bool")
        return Compiled(lambda env: env.features.get(name), spec.kind)

    def c_range(self, node: ast.Range) -> Compiled:
        return self.bad(
            node.start,
            f"a range like {node.entity}[...] only goes inside a window function, "
            f"e.g. count_over_time({node.entity}[1h])",
        )

    def c_call(self, node: ast.Call) -> Compiled:
        func = node.func
        if func in WINDOW_FUNCS:
            return self.window(node, WINDOW_FUNCS[func])
        if func not in PLAIN_FUNCS:
            return self.bad(node.start, f"unknown function '{func}'{did_you_mean(func, [*WINDOW_FUNCS, *PLAIN_FUNCS])}")
        args = [self.compile(a) for a in node.args]
        if func == "present":
            if len(args) != 1:
                return self.bad(node.start, "present() takes one argument")
            inner = args[0].fn
            return Compiled(lambda env: inner(env) is not None, "bool")
        if func == "coalesce":
            if len(args) < 2:
                return self.bad(node.start, "coalesce() takes two or more arguments")
            kind = self.same_kind(node.args, args, "coalesce()")
            fns = [a.fn for a in args]

            def coalesce(env: Env) -> Any:
                for fn in fns:
                    value = fn(env)
                    if value is not None:
                        return value
                return None

            return Compiled(coalesce, kind)
        for arg, out in zip(node.args, args, strict=True):
            self.expect_kind(arg, out, "number", f"{func}()")
        if func == "abs":
            if len(args) != 1:
                return self.bad(node.start, "abs() takes one argument")
            inner = args[0].fn
            return Compiled(lambda env: None if (v := inner(env)) is None else abs(v), "number")
        if len(args) < 2:
            return self.bad(node.start, f"{func}() takes two or more arguments")
        pick = min if func == "min" else max
        fns = [a.fn for a in args]

        def extreme(env: Env) -> Any:
            values = [fn(env) for fn in fns]
            if any(v is None for v in values):
                return None
            if any(isinstance(v, float) for v in values):
                values = [float(v) for v in values]
            return pick(values)

        return Compiled(extreme, "number")

    def window(self, node: ast.Call, stat: str) -> Compiled:
        if len(node.args) != 1 or not isinstance(node.args[0], ast.Range):
            return self.bad(node.start, f"{node.func}() takes one range, e.g. {node.func}(vendor[2h])")
        rng = node.args[0]
        if rng.entity not in ENTITIES:
            return self.bad(
                rng.start,
                f"unknown entity '{rng.entity}'{did_you_mean(rng.entity, ENTITIES)} (one of {', '.join(ENTITIES)})",
            )
        if rng.seconds > MAX_WINDOW_SECONDS:
            return self.bad(rng.start, f"range {ast.format_range(rng.seconds)} is longer than the 31d the engine keeps")
        entity, seconds = rng.entity, rng.seconds
        key = f"{node.func}({entity}[{ast.format_range(seconds)}])"
        self.scope.names.setdefault(key, node)
        return Compiled(lambda env: env.window(entity, stat, seconds), "number")

    def c_neg(self, node: ast.Neg) -> Compiled:
        inner = self.compile(node.operand)
        self.expect_kind(node.operand, inner, "number", "'-'")
        fn = inner.fn
        return Compiled(lambda env: None if (v := fn(env)) is None else -v, "number")

    def c_arith(self, node: ast.Arith) -> Compiled:
        left, right = self.compile(node.left), self.compile(node.right)
        self.expect_kind(node.left, left, "number", f"'{node.op}'")
        self.expect_kind(node.right, right, "number", f"'{node.op}'")
        op, lf, rf = node.op, left.fn, right.fn
        return Compiled(lambda env: _arith(op, lf(env), rf(env)), "number")

    def c_compare(self, node: ast.Compare) -> Compiled:
        left = self.compile(node.left)
        if node.op in ("=~", "!~"):
            self.expect_kind(node.left, left, "text", f"'{node.op}'")
            assert isinstance(node.right, ast.Str)
            try:
                pattern = compile_pattern(node.right.value)
            except PatternError as exc:
                return self.bad(node.right.start, f"invalid regular expression: {exc}")
            lf, want = left.fn, node.op == "=~"
            return Compiled(
                lambda env: None if (v := lf(env)) is None else (pattern.fullmatch(str(v)) is not None) == want,
                "bool",
            )
        right = self.compile(node.right)
        if left.kind != "any" and right.kind != "any" and left.kind != right.kind:
            return self.bad(
                node.right.start,
                f"cannot compare {self.snippet(node.left)} ({left.kind}) with {self.snippet(node.right)} "
                f"({right.kind})",
            )
        kind = left.kind if left.kind != "any" else right.kind
        if kind in ("text", "bool") and node.op not in ("==", "!="):
            return self.bad(node.start, f"'{node.op}' compares numbers, not {kind} values")
        lf, rf, cmp = left.fn, right.fn, _CMP[node.op]
        fast = self._compare_to_literal(node, cmp)
        if fast is not None:
            return Compiled(fast, "bool")

        def compare(env: Env) -> bool | None:
            a = lf(env)
            if a is None:
                return None
            b = rf(env)
            return None if b is None else cmp(a, b)

        return Compiled(compare, "bool")

    @staticmethod
    def _compare_to_literal(node: ast.Compare, cmp: Callable[[Any, Any], bool]) -> Fn | None:
        """`feature <op> literal`, the commonest condition, as one closure instead of three (the same
        result as the general form: unknown when the feature is None)."""
        left, right = node.left, node.right
        if not isinstance(right, (ast.Num, ast.Str, ast.Bool)) or not isinstance(left, ast.Name):
            return None
        spec = FEATURES.get(left.name)
        if spec is None or spec.kind == "bool":
            return None
        name, literal = left.name, right.value

        def compare_feature(env: Env) -> bool | None:
            value = env.features.get(name)
            return None if value is None else cmp(value, literal)

        return compare_feature

    def c_between(self, node: ast.Between) -> Compiled:
        value, low, high = (self.compile(n) for n in (node.value, node.low, node.high))
        for sub, out in ((node.value, value), (node.low, low), (node.high, high)):
            self.expect_kind(sub, out, "number", "'between'")
        vf, lf, hf, negated = value.fn, low.fn, high.fn, node.negated

        def between(env: Env) -> bool | None:
            v, lo, hi = vf(env), lf(env), hf(env)
            if v is None or lo is None or hi is None:
                return None
            return (lo <= v <= hi) != negated

        return Compiled(between, "bool")

    def c_in(self, node: ast.In) -> Compiled:
        value = self.compile(node.value)
        items = node.items
        if isinstance(items, ast.ListRef):
            found = self.scope.lists.get(items.name)
            if found is None:
                return self.bad(
                    items.name_start, f"unknown list '{items.name}'{did_you_mean(items.name, self.scope.lists)}"
                )
            self.scope.used_lists.add(items.name)
            members, kind = found.items, found.kind
        else:
            outs = [self.compile(i) for i in items.items]
            kind = self.same_kind(items.items, outs, "a list") if outs else value.kind
            members = frozenset(o.fn(None) for o in outs)  # type: ignore[arg-type]  # literals ignore env
        if value.kind != "any" and kind != "any" and members and value.kind != kind:
            return self.bad(
                node.start, f"cannot look up {self.snippet(node.value)} ({value.kind}) in a list of {kind} values"
            )
        vf, negated = value.fn, node.negated
        return Compiled(lambda env: None if (v := vf(env)) is None else (v in members) != negated, "bool")

    def c_logic(self, node: ast.Logic) -> Compiled:
        fns = [self.condition(item) for item in node.items]
        if node.op == "and":

            def all_of(env: Env) -> bool | None:
                unknown = False
                for fn in fns:
                    v = fn(env)
                    if v is False:
                        return False
                    if v is None:
                        unknown = True
                return None if unknown else True

            return Compiled(all_of, "bool")

        def any_of(env: Env) -> bool | None:
            unknown = False
            for fn in fns:
                v = fn(env)
                if v is True:
                    return True
                if v is None:
                    unknown = True
            return None if unknown else False

        return Compiled(any_of, "bool")

    def c_not(self, node: ast.Not) -> Compiled:
        fn = self.condition(node.operand)
        return Compiled(lambda env: None if (v := fn(env)) is None else not v, "bool")

    # -- type helpers ----------------------------------------------------------------------------------
    def snippet(self, node: Node) -> str:
        text = self.scope.text[node.start : node.end]
        return text if text else type(node).__name__.lower()

    def expect_kind(self, node: Node, out: Compiled, kind: Kind, where: str) -> None:
        if out.kind not in (kind, "any"):
            self.scope.fail(node.start, f"{where} needs a {kind}, but {self.snippet(node)} is a {out.kind}")

    def same_kind(self, nodes: Any, outs: Any, where: str) -> Kind:
        kind: Kind = "any"
        for sub, out in zip(nodes, outs, strict=True):
            if out.kind == "any":
                continue
            if kind == "any":
                kind = out.kind
            elif out.kind != kind:
                self.scope.fail(sub.start, f"{where} mixes {kind} and {out.kind} values")
                return "any"
        return kind


def compile_condition(node: Node, scope: Scope) -> Fn:
    return Compiler(scope).condition(node)


def compile_value(node: Node, scope: Scope) -> Compiled:
    return Compiler(scope).value(node)


def parse_and_compile(text: str, scope: Scope) -> tuple[Node | None, Fn | None]:
    try:
        node = ast.parse(text)
    except ExprError as exc:
        scope.fail(exc.offset, exc.message)
        return None, None
    return node, compile_condition(node, scope)
