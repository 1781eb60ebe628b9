"""The condition language: a tokenizer and a recursive-descent parser that turn an `expr:` string into a
small syntax tree. Nothing here evaluates anything; `compiler.py` type-checks the tree and turns it into
Python closures. User text is never handed to `eval`, `exec` or `ast`.

Grammar (lowest precedence first; keywords are case-sensitive, PromQL-style):

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | predicate
    predicate  := sum [ cmp sum | "=~" STRING | "!~" STRING | ["not"] "in" list
                      | ["not"] "between" sum "and" sum ]
    cmp        := "==" | "!=" | "<" | "<=" | ">" | ">="
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | atom
    atom       := NUMBER | STRING | "true" | "false" | "(" expr ")"
                | NAME "(" [arg ("," arg)*] ")"      function call, e.g. count_over_time(vendor[2h])
                | NAME "[" DURATION "]"              range selector (only as a window function argument)
                | NAME                               feature, event.<field> or company.<param>
    list       := "[" [literal ("," literal)*] "]" | "list" "(" NAME ")"
    DURATION   := NUMBER ("s" | "m" | "h" | "d" | "w")
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from rules.syntax import (
    Arith,
    Between,
    Bool,
    Call,
    Compare,
    In,
    ListLit,
    ListRef,
    Logic,
    Name,
    Neg,
    Node,
    Not,
    Num,
    Range,
    Str,
    depth_beyond,
)

MAX_NESTING = 32
"""Parentheses, `not`, unary minus and function calls inside one another: real rules use a handful."""
MAX_DEPTH = 64
"""Depth of the syntax tree (a chain `a + b + c` adds one level per operator): compiling and evaluating
walk it recursively, so it is bounded well below Python's recursion limit."""
MAX_LITERAL = 40
"""Characters in a number or duration literal (a 4,300-digit integer cannot even be converted)."""
MAX_EXPONENT = 100
"""Largest power of ten a number literal may carry (`1e100`); beyond, decimal arithmetic overflows."""

