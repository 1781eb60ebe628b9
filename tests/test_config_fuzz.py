"""Fuzzing the files people author: whatever bytes, text or YAML structure a rules directory or a routes
file holds, loading it either works or is refused with the documented error type. No other exception
(RecursionError, ValueError, TypeError, ...) ever escapes, and nothing hangs.

The documented refusals:
  - `rules.loader.check_ruleset(path)` never raises: it returns (None, [RuleError, ...]);
  - `rules.loader.load_ruleset(path)` raises `rules.source.RulesLoadError` (an `InvalidSource`);
  - `rules.expr.parse(text)` raises `rules.expr.ExprError`;
  - `paysentry.yamlsource.load_yaml(text, path)`, the one YAML reader behind all of them, raises
    `paysentry.yamlsource.InvalidSource`;
  - `paysentry.alerts.loader.parse_routes` / `load_routes` raise `paysentry.alerts.routes_yaml.ConfigError`
    (an `InvalidSource` and a `ValueError`).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from paysentry.alerts.loader import load_routes, parse_routes
from paysentry.alerts.routes_yaml import ConfigError
from paysentry.yamlsource import InvalidSource, load_yaml
from rules.expr import ExprError, parse
from rules.loader import check_ruleset, load_ruleset
from rules.source import RulesLoadError

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces that make the generated text likely to reach deep into the parsers, not just the YAML reader.
YAML_BITS = ["&a ", "*a", "!!python/object/apply:os.system ", "!!int ", "<<: ", "? ", "- ", "[", "]", "{", "}",
             ": ", "\n", "  ", "'", '"', "#", "|\n  ", "${PAYSENTRY_SMTP_PASSWORD}", "${PAYSENTRY_ROUTES_X:-1}",
             "9" * 50, "2020-13-45", "999999999y", "\x00", "\ufeff", "? [k]\n: ", "? *a\n: ", "<<: *a\n"]  # fmt: skip
EXPR_BITS = ["(", ")", "not ", "-", "amount", " > ", " =~ ", '"(a|aa)+$"', '"(a)\\1"', " and ", " or ", "1e999",
             "9" * 60, " in ", "[1, 2]", "list(x)", "count_over_time(vendor[2h])", "vendor[99999999999w]", "{",
             "}", ":>99999", "'", " between 1 and 2", "event.vendor_name", "+", "*", "/"]  # fmt: skip

yaml_ish_text = st.lists(st.one_of(st.sampled_from(YAML_BITS), st.text(max_size=8)), max_size=40).map("".join)
expr_ish_text = st.lists(st.one_of(st.sampled_from(EXPR_BITS), st.text(max_size=4)), max_size=40).map("".join)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                    expr_ish_text)  # fmt: skip
KEYS = ["groups", "name", "rules", "id", "expr", "reason", "severity", "action", "items", "route", "receivers",
        "routes", "matchers", "email", "to", "receiver", "group_wait", "templates", "x"]  # fmt: skip
structures = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=30,
)


def dump(data: Any) -> str:
    out = io.StringIO()
    YAML(typ="rt").dump(data, out)
    return out.getvalue()


def rule_file(expr: str, reason: str) -> dict[str, Any]:
    rule = {"id": "r", "severity": "high", "action": "hold", "expr": expr, "reason": reason}
    return {"groups": [{"name": "g", "rules": [rule]}]}


def check_rules_dir(files: dict[str, str | bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8", errors="surrogatepass")
        ruleset, errors = check_ruleset(root)
        assert (ruleset is None) == bool(errors)
        for target in (root, root / "a.rules.yaml"):  # the directory and the single-file entry point
            try:
                load_ruleset(target)
            except RulesLoadError as exc:
                assert all(str(e).count(":") >= 3 for e in exc.errors)  # file:line:col: message


def check_routes(text: str) -> None:
    try:
        parse_routes(text, "routes.yaml", environ={"PAYSENTRY_SMTP_PASSWORD": "s3cret-value"})
    except ConfigError as exc:
        assert "s3cret-value" not in str(exc)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["a.rules.yaml", "lists.yaml", "companies.yaml", "lists/x.yaml"]))
def test_rules_loader_takes_any_bytes(data: bytes, name: str) -> None:
    files: dict[str, str | bytes] = {name: data}
    files.setdefault("a.rules.yaml", "groups: []\n")
    check_rules_dir(files)


@FUZZ
@given(yaml_ish_text, yaml_ish_text)
def test_rules_loader_takes_any_yaml_ish_text(rules: str, lists: str) -> None:
    check_rules_dir({"a.rules.yaml": rules, "lists.yaml": lists})


@FUZZ
@given(structures, structures)
def test_rules_loader_takes_any_yaml_structure(rules: Any, lists: Any) -> None:
    check_rules_dir({"a.rules.yaml": dump(rules), "lists.yaml": dump(lists)})


@FUZZ
@given(expr_ish_text, expr_ish_text)
def test_rule_expressions_and_reasons_are_parsed_or_refused(expr: str, reason: str) -> None:
    try:
        parse(expr)
    except ExprError as exc:
        assert 0 <= exc.offset <= len(expr)
    check_rules_dir({"a.rules.yaml": dump(rule_file(expr, reason))})


@FUZZ
@given(st.one_of(yaml_ish_text, structures.map(dump), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_routes_loader_takes_anything(text: str) -> None:
    check_routes(text)


@FUZZ
@given(st.binary(max_size=300))
def test_routes_file_with_any_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "routes.yaml"
        path.write_bytes(data)
        with contextlib.suppress(ConfigError):
            load_routes(path, environ={})


@FUZZ
@given(st.one_of(yaml_ish_text, structures.map(dump), st.text(max_size=200)))
def test_the_yaml_reader_builds_or_refuses(text: str) -> None:
    try:
        load_yaml(text, "f.yaml")
    except InvalidSource as exc:
        assert all(e.line >= 1 and e.col >= 1 and "\n" not in e.message for e in exc.errors)
