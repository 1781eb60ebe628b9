"""The route tree, the channel policy and the time arithmetic: pure, with explicit times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from paysentry.alerts.config import DeliveryPolicy, QuietHours
from paysentry.alerts.loader import parse_routes
from paysentry.alerts.routing import RouteTree, channels_for, digest_channel
from paysentry.alerts.timing import quiet_until, rate_window, retry_delay

TREE = """
route:
  receiver: default
  group_by: [company, vendor]
  group_wait: 30s
  repeat_interval: 4h
  routes:
    - matchers: ['severity="critical"']
      receiver: oncall
      group_wait: 10s
      escalation: chain
      continue: true
      routes:
        - matchers: ['company="2000"']
          receiver: oncall-emea
    - matchers: ['channel=~"swift|cips"']
      receiver: treasury
      group_by: [channel]
    - matchers: ['team="treasury"']
      receiver: treasury-team
    - matchers: ['rule_id=~"dup.*"']
      receiver: duplicates
receivers:
  - {name: default, email: {to: [d@example.com]}}
  - {name: oncall, email: {to: [o@example.com]}, sms: {to: ["+15555550100"]}}
  - {name: oncall-emea, email: {to: [e@example.com]}, sms: {to: ["+15555550102"]}, min_severity: {sms: high}}
  - {name: treasury, email: {to: [t@example.com]}}
  - {name: treasury-team, sms: {to: ["+15555550103"]}}
  - {name: duplicates, email: {to: [x@example.com]}, digest: {channel: email}}
escalations:
  chain: {steps: [{after: 15m, receiver: oncall}]}
"""


@pytest.fixture(scope="module")
def tree() -> RouteTree:
    return RouteTree(parse_routes(TREE, environ={}))


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"severity": "low"}, ["default"]),
        ({"severity": "critical"}, ["oncall"]),
        ({"severity": "critical", "company": "2000"}, ["oncall-emea"]),
        # `continue` on the critical route lets the alert reach the sibling below it too.
        ({"severity": "critical", "channel": "swift"}, ["oncall", "treasury"]),
        # Without `continue`, the first matching sibling stops the search.
        ({"channel": "cips", "team": "treasury"}, ["treasury"]),
        ({"team": "treasury", "rule_id": "dup_invoice"}, ["treasury-team"]),
        ({"rule_id": "dup_invoice"}, ["duplicates"]),
        ({"rule_id": "xdup"}, ["default"]),
    ],
)
def test_route_matching(tree, labels, receivers):
    assert tree.receivers(labels) == receivers


def test_children_inherit_settings(tree):
    [node] = tree.match({"severity": "critical", "company": "2000"})
    assert node.receiver == "oncall-emea"
    assert node.group_wait == timedelta(seconds=10), "from the critical route"
    assert node.escalation == "chain"
    assert node.repeat_interval == timedelta(hours=4), "from the root"
    assert node.group_interval == timedelta(minutes=5), "Alertmanager's default"
    assert node.group_by == ("company", "vendor")
    [treasury] = tree.match({"channel": "swift"})
    assert treasury.group_by == ("channel",)
    assert treasury.escalation is None


def test_group_keys(tree):
    [node] = tree.match({"severity": "low"})
    a = node.group_key({"company": "1000", "vendor": "V-1", "rule_id": "a"})
    b = node.group_key({"company": "1000", "vendor": "V-1", "rule_id": "b"})
    c = node.group_key({"company": "1000", "vendor": "V-2"})
    assert a == b != c
    assert node.group_labels({"vendor": "V-1"}) == {"company": "", "vendor": "V-1"}


def test_channel_policy(tree):
    config = tree.config
    oncall, emea = config.receiver("oncall"), config.receiver("oncall-emea")
    assert channels_for(oncall, "critical") == ["sms", "email"]
    assert channels_for(oncall, "high") == ["email"]
    assert channels_for(oncall, "medium") == []
    assert channels_for(emea, "high") == ["sms", "email"]
    assert digest_channel(oncall) == "email"
    assert digest_channel(config.receiver("treasury-team")) == "sms"


BERLIN_NIGHTS = QuietHours(start="22:00", end="07:00", timezone="Europe/Berlin")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (datetime(2024, 1, 15, 20, 59, tzinfo=UTC), None),  # 21:59 in Berlin (winter, UTC+1)
        (datetime(2024, 1, 15, 21, 0, tzinfo=UTC), datetime(2024, 1, 16, 6, 0, tzinfo=UTC)),
        (datetime(2024, 1, 16, 3, 0, tzinfo=UTC), datetime(2024, 1, 16, 6, 0, tzinfo=UTC)),
        (datetime(2024, 1, 16, 6, 0, tzinfo=UTC), None),  # 07:00 local: over
        (datetime(2024, 7, 15, 21, 30, tzinfo=UTC), datetime(2024, 7, 16, 5, 0, tzinfo=UTC)),  # summer, UTC+2
        (datetime(2024, 3, 30, 22, 0, tzinfo=UTC), datetime(2024, 3, 31, 5, 0, tzinfo=UTC)),  # night of the DST change
    ],
)
def test_quiet_hours_across_midnight_and_time_zones(now, until):
    assert quiet_until(BERLIN_NIGHTS, now) == until


def test_quiet_hours_within_a_day():
    lunch = QuietHours(start="12:00", end="13:00")  # type: ignore[arg-type]
    assert quiet_until(lunch, datetime(2024, 1, 1, 12, 30, tzinfo=UTC)) == datetime(2024, 1, 1, 13, tzinfo=UTC)
    assert quiet_until(lunch, datetime(2024, 1, 1, 13, 0, tzinfo=UTC)) is None
    with pytest.raises(ValueError):
        quiet_until(lunch, datetime(2024, 1, 1, 12, 30))


def test_rate_windows_and_backoff():
    index, end = rate_window(timedelta(hours=1), datetime(2024, 1, 1, 12, 20, tzinfo=UTC))
    assert end == datetime(2024, 1, 1, 13, 0, tzinfo=UTC)
    assert rate_window(timedelta(hours=1), datetime(2024, 1, 1, 12, 59, 59, tzinfo=UTC))[0] == index
    policy = DeliveryPolicy(backoff="30s", max_backoff="5m")  # type: ignore[arg-type]
    assert [retry_delay(policy, n).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]
