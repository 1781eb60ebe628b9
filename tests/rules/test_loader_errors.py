"""Every failure mode of the loader, one bad file each, with the exact `file:line:col: message`."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.loader import check_ruleset, load_ruleset
from rules.source import RulesLoadError

GOOD_RULE = """\
groups:
  - name: g
    rules:
      - id: big
        severity: high
        action: hold
        expr: amount > 100
"""


def errors_for(tmp_path: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    ruleset, errors = check_ruleset(tmp_path, shown_root="rules")
    assert (ruleset is None) == bool(errors)
    return [str(e) for e in errors]


def rule(expr: str, extra: str = "") -> str:
    return GOOD_RULE.replace("expr: amount > 100", f"expr: {expr}") + extra


CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    "yaml syntax": (
        {"a.rules.yaml": "groups:\n  - name: g\n    rules: [\n"},
        ["rules/a.rules.yaml:4:1: invalid YAML: expected the node content, but found '<stream end>'"],
    ),
    "duplicate yaml key": (
        {"a.rules.yaml": GOOD_RULE + "        action: block\n"},
        ['rules/a.rules.yaml:8:9: invalid YAML: duplicate key "action"'],
    ),
    "unknown key": (
        {"a.rules.yaml": GOOD_RULE.replace("severity: high", "severity: high\n        sevrity: low")},
        ["rules/a.rules.yaml:6:9: unknown key 'sevrity' in rule 'big' — did you mean 'severity'?"],
    ),
    "missing key": (
        {"a.rules.yaml": GOOD_RULE.replace("        action: hold\n", "")},
        ["rules/a.rules.yaml:4:9: missing required key 'action' in rule 'big'"],
    ),
    "bad enum value": (
        {"a.rules.yaml": GOOD_RULE.replace("severity: high", "severity: urgent")},
        ["rules/a.rules.yaml:5:19: severity: 'urgent' is not one of info, low, medium, high or critical"],
    ),
    "wrong type": (
        {"a.rules.yaml": rule("amount > 100", "        labels: {team: 7}\n")},
        ["rules/a.rules.yaml:8:24: labels.team: expected a string, got a number"],
    ),
    "top level not groups": (
        {"a.rules.yaml": "rules: []\n"},
        [
            "rules/a.rules.yaml:1:1: missing required key 'groups' in rules file",
            "rules/a.rules.yaml:1:1: unknown key 'rules' in rules file",
        ],
    ),
    "unknown feature": (
        {"a.rules.yaml": rule("amount_ratio > 20 and vendor_payment_count_30d >= 5")},
        ["rules/a.rules.yaml:7:15: unknown feature 'amount_ratio' — did you mean 'amount_ratio_median_30d'?"],
    ),
    "unknown list": (
        {"a.rules.yaml": rule("payee_country in list(high_risk)"), "lists.yaml": "high_risk_countries: [IR]\n"},
        ["rules/a.rules.yaml:7:37: unknown list 'high_risk' — did you mean 'high_risk_countries'?"],
    ),
    "unknown function": (
        {"a.rules.yaml": rule("count_over(vendor[2h]) > 3")},
        ["rules/a.rules.yaml:7:15: unknown function 'count_over' — did you mean 'count_over_time'?"],
    ),
    "unknown entity": (
        {"a.rules.yaml": rule("count_over_time(vendors[2h]) > 3")},
        [
            "rules/a.rules.yaml:7:31: unknown entity 'vendors' — did you mean 'vendor'? "
            "(one of vendor, company, creator, account, channel)"
        ],
    ),
    "window too long": (
        {"a.rules.yaml": rule("sum_over_time(vendor[90d]) > 3")},
        ["rules/a.rules.yaml:7:29: range 90d is longer than the 31d the engine keeps"],
    ),
    "text compared with number": (
        {"a.rules.yaml": rule("payee_country > 5")},
        ["rules/a.rules.yaml:7:31: cannot compare payee_country (text) with 5 (number)"],
    ),
    "number used as condition": (
        {"a.rules.yaml": rule("amount and self_approved")},
        ["rules/a.rules.yaml:7:15: a condition must be true or false, but amount is a number"],
    ),
    "syntax error inside a block scalar": (
        {"a.rules.yaml": rule("|\n          amount > 100\n            and and self_approved")},
        ["rules/a.rules.yaml:9:17: unexpected keyword 'and'"],
    ),
    "single equals": (
        {"a.rules.yaml": rule("channel = 'wire'")},
        ["rules/a.rules.yaml:7:23: unexpected '=' — use '==' to compare"],
    ),
    "never true": (
        {"a.rules.yaml": rule("amount > 10 and vendor_count_1h >= 0 and amount < 5")},
        ["rules/a.rules.yaml:7:56: condition can never be true: 'amount > 10' and 'amount < 5' can never both be true"],
    ),
    "never true by domain": (
        {"a.rules.yaml": rule("hour_local >= 24")},
        [
            "rules/a.rules.yaml:7:15: condition can never be true: 'hour_local >= 24' can never be true: "
            "hour_local is never above 23"
        ],
    ),
    "duplicate id": (
        {"a.rules.yaml": GOOD_RULE, "b.rules.yaml": GOOD_RULE},
        ["rules/b.rules.yaml:4:13: duplicate rule id 'big' (first defined at rules/a.rules.yaml:4:13)"],
    ),
    "unknown event type": (
        {"a.rules.yaml": rule("amount > 100", "        on: [payment.relased]\n")},
        [
            "rules/a.rules.yaml:8:13: on: 'payment.relased' matches no scored event type "
            "(payment.*, psp.*, sla.unsettled, psp.unmatched)"
        ],
    ),
    "bad reason placeholder": (
        {"a.rules.yaml": rule("amount > 100", '        reason: "paid {amount:money} to {vendor}"\n')},
        ["rules/a.rules.yaml:8:42: 'vendor' is an entity: use it in a range, e.g. count_over_time(vendor[1h])"],
    ),
    "bad format spec": (
        {"a.rules.yaml": rule("amount > 100", '        reason: "paid {channel:.2f}"\n')},
        ["rules/a.rules.yaml:8:32: format '.2f' does not apply to channel (a text)"],
    ),
    "unclosed placeholder": (
        {"a.rules.yaml": rule("amount > 100", '        reason: "paid {amount"\n')},
        ["rules/a.rules.yaml:8:23: unclosed '{' in template (write '{{' for a literal brace)"],
    ),
    "list mixing types": (
        {"a.rules.yaml": GOOD_RULE, "lists/limits.yaml": "[1, 2, three]\n"},
        ["rules/lists/limits.yaml:1:8: list 'limits' mixes number and other values: quote them all or none"],
    ),
    "duplicate list": (
        {"a.rules.yaml": GOOD_RULE, "lists.yaml": "vip: [V1]\n", "lists/vip.yaml": "[V2]\n"},
        ["rules/lists/vip.yaml:1:1: duplicate list 'vip' (first defined in rules/lists.yaml:1)"],
    ),
    "bad company timezone": (
        {"a.rules.yaml": GOOD_RULE, "companies.yaml": "default: {}\nUS01: {timezone: America/NewYork}\n"},
        [
            "rules/companies.yaml:2:18: timezone: unknown timezone 'America/NewYork' "
            "(expected an IANA name like 'Asia/Shanghai')"
        ],
    ),
    "unknown company key": (
        {"a.rules.yaml": GOOD_RULE, "companies.yaml": "US01:\n  approval_limt: 5\n"},
        ["rules/companies.yaml:2:3: unknown key 'approval_limt' in company 'US01' — did you mean 'approval_limit'?"],
    ),
    "no rules": (
        {"lists.yaml": "a: [x]\n"},
        ["rules:1:1: no rules files found"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_failure_mode_has_an_exact_message(tmp_path: Path, case: str) -> None:
    files, expected = CASES[case]
    assert errors_for(tmp_path, files) == expected


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        GOOD_RULE
        + """\
      - id: two
        severity: hgih
        action: hold
        expr: amount_ratio > 1
      - id: three
        severity: low
        action: review
        expr: channel > 1
