"""Hostile or careless rule files are refused with one positioned line each: never a traceback, a hang
or a huge allocation (nesting, literals, tags, alias bombs, big files, regexes, format widths)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paysentry.yamlsource import MAX_BYTES
from rules.loader import check_ruleset
from rules.reload import RulesHolder
from rules.template import MAX_RENDERED
from tests.bounded import finishes
from tests.rules.helpers import context, one_rule, ruleset_from, write


def errors_for(tmp_path: Path, rules: str, **files: str) -> list[str]:
    write(tmp_path / "a.rules.yaml", rules)
    for name, text in files.items():
        write(tmp_path / name, text)
    ruleset, errors = finishes(lambda: check_ruleset(tmp_path, shown_root="rules"))
    assert ruleset is None
    return [str(e) for e in errors]


EXPR_COL = 16  # `        expr: "` : where a double-quoted expression's first character is


@pytest.mark.parametrize(
    ("expr", "offset", "message"),
    [
        ("(" * 90 + "amount > 1" + ")" * 90, 32, "expression is nested more than 32 levels deep"),
        ("not " * 90 + "is_new_vendor", 128, "expression is nested more than 32 levels deep"),
        ("-" * 90 + "amount > 1", 32, "expression is nested more than 32 levels deep"),
        ("amount" + " + 1" * 200 + " > 1", 557, "expression is too complex: more than 64 operators inside one another"),
    ],
    ids=["parentheses", "not", "unary-minus", "long-chain"],
)
def test_deep_expressions_are_refused_with_a_position(tmp_path: Path, expr: str, offset: int, message: str) -> None:
    assert errors_for(tmp_path, one_rule(expr)) == [f"rules/a.rules.yaml:9:{EXPR_COL + offset}: {message}"]


def test_huge_and_out_of_range_number_literals_are_refused(tmp_path: Path) -> None:
    huge = "amount > " + "9" * 4400
    assert errors_for(tmp_path, one_rule(huge)) == [
        f"rules/a.rules.yaml:9:{EXPR_COL + 9}: a number literal is limited to 40 characters"
    ]
    assert errors_for(tmp_path, one_rule("amount > -1e999999999")) == [
        f"rules/a.rules.yaml:9:{EXPR_COL + 10}: number 1e999999999 is out of range (at most 1e100)"
    ]


def test_python_tags_are_refused_at_load(tmp_path: Path) -> None:
    text = one_rule("amount > 1").replace('expr: "amount > 1"', 'expr: !!python/object/apply:os.system ["true"]')
    assert errors_for(tmp_path, text) == [
        "rules/a.rules.yaml:9:15: unsupported YAML tag '!!python/object/apply:os.system' "
        "(only plain values, lists and mappings)"
    ]


def billion_laughs() -> str:
    """The classic 9-level alias bomb: nine lines, 10^9 strings once expanded."""
    lines, item = [], '"lol"'
    for name in "abcdefghi":
        lines.append(f"{name}: &{name} [{', '.join([item] * 9)}]")
        item = f"*{name}"
    return "\n".join(lines) + "\n"


BOMB = billion_laughs()


def test_alias_bombs_are_refused_quickly_with_a_position(tmp_path: Path) -> None:
    # A rules file, then a lists file: both go through the one YAML loader.
    assert errors_for(tmp_path, "groups: []\n" + BOMB) == [
        "rules/a.rules.yaml:5:24: aliases expand to more than 5000 nodes; write the values out instead"
    ]
    assert errors_for(tmp_path, one_rule("amount > 1"), **{"lists.yaml": BOMB}) == [
        "rules/lists.yaml:4:24: aliases expand to more than 5000 nodes; write the values out instead"
    ]


def test_a_few_legitimate_anchors_still_load(tmp_path: Path) -> None:
    rules = one_rule("amount > 1").replace("labels: {typology: demo}", "labels: &shared {typology: demo}")
    rules += rules.split("    rules:\n")[1].replace("id: r", "id: r2").replace("&shared {typology: demo}", "*shared")
    lists = "vendors: &v [V1, V2]\nsame_vendors: *v\n"
    ruleset = ruleset_from(tmp_path, rules, **{"lists.yaml": lists})
    assert [r.labels["typology"] for r in ruleset.rules] == ["demo", "demo"]
    assert sorted(ruleset.lists["same_vendors"].items) == ["V1", "V2"]


def test_files_over_the_size_limit_are_refused(tmp_path: Path) -> None:
    padding = "# " + "x" * 1000 + "\n"
    text = one_rule("amount > 1") + padding * (MAX_BYTES // len(padding) + 1)
    assert errors_for(tmp_path, text) == ["rules/a.rules.yaml:1:1: file is larger than 1024 KiB"]


def test_regexes_run_in_linear_time(tmp_path: Path) -> None:
    ruleset = ruleset_from(tmp_path, one_rule('event.vendor_name =~ "(a|aa)+$"'))
    hostile = context(vendor_name="a" * 48 + "!")
    hits, _ = finishes(lambda: ruleset.evaluate(hostile))
    assert hits == []
    assert [h.rule_id for h in ruleset.evaluate(context(vendor_name="aaaa"))[0]] == ["r"]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(a)\\\\1", "invalid escape sequence: \\1 (RE2 syntax: no backreferences or lookaround)"),
        ("(?=a)b", "invalid perl operator: (?= (RE2 syntax: no backreferences or lookaround)"),
        ("a" * 501, "regular expression longer than 500 characters"),
    ],
    ids=["backreference", "lookahead", "too-long"],
)
def test_patterns_re2_cannot_run_are_refused_at_check(tmp_path: Path, pattern: str, message: str) -> None:
    expr = f'event.vendor_name =~ "{pattern}"'
    found = errors_for(tmp_path, one_rule(expr))
    col = EXPR_COL + len("event.vendor_name =~ ") + 1  # the quote is escaped (`\"`) in the YAML string
    assert found == [f"rules/a.rules.yaml:9:{col}: invalid regular expression: {message}"]


@pytest.mark.parametrize("spec", [">99999999", ".99999999f", "065", ",.0999f"])
def test_huge_format_widths_and_precisions_are_refused(tmp_path: Path, spec: str) -> None:
    reason = "amount {amount:" + spec + "}"
    found = errors_for(tmp_path, one_rule("amount > 1", reason=reason))
    col = 1 + len('        reason: "') + len("amount {amount:")
    assert found == [f"rules/a.rules.yaml:11:{col}: format '{spec}': widths and precisions go up to 64"]


def test_a_rendered_reason_is_capped(tmp_path: Path) -> None:
    ruleset = ruleset_from(tmp_path, one_rule("amount > 1", reason="x" * 5000 + " {amount:>64}"))
    [hit], _ = ruleset.evaluate(context({"amount": 5}))
    assert len(hit.reason) == MAX_RENDERED and hit.reason.endswith("…")


def test_a_bad_ruleset_is_refused_and_audited_by_a_running_holder(rules_dir: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    holder = RulesHolder(rules_dir, audit_log=audit)
    version = holder.version
    write(rules_dir / "a.rules.yaml", one_rule("(" * 200 + "amount > 1" + ")" * 200))
    assert holder.reload_now() is False
    assert holder.refused == 1 and holder.version == version
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [r["outcome"] for r in records] == ["loaded", "refused"]
    assert "nested more than 32 levels deep" in records[1]["errors"][0]
    write(rules_dir / "a.rules.yaml", one_rule("amount > 2"))
    assert holder.reload_now() is True


def test_a_malformed_labels_file_is_one_clear_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rules.backtest import read_labels
    from rules.cli import rules_app
    from rules.loader import DEFAULT_RULES_DIR

    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"payment_id": "P1", "verdict": "fraud"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"labels.jsonl:2: expected a JSON object$"):
        read_labels(labels, [])
    labels.write_text('{"payment_id": "P1", "verdict": "fraud"}\n{"payment_id": \n', encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text("", encoding="utf-8")
    result = CliRunner().invoke(
        rules_app, ["backtest", str(DEFAULT_RULES_DIR), "--events", str(events), "--labels", str(labels)]
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"backtest: {labels}:2: not a JSON line"
