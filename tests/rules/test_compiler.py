"""What compiled conditions and reason templates mean, on hand-built contexts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from rules.compiler import Env, Scope, parse_and_compile
from tests.rules.helpers import context, fired, one_rule, ruleset_from


def holds(expr: str, features: dict, lists: dict | None = None, **ctx_args) -> bool | None:
    from rules.compiler import ListValue

    scope = Scope({k: ListValue(k, "text", frozenset(v)) for k, v in (lists or {}).items()}, text=expr)
    _, fn = parse_and_compile(expr, scope)
    assert not scope.errors, scope.errors
    assert fn is not None
    ctx = context(features, **ctx_args)
    return fn(Env(ctx.event_type, ctx.event, ctx.features, ctx.company, ctx.window))


@pytest.mark.parametrize(
    ("expr", "features", "expected"),
    [
        ("amount > 100", {"amount": 150.0}, True),
        ("amount > 100", {"amount": Decimal("100.00")}, False),
        ("amount >= 100 and amount <= 200", {"amount": 100}, True),
        ("amount between 1 and 5", {"amount": 5.0}, True),
        ("amount not between 1 and 5", {"amount": 5.5}, True),
        ("amount * 2 + 1 > 201", {"amount": Decimal("100.5")}, True),
        ("amount / amount_base > 7", {"amount": Decimal("100"), "amount_base": 14.0}, True),
        ("amount / amount_base > 7", {"amount": Decimal("100"), "amount_base": 0.0}, None),  # no division by 0
        ("-amount < -5", {"amount": 6}, True),
        ("abs(amount_zscore_30d) >= 3", {"amount_zscore_30d": -3.5}, True),
        ("min(amount, amount_base) == 2", {"amount": 3, "amount_base": 2.0}, True),
        ("max(amount, amount_base) == 3", {"amount": Decimal(3), "amount_base": 2.0}, True),
        ("channel == 'wire'", {"channel": "wire"}, True),
        ('channel != "wire"', {"channel": "ach"}, True),
        ("channel in ['wire', 'swift']", {"channel": "swift"}, True),
        ("channel not in ['wire', 'swift']", {"channel": "swift"}, False),
        ("hour_local in [22, 23, 0]", {"hour_local": 23}, True),
        ("self_approved", {"self_approved": True}, True),
        ("not self_approved", {"self_approved": False}, True),
        ("self_approved == false", {"self_approved": False}, True),
        ("is_night or is_weekend", {"is_night": False, "is_weekend": True}, True),
        ("channel =~ 'wire|swift'", {"channel": "swift"}, True),
        ("channel =~ 'wire'", {"channel": "wire2"}, False),  # anchored, like PromQL
        ("channel !~ 'w.*'", {"channel": "ach"}, True),
        ("present(amount_zscore_30d)", {"amount_zscore_30d": None}, False),
        ("coalesce(vendor_payment_count_30d, 0) < 1", {"vendor_payment_count_30d": None}, True),
        ("payee_country in list(risky)", {"payee_country": "IR"}, True),
    ],
)
def test_condition_semantics(expr: str, features: dict, expected: bool | None) -> None:
    assert holds(expr, features, lists={"risky": {"IR", "KP"}}) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("amount > 5", None),  # a missing value makes a comparison unknown: the rule does not fire
        ("not (amount > 5)", None),  # ... and its negation too (three-valued logic)
        ("amount > 5 and is_night", False),  # and: any false wins
        ("amount > 5 or is_night", True),  # or: any true wins
        ("amount > 5 or is_weekend", None),
        ("channel in ['wire']", None),
        ("channel not in ['wire']", None),
        ("amount between 1 and 5", None),
        ("self_approved", None),
        ("abs(amount) > 1", None),
    ],
)
def test_missing_values_never_fire_and_never_crash(expr: str, expected: bool | None) -> None:
    features = {"amount": None, "channel": None, "is_night": True, "is_weekend": False, "self_approved": None}
    features_false_night = dict(features, is_night=False)
    value = holds(expr, features if "or" in expr else features_false_night)
    assert value is expected


def test_event_fields_and_company_parameters() -> None:
    assert holds("event.status_reason =~ 'AC0[46].*'", {}, status_reason="AC04 closed account") is True
    assert holds("event.amount > 0.9 * company.approval_limit", {}, amount=Decimal("46000")) is True
    assert holds("company.timezone == 'Asia/Shanghai'", {}) is None  # default company has no zone


def test_window_functions_read_the_core_windows() -> None:
    windows = {("vendor", "count", 7200): 3.0, ("vendor", "sum", 86400): 5000.0, ("channel", "failures", 3600): 2.0}
    assert holds("count_over_time(vendor[2h]) >= 3 and sum_over_time(vendor[1d]) > 4999", {}, windows=windows)
    assert holds("failures_over_time(channel[60m]) == 2", {}, windows=windows)
    assert holds("count_over_time(creator[1w]) == 0", {}, windows=windows)


def test_window_values_are_read_once_per_event(tmp_path: Path) -> None:
    text = one_rule(
        "count_over_time(vendor[2h]) >= 1 and count_over_time(vendor[2h]) < 5",
        reason="{count_over_time(vendor[2h]):.0f} payments",
    )
    ruleset = ruleset_from(tmp_path, text)
    ctx = context({}, windows={("vendor", "count", 7200): 2.0})
    hits, _ = ruleset.evaluate(ctx)
    assert hits[0].reason == "2 payments"
    assert ctx.window.calls == [("vendor", "count", 7200)]  # type: ignore[attr-defined]


def test_reason_templates_render_money_percentages_and_missing_values(tmp_path: Path) -> None:
    reason = (
        "{amount:money} {currency} is {amount_ratio_median_30d:.1f}× the median; "
        "{amount_to_limit_ratio:pct} of the limit; z={amount_zscore_30d:.1f}; {{literal}}; {self_approved}"
    )
    ruleset = ruleset_from(tmp_path, one_rule("amount > 0", reason=reason))
    features = {
        "amount": Decimal("1234567.5"),
        "currency": "USD",
        "amount_ratio_median_30d": 21.04,
        "amount_to_limit_ratio": 0.9312,
        "amount_zscore_30d": None,
        "self_approved": True,
    }
    hits, _ = ruleset.evaluate(context(features))
    assert hits[0].reason == ("1,234,567.50 USD is 21.0× the median; 93.1% of the limit; z=n/a; {literal}; true")
    assert hits[0].labels == {"team": "t", "typology": "demo"}
    assert (hits[0].rule_id, hits[0].severity, hits[0].action) == ("r", "high", "hold")


def test_default_reason_lists_the_values_the_condition_used(tmp_path: Path) -> None:
    ruleset = ruleset_from(tmp_path, one_rule("amount > 10 and count_over_time(vendor[1h]) >= 0"))
    hits, _ = ruleset.evaluate(context({"amount": 12.5}))
    assert hits[0].reason == "r (amount=12.50, count_over_time(vendor[1h])=0)"


def test_on_limits_the_event_types_and_timer_events(tmp_path: Path) -> None:
    ruleset = ruleset_from(tmp_path, one_rule("hours_since_release >= settlement_sla_hours", on="sla.unsettled"))
    features = {"hours_since_release": 72.0, "settlement_sla_hours": 72.0}
    assert fired(ruleset, context(features, event_type="sla.unsettled")) == ["r"]
    assert fired(ruleset, context(features, event_type="payment.released")) == []
    default_on = ruleset_from(tmp_path, one_rule("amount > 1"))
    assert fired(default_on, context({"amount": 5}, event_type="psp.settled")) == ["r"]
    assert fired(default_on, context({"amount": 5}, event_type="sla.unsettled")) == []


def test_shadow_and_disabled_rules(tmp_path: Path) -> None:
    shadow = ruleset_from(tmp_path, one_rule("amount > 1", status="shadow"))
    assert fired(shadow, context({"amount": 5})) == ["shadow:r"]
    disabled = ruleset_from(tmp_path, one_rule("amount > 1", status="disabled"))
    assert fired(disabled, context({"amount": 5})) == []


def test_a_rule_that_fails_at_run_time_is_skipped_not_fatal(tmp_path: Path) -> None:
    ruleset = ruleset_from(tmp_path, one_rule("amount > 1"))
    assert fired(ruleset, context({"amount": "not a number"})) == []


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    first = ruleset_from(tmp_path, one_rule("amount > 1"))
    again = ruleset_from(tmp_path, one_rule("amount > 1"))
    changed = ruleset_from(tmp_path, one_rule("amount > 2"))
    assert first.version == again.version != changed.version
    assert first.version.startswith("sha256:") and len(first.version) == 7 + 16
    assert (tmp_path / "a.rules.yaml").exists() and "a.rules.yaml" in first.files


def test_companies_default_and_overrides(tmp_path: Path) -> None:
    companies = "default:\n  settlement_sla_hours: 24\nCN01:\n  timezone: Asia/Shanghai\n  approval_limit: 500000\n"
    ruleset = ruleset_from(tmp_path, one_rule("amount > 1"), **{"companies.yaml": companies})
    assert ruleset.company("CN01").timezone == "Asia/Shanghai"
    assert ruleset.company("CN01").settlement_sla_hours == 24
    assert ruleset.company("XX99").settlement_sla_hours == 24
    assert ruleset.company(None).approval_limit is None
