"""Reason templates: `"amount {amount:money} {currency} is {amount_ratio_median_30d:.1f}× the median"`.

Each `{...}` holds a value expression in the rule language (a feature, `event.x`, `company.x`, a window
function, arithmetic) and an optional format: a Python format spec (`.1f`, `,.0f`, `>8`), `money`
(thousands separators, two decimals) or `pct` (a ratio shown as a percentage). Everything is parsed,
resolved and checked at load time; rendering never raises, and a missing value shows as "n/a".
`{{` and `}}` are literal braces.

Widths and precisions are at most MAX_FORMAT_NUMBER (`{amount:>99999999}` would write 100 MB per hit),
and a rendered text is cut at MAX_RENDERED characters whatever its values hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rules import expr as ast
from rules.compiler import Env, Fn, Kind, Scope, compile_value
from rules.expr import ExprError

MISSING = "n/a"
MAX_FORMAT_NUMBER = 64
"""Largest width or precision in a format spec."""
MAX_RENDERED = 1000
"""Characters in a rendered reason or annotation; longer texts end with an ellipsis."""
_SPEC_NUMBER = re.compile(r"\d+")
_SAMPLES: dict[str, tuple[Any, ...]] = {
    "number": (Decimal("1234.5"), 1234.5, 1234),
    "text": ("text",),
    "bool": ("true",),
    "any": (Decimal("1234.5"), 1234.5, 1234, "text"),
}


@dataclass(frozen=True, slots=True)
class Slot:
    fn: Fn
    kind: Kind
    spec: str


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[str | Slot, ...]

    def render(self, env: Env) -> str:
        out: list[str] = []
        length = 0
        for part in self.parts:
            if isinstance(part, str):
                text = part
            else:
                try:
                    value = part.fn(env)
                except Exception:
                    value = None
                text = render_value(value, part.spec)
            out.append(text)
            length += len(text)
            if length > MAX_RENDERED:
                break
        return cap("".join(out))


def cap(text: str, limit: int = MAX_RENDERED) -> str:
    """`text`, cut to `limit` characters (the last one an ellipsis) when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def spec_problem(spec: str) -> str | None:
    """Why a format spec is refused before it is ever tried (a huge width or precision), or None."""
    for found in _SPEC_NUMBER.finditer(spec):
        if len(found[0]) > 3 or int(found[0]) > MAX_FORMAT_NUMBER:
            return f"format '{spec}': widths and precisions go up to {MAX_FORMAT_NUMBER}"
    return None


def render_value(value: Any, spec: str) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        value = "true" if value else "false"
    try:
        if spec == "money":
            return f"{Decimal(str(value)):,.2f}"
        if spec == "pct":
            return f"{float(value) * 100:.1f}%"
        if spec:
            try:
                return format(value, spec)
            except (ValueError, TypeError):
                number = float(value)
                return format(int(number), spec) if number.is_integer() else format(number, spec)
    except (ValueError, TypeError, ArithmeticError):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.2f}"
    return str(value)


def _spec_ok(spec: str, kind: Kind) -> bool:
    if spec in ("money", "pct"):
        return kind in ("number", "any")
    for sample in _SAMPLES[kind]:
        try:
            format(sample, spec)
            return True
        except (ValueError, TypeError):
            continue
    return False


def _close(text: str, start: int) -> int:
    """Index of the `}` closing the placeholder opened at `start`, skipping quoted strings."""
    i, quote = start + 1, ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "}":
            return i
        elif ch == "{":
            raise ExprError(i, "'{' inside a placeholder (write '{{' for a literal brace)")
        i += 1
    raise ExprError(start, "unclosed '{' in template (write '{{' for a literal brace)")


def _split_spec(body: str) -> tuple[str, str | None]:
    quote = ""
    for i, ch in enumerate(body):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == ":":
            return body[:i], body[i + 1 :]
    return body, None


def compile_template(text: str, scope: Scope) -> Template:
    """Compile a template; problems go to scope.errors with offsets into `text`."""
    parts: list[str | Slot] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "{}" and text[i : i + 2] in ("{{", "}}"):
            literal.append(ch)
            i += 2
            continue
        if ch == "}":
            scope.fail(i, "single '}' in template (write '}}' for a literal brace)")
            i += 1
            continue
        if ch != "{":
            literal.append(ch)
            i += 1
            continue
        try:
            end = _close(text, i)
        except ExprError as exc:
            scope.fail(exc.offset, exc.message)
            break
        body, spec = _split_spec(text[i + 1 : end])
        if literal:
            parts.append("".join(literal))
            literal = []
        slot = _compile_slot(body, spec, i + 1, scope)
        if slot is not None:
            parts.append(slot)
        i = end + 1
    if literal:
        parts.append("".join(literal))
    return Template(tuple(parts))


def _compile_slot(body: str, spec: str | None, base: int, scope: Scope) -> Slot | None:
    if not body.strip():
        scope.fail(base, "empty placeholder '{}' in template")
        return None
    sub = Scope(scope.lists, text=body)
    try:
        node = ast.parse_value(body)
    except ExprError as exc:
        scope.fail(base + exc.offset, exc.message)
        return None
    compiled = compile_value(node, sub)
    for offset, message in sub.errors:
        scope.fail(base + offset, message)
    scope.used_lists |= sub.used_lists
    if sub.errors:
        return None
    spec = (spec or "").strip()
    problem = spec_problem(spec)
    if problem is not None:
        scope.fail(base + len(body) + 1, problem)
        return None
    if spec and not _spec_ok(spec, compiled.kind):
        scope.fail(base + len(body) + 1, f"format '{spec}' does not apply to {body.strip()} (a {compiled.kind})")
        return None
    return Slot(compiled.fn, compiled.kind, spec)


def default_template(description: str, scope: Scope) -> Template:
    """No `reason:` given: the description, then the values the condition looked at."""
    parts: list[str | Slot] = [description or "rule fired"]
    first = True
    for name, node in scope.names.items():
        sub = Scope(scope.lists, text=scope.text)
        compiled = compile_value(node, sub)
        if sub.errors:
            continue
        parts.append((" (" if first else ", ") + f"{name}=")
        parts.append(Slot(compiled.fn, compiled.kind, ""))
        first = False
    if not first:
        parts.append(")")
    return Template(tuple(parts))