KEYWORDS = frozenset({"and", "or", "not", "in", "between", "true", "false"})
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
CMP_OPS = ("==", "!=", "<=", ">=", "<", ">")

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<duration>\d+(?:\.\d+)?[smhdw](?![A-Za-z0-9_]))
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z_]))
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>==|!=|<=|>=|=~|!~|[<>+\-*/()\[\],])
    """,
    re.VERBOSE,
)


class ExprError(Exception):
    """A problem at character `offset` of the expression (or template) text."""

    def __init__(self, offset: int, message: str):
        super().__init__(message)
        self.offset = offset
        self.message = message


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number, duration, string, name, op, end
    text: str
    start: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            ch = text[pos]
            if ch in "\"'":
                raise ExprError(pos, "unterminated string")
            if ch == "=":
                raise ExprError(pos, "unexpected '=' — use '==' to compare")
            raise ExprError(pos, f"unexpected character {ch!r}")
        kind = match.lastgroup or ""
        if kind in ("number", "duration") and match.end() - pos > MAX_LITERAL:
            raise ExprError(pos, f"a {kind} literal is limited to {MAX_LITERAL} characters")
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# -- parser -----------------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.nesting = 0

    def nested(self, start: int, parse: Callable[[], Node]) -> Node:
        """`parse()` one level deeper; refused past MAX_NESTING, before the recursion can run away."""
        if self.nesting >= MAX_NESTING:
            raise ExprError(start, f"expression is nested more than {MAX_NESTING} levels deep")
        self.nesting += 1
        try:
            return parse()
        finally:
            self.nesting -= 1

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        tok = self.tok
        return tok.kind in ("op", "name") and tok.text in texts

    def expect(self, text: str) -> Token:
        if not self.at(text):
            raise ExprError(self.tok.start, f"expected '{text}', found {self.describe(self.tok)}")
        return self.take()

    @staticmethod
    def describe(tok: Token) -> str:
        return "end of expression" if tok.kind == "end" else f"'{tok.text}'"

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExprError(0, "empty expression")
        node = self.or_()
        if self.tok.kind != "end":
            raise ExprError(self.tok.start, f"unexpected {self.describe(self.tok)}")
        too_deep = depth_beyond(node, MAX_DEPTH)
        if too_deep is not None:
            message = f"expression is too complex: more than {MAX_DEPTH} operators inside one another"
            raise ExprError(too_deep.start, message)
        return node

    def logic(self, op: str, sub: str) -> Node:
        first = getattr(self, sub)()
        items = [first]
        while self.at(op):
            self.take()
            items.append(getattr(self, sub)())
        if len(items) == 1:
            return first
        return Logic(op, tuple(items), first.start, items[-1].end)

    def or_(self) -> Node:
        return self.logic("or", "and_")

    def and_(self) -> Node:
        return self.logic("and", "not_")

    def not_(self) -> Node:
        if self.at("not"):
            start = self.take().start
            operand = self.nested(start, self.not_)
            return Not(operand, start, operand.end)
        return self.predicate()

    def predicate(self) -> Node:
        left = self.sum_()
        tok = self.tok
        if tok.kind == "op" and tok.text in CMP_OPS:
            self.take()
            right = self.sum_()
            return Compare(tok.text, left, right, left.start, right.end)
        if tok.kind == "op" and tok.text in ("=~", "!~"):
            self.take()
            pattern = self.take()
            if pattern.kind != "string":
                raise ExprError(pattern.start, f"'{tok.text}' needs a quoted regular expression")
            right = Str(_unquote(pattern.text), pattern.start, pattern.start + len(pattern.text))
            return Compare(tok.text, left, right, left.start, right.end)
        negated = False
        if self.at("not") and self.tokens[self.i + 1].text in ("in", "between"):
            self.take()
            negated = True
        if self.at("in"):
            self.take()
            items = self.list_()
            return In(left, items, negated, left.start, items.end)
        if self.at("between"):
            self.take()
            low = self.sum_()
            self.expect("and")
            high = self.sum_()
            return Between(left, low, high, negated, left.start, high.end)
        return left

    def list_(self) -> ListLit | ListRef:
        tok = self.tok
        if self.at("["):
            self.take()
            items: list[Node] = []
            while not self.at("]"):
                item = self.unary()
                if not isinstance(item, Num | Str | Bool | Neg):
                    raise ExprError(item.start, "an inline list holds only literal values")
                items.append(item)
                if not self.at(","):
                    break
                self.take()
            end = self.expect("]")
            return ListLit(tuple(items), tok.start, end.start + 1)
        if tok.kind == "name" and tok.text == "list":
            self.take()
            self.expect("(")
            name = self.take()
            if name.kind != "name":
                raise ExprError(name.start, "list(...) takes the name of a list")
            end = self.expect(")")
            return ListRef(name.text, name.start, tok.start, end.start + 1)
        raise ExprError(tok.start, f"expected a list ('[...]' or 'list(name)') after 'in', found {self.describe(tok)}")

    def arith(self, ops: tuple[str, ...], sub: str) -> Node:
        left = getattr(self, sub)()
        while self.tok.kind == "op" and self.tok.text in ops:
            op = self.take().text
            right = getattr(self, sub)()
            left = Arith(op, left, right, left.start, right.end)
        return left

    def sum_(self) -> Node:
        return self.arith(("+", "-"), "product")

    def product(self) -> Node:
        return self.arith(("*", "/"), "unary")

    def unary(self) -> Node:
        if self.tok.kind == "op" and self.tok.text == "-":
            start = self.take().start
            operand = self.nested(start, self.unary)
            if isinstance(operand, Num):
                return Num(-operand.value, start, operand.end)
            return Neg(operand, start, operand.end)
        return self.atom()

    def atom(self) -> Node:
        tok = self.take()
        end = tok.start + len(tok.text)
        if tok.kind == "number":
            value: Decimal | int = int(tok.text) if tok.text.isdigit() else Decimal(tok.text)
            if isinstance(value, Decimal) and value and abs(value.adjusted()) > MAX_EXPONENT:
                raise ExprError(tok.start, f"number {tok.text} is out of range (at most 1e{MAX_EXPONENT})")
            return Num(value, tok.start, end)
        if tok.kind == "string":
            return Str(_unquote(tok.text), tok.start, end)
        if tok.kind == "duration":
            raise ExprError(
                tok.start, f"a duration like '{tok.text}' only goes inside a range, e.g. vendor[{tok.text}]"
            )
        if tok.kind == "op" and tok.text == "(":
            inner = self.nested(tok.start, self.or_)
            self.expect(")")
            return inner
        if tok.kind == "name":
            if tok.text in ("true", "false"):
                return Bool(tok.text == "true", tok.start, end)
            if tok.text in KEYWORDS:
                raise ExprError(tok.start, f"unexpected keyword '{tok.text}'")
            if self.at("("):
                return self.call(tok)
            if self.at("["):
                return self.range_(tok)
            return Name(tok.text, tok.start, end)
        raise ExprError(tok.start, f"unexpected {self.describe(tok)}")

    def call(self, name: Token) -> Node:
        self.expect("(")
        args: list[Node] = []
        while not self.at(")"):
            args.append(self.nested(name.start, self.or_))
            if not self.at(","):
                break
            self.take()
        end = self.expect(")")
        return Call(name.text, tuple(args), name.start, end.start + 1)

    def range_(self, name: Token) -> Node:
        self.expect("[")
        tok = self.take()
        if tok.kind != "duration":
            raise ExprError(tok.start, f"expected a duration like 2h or 7d, found {self.describe(tok)}")
        end = self.expect("]")
        seconds = int(Decimal(tok.text[:-1]) * UNITS[tok.text[-1]])
        if seconds <= 0:
            raise ExprError(tok.start, "a range must be longer than zero")
        return Range(name.text, seconds, name.start, end.start + 1)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def parse(text: str) -> Node:
    """Parse a condition or value expression; raises ExprError(offset, message)."""
    return _Parser(text).parse()


def parse_value(text: str) -> Node:
    """Parse the expression inside a reason template's `{...}`."""
    return _Parser(text).parse()


def format_range(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
