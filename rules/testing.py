"""Rule unit tests, in the spirit of `promtool test rules`: a few contract events through the real core,
and the rule hits expected on the decisions they produce.

    # rules/default/tests/duplicates.tests.yaml
    tests:
      - name: the same invoice paid twice is held
        defaults: {company_code: US01, currency: USD, channel: ach}   # filled into events that lack them
        events:
          - {type: payment.released, event_id: e1, event_time: "2026-10-05T11:00:00-04:00", ...}
          - {type: payment.released, event_id: e2, event_time: "2026-10-09T11:00:00-04:00", ...}
        advance_to: "2026-10-20T00:00:00Z"   # optional: fire the core's timers up to this time
        expect:
          - event_id: e2
            fires: [duplicate_payment]        # these active rules hit this decision
            not_fires: [split_payment]        # and these did not (active or shadow)
            shadow_fires: []                  # shadow rules that hit
            action: hold                      # optional: the decision's action
            reason_contains: {duplicate_payment: "already paid"}

Events are fed in the order written (so late and out-of-order arrival can be tested); timers fire as
event time passes, and at the end up to `advance_to` (default: the last event's time). Timer decisions
have the event id `<type>:<payment_id>`, e.g. `sla.unsettled:P-1`. A rule named in some `fires` (or
`shadow_fires`) must hit exactly the decisions that list it, and no other decision of that test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from paysentry.contract import Decision, Event, InvalidEvent, parse_event
from paysentry.yaml_messages import did_you_mean
from rules.language import ExpectSpec, TestCaseSpec, TestFileSpec
from rules.loader import Layout, check_ruleset, discover
from rules.ruleset import Ruleset
from rules.source import RuleError, Source, plain

TEST_ACCOUNT_KEY = b"paysentry-rule-tests"


@dataclass
class RuleTest:
    name: str
    file: str
    line: int
    events: list[Event]
    advance_to: datetime | None
    expect: list[ExpectSpec]
    expect_lines: list[int]


@dataclass
class TestResult:
    test: RuleTest
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class TestReport:
    results: list[TestResult]
    errors: list[RuleError]

    @property
    def ok(self) -> bool:
        return not self.errors and all(r.ok for r in self.results)

    @property
    def failed(self) -> list[TestResult]:
        return [r for r in self.results if not r.ok]


def load_tests(layout: Layout, rule_ids: set[str], shown_root: str) -> tuple[list[RuleTest], list[RuleError]]:
    """Parse every test file; problems (bad keys, invalid events, unknown rule ids) as RuleErrors."""
    tests: list[RuleTest] = []
    errors: list[RuleError] = []
    for path in layout.tests:
        rel = layout.rel(path)
        src = Source.read(path, f"{shown_root.rstrip('/')}/{rel}" if shown_root else rel, errors)
        if src is None or src.tree is None:
            continue
        if not isinstance(src.tree, CommentedMap):
            errors.append(src.error((1, 1), "a tests file is a mapping with 'tests:'"))
            continue
        if src.validate(TestFileSpec, src.tree, (), errors, "tests file") is None:
            continue
        for t, raw in enumerate(src.tree["tests"]):
            test = _load_case(src, rel, ("tests", t), raw, rule_ids, errors)
            if test is not None:
                tests.append(test)
    return tests, errors


def _load_case(
    src: Source, rel: str, loc: tuple[Any, ...], raw: Any, rule_ids: set[str], errors: list[RuleError]
) -> RuleTest | None:
    defaults = raw.get("defaults") if isinstance(raw, CommentedMap) else None
    body = {k: v for k, v in raw.items() if k != "defaults"} if isinstance(raw, CommentedMap) else raw
    if defaults is not None and not isinstance(defaults, CommentedMap):
        errors.append(src.error(src.pos((*loc, "defaults")), "defaults: expected a mapping of event fields"))
        return None
    spec = src.validate(TestCaseSpec, body, loc, errors, "test")
    if spec is None:
        return None
    events: list[Event] = []
    for i, event_raw in enumerate(spec.events):
        data = {**plain(defaults or {}), **event_raw}
        for key in ("event_time", "due_date"):
            if key in data and not isinstance(data[key], str):
                data[key] = data[key].isoformat()
        try:
            events.append(parse_event(data, account_key=TEST_ACCOUNT_KEY))
        except InvalidEvent as exc:
            errors.append(src.error(src.pos((*loc, "events", i)), f"invalid event: {exc.reason}"))
    known_ids = {e.event_id for e in events}
    lines = []
    for j, expect in enumerate(spec.expect):
        eloc = (*loc, "expect", j)
        lines.append(src.pos(eloc)[0])
        if expect.event_id is None and (expect.payment_id is None or expect.event_type is None):
            errors.append(src.error(src.pos(eloc), "an expectation names an event_id, or a payment_id and event_type"))
        elif (
            expect.event_id is not None
            and ":" not in expect.event_id
            and expect.event_id not in known_ids
            and len(events) == len(spec.events)
        ):
            errors.append(src.error(src.pos((*eloc, "event_id")), f"no event with id '{expect.event_id}' in this test"))
        for key in ("fires", "not_fires", "shadow_fires"):
            for k, rule_id in enumerate(getattr(expect, key)):
                if rule_id not in rule_ids:
                    errors.append(
                        src.error(
                            src.pos((*eloc, key, k)), f"unknown rule '{rule_id}'{did_you_mean(rule_id, rule_ids)}"
                        )
                    )
        for rule_id in expect.reason_contains:
            if rule_id not in rule_ids:
                errors.append(
                    src.error(src.pos((*eloc, "reason_contains", rule_id), key=True), f"unknown rule '{rule_id}'")
                )
    return RuleTest(spec.name, rel, src.pos(loc)[0], events, spec.advance_to, list(spec.expect), lines)


def run_test(test: RuleTest, ruleset: Ruleset) -> TestResult:
    from paysentry.core import Engine
    from paysentry.replay import Replayer

    end = test.advance_to or (max(e.event_time for e in test.events) if test.events else None)
    until = int(end.timestamp()) if end is not None else None
    decisions = list(Replayer(Engine(ruleset), TEST_ACCOUNT_KEY).run(test.events, until=until))
    return TestResult(test, check_expectations(test, decisions))


def _select(expect: ExpectSpec, decisions: list[Decision]) -> list[Decision]:
    if expect.event_id is not None:
        return [d for d in decisions if d.event_id == expect.event_id]
    return [d for d in decisions if d.payment_id == expect.payment_id and d.event_type == expect.event_type]


def check_expectations(test: RuleTest, decisions: list[Decision]) -> list[str]:
    failures: list[str] = []
    claimed: dict[str, set[str]] = {}  # rule id -> event ids where a hit is expected (active or shadow)
    for expect, line in zip(test.expect, test.expect_lines, strict=True):
        where = expect.event_id or f"{expect.event_type} of {expect.payment_id}"
        chosen = _select(expect, decisions)
        if not chosen:
            failures.append(f"line {line}: no decision for {where}")
            continue
        decision = chosen[0]
        active = {h.rule_id: h for h in decision.rule_hits}
        shadow = {h.rule_id: h for h in decision.shadow_hits}
        for rule_id in expect.fires:
            claimed.setdefault(rule_id, set()).add(decision.event_id)
            if rule_id not in active:
                fired = ", ".join(sorted(active)) or "none"
                failures.append(f"line {line}: {where}: expected {rule_id} to fire; fired: {fired}")
        for rule_id in expect.shadow_fires:
            claimed.setdefault(rule_id, set()).add(decision.event_id)
            if rule_id not in shadow:
                failures.append(f"line {line}: {where}: expected shadow rule {rule_id} to fire")
        for rule_id in expect.not_fires:
            hit = active.get(rule_id) or shadow.get(rule_id)
            if hit is not None:
                failures.append(f"line {line}: {where}: {rule_id} fired but should not: {hit.reason}")
        if expect.action is not None and decision.action != expect.action:
            failures.append(f"line {line}: {where}: action is {decision.action}, expected {expect.action}")
        for rule_id, text in expect.reason_contains.items():
            hit = active.get(rule_id) or shadow.get(rule_id)
            if hit is not None and text not in hit.reason:
                failures.append(f"line {line}: {where}: {rule_id}'s reason {hit.reason!r} lacks {text!r}")
    for decision in decisions:
        for hit in [*decision.rule_hits, *decision.shadow_hits]:
            expected_on = claimed.get(hit.rule_id)
            if expected_on is not None and decision.event_id not in expected_on:
                failures.append(f"{hit.rule_id} also fired on {decision.event_id}: {hit.reason}")
    return failures


def run_tests(path: str | Path, *, shown_root: str | None = None) -> TestReport:
    """Load the rules at `path` and run every test file found there (or the one test file given)."""
    path = Path(path)
    ruleset, errors = check_ruleset(path.parent if path.is_file() else path, shown_root=shown_root)
    if ruleset is None:
        return TestReport([], errors)
    layout = discover(path)
    shown = shown_root if shown_root is not None else str(path.parent if path.is_file() else path)
    tests, test_errors = load_tests(layout, set(ruleset.rule_ids), shown)
    if test_errors:
        return TestReport([], test_errors)
    return TestReport([run_test(test, ruleset) for test in tests], [])