"""
    )
    found = errors_for(tmp_path, {"a.rules.yaml": text})
    assert len(found) == 3
    assert [e.split(":")[1] for e in found] == ["9", "11", "15"]


def test_load_ruleset_raises_with_all_errors(tmp_path: Path) -> None:
    (tmp_path / "a.rules.yaml").write_text(rule("amount_ratio > 1"), encoding="utf-8")
    with pytest.raises(RulesLoadError) as info:
        load_ruleset(tmp_path)
    assert len(info.value.errors) == 1
    assert "unknown feature 'amount_ratio'" in str(info.value)


def test_test_file_errors_are_positioned(tmp_path: Path) -> None:
    from rules.loader import discover
    from rules.testing import load_tests

    (tmp_path / "a.rules.yaml").write_text(GOOD_RULE, encoding="utf-8")
    (tmp_path / "a.tests.yaml").write_text(
        """\
tests:
  - name: t
    events:
      - {type: payment.released, event_id: e1, event_time: "2026-10-06T11:00:00Z", payment_id: P,
         vendor_id: V, amount: "-5", currency: USD}
    expect:
      - event_id: e1
        fires: [bgi]
""",
        encoding="utf-8",
    )
    _, errors = load_tests(discover(tmp_path), {"big"}, "rules")
    assert [str(e) for e in errors] == [
        "rules/a.tests.yaml:4:9: invalid event: amount: must be positive, got '-5'",
        "rules/a.tests.yaml:8:17: unknown rule 'bgi' — did you mean 'big'?",
    ]
