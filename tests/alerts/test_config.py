"""The routes file: loading, `${ENV}` placeholders, and errors as path:line:col: message."""

from __future__ import annotations

import logging
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from paysentry.alerts.durations import format_duration, parse_duration
from paysentry.alerts.loader import RoutesHolder, load_routes, parse_routes
from paysentry.alerts.matchers import Matcher, parse_label_pairs
from paysentry.alerts.routes_yaml import ConfigError

REPO = Path(__file__).resolve().parents[2]
MINIMAL = """\
route:
  receiver: a
receivers:
  - name: a
    email: {to: [a@example.com]}
"""


def errors(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_routes(textwrap.dedent(text), "routes.yaml", environ=environ or {})
    return [str(issue) for issue in caught.value.issues]


def test_default_routes_file_loads_without_any_environment():
    config = load_routes(REPO / "config" / "routes.yaml", environ={})
    assert config.receiver_names == ["ap-team", "payments-oncall", "payments-lead", "treasury"]
    assert config.receiver("payments-oncall").sms.to == ["+15555550100"]
    assert config.escalations["payments-critical"].steps[0].after == timedelta(minutes=15)


def test_env_placeholders_fill_recipients_and_split_lists():
    env = {"PAYSENTRY_ROUTES_ONCALL_EMAIL": "a@corp.example, b@corp.example", "PAYSENTRY_ROUTES_TIMEZONE": "UTC"}
    config = load_routes(REPO / "config" / "routes.yaml", environ=env)
    oncall = config.receiver("payments-oncall")
    assert oncall.email.to == ["a@corp.example", "b@corp.example"]
    assert oncall.quiet_hours.timezone == "UTC"
    # Template placeholders are not environment variables.
    assert config.templates["terse"].sms.startswith("${SEVERITY}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("4h", timedelta(hours=4)),
        ("1h30m", timedelta(minutes=90)),
        ("1d", timedelta(days=1)),
        ("250ms", timedelta(milliseconds=250)),
        ("0", timedelta(0)),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("bad", ["", "5", "m5", "1.5h", "5m1h", "-1s", "1h 30m"])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_matchers_like_alertmanager():
    labels = {"severity": "critical", "vendor": "V-1", "team": "ap"}
    assert Matcher.parse('severity="critical"').matches(labels)
    assert Matcher.parse("severity=critical").matches(labels)
    assert not Matcher.parse('severity!="critical"').matches(labels)
    assert Matcher.parse('team=~"ap|treasury"').matches(labels)
    assert not Matcher.parse('team=~"a"').matches(labels), "regexes are anchored"
    assert Matcher.parse('channel!~"swift|cips"').matches(labels), "a missing label is the empty string"
    assert Matcher.parse('channel=""').matches(labels)
    assert str(Matcher.parse("vendor = 'V \\'1'")) == 'vendor="V \'1"'
    assert parse_label_pairs(["severity=high", 'vendor="V 1"']) == {"severity": "high", "vendor": "V 1"}
    for bad in ["severity", "1x=y", 'a=~"("', 'a="unterminated']:
        with pytest.raises(ValueError):
            Matcher.parse(bad)


def test_errors_point_at_the_offending_key_or_value():
    found = errors(
        """\
        global:
          alert_ttl: 24x
        route:
          receiver: finance
          colour: blue
          routes:
            - matchers: ['severity="critical"', 'team=~"(unclosed"']
        receivers:
          - name: finance
            email:
              to: [not-an-address]
          - name: oncall
            sms:
              to: ["${PAYSENTRY_ROUTES_ONCALL_PHONE}"]
        """
    )
    assert found == [
        "routes.yaml:2:14: global.alert_ttl: '24x' is not a duration like '30s', '5m', '4h' or '1h30m'",
        "routes.yaml:5:3: unknown key 'colour' in route",
        "routes.yaml:7:41: route.routes[0].matchers[1]: team=~'(unclosed': bad regular expression "
        "(missing ): (unclosed)",
        "routes.yaml:11:12: receivers[0].email.to[0]: 'not-an-address' is not an email address",
        "routes.yaml:14:12: receivers[1].sms.to[0]: environment variable PAYSENTRY_ROUTES_ONCALL_PHONE is not set",
    ]


def test_routes_errors_are_worded_as_in_every_yaml_file():
    # The wording of the rules files: the key, where it is, and the closest key the file may use
    # (an aliased field by the name the file writes, `continue`).
    assert errors(
        "route:\n  receivr: a\n  continu: true\nreceivers:\n  - name: a\n    email: {to: [a@example.com]}\n"
    ) == [
        "routes.yaml:2:3: unknown key 'receivr' in route — did you mean 'receiver'?",
        "routes.yaml:3:3: unknown key 'continu' in route — did you mean 'continue'?",
    ]
    assert errors("route: {receiver: a}\nreceivers:\n  - email: {to: [a@example.com]}\n") == [
        "routes.yaml:3:5: missing required key 'name' in receivers[0]"
    ]


def test_references_are_checked_with_positions():
    found = errors(
        """\
        route:
          receiver: a
          escalation: nope
          routes:
            - matchers: [severity=critical]
              receiver: ghost
        receivers:
          - name: a
            email: {to: [a@example.com]}
            fallback: a
          - name: a
            sms: {to: ["+15555550100"], template: fancy}
        templates:
          short:
            sms: "${SEVERITY} ${colour}"
        escalations:
          e:
            steps: [{after: 5m, receiver: nobody}]
        """
    )
    assert found == [
        "routes.yaml:3:15: route.escalation: no escalation named 'nope'",
        "routes.yaml:6:17: route.routes[0].receiver: no receiver named 'ghost' (receivers: a)",
        "routes.yaml:10:15: receivers[0].fallback: a receiver cannot be its own fallback",
        "routes.yaml:11:11: receivers[1].name: receiver 'a' is defined twice",
        "routes.yaml:12:43: receivers[1].sms.template: no template named 'fancy'",
        "routes.yaml:15:10: templates.short.sms: unknown placeholder(s) ${colour}; known: SEVERITY, ack_command, "
        "alert_id, amount, case_url, company, count, currency, earlier, kind, kind_label, more, new_count, note, "
        "payment_id, receiver, rule_id, severity, vendor",
        "routes.yaml:18:35: escalations.e.steps[0].receiver: no receiver named 'nobody' (receivers: a)",
    ]


def test_structure_errors():
    assert errors("route: [unclosed\n") == [
        "routes.yaml:2:1: invalid YAML: expected ',' or ']', but got '<stream end>'"
    ]
    assert errors("- just a list\n") == ["routes.yaml:1:1: a routes file is a mapping with `route` and `receivers`"]
    assert errors("route:\n  receiver: a\nreceivers:\n  - name: a\n") == [
        "routes.yaml:4:5: receivers[0]: a receiver needs email or sms (or both)"
    ]
    assert errors(MINIMAL.replace("receiver: a", "receiver: a\n  matchers: [a=b]")) == [
        "routes.yaml:3:3: route.matchers: the root route matches every alert; it cannot have matchers"
    ]
    quiet = MINIMAL + "    quiet_hours: {start: '25:00', end: '07:00', timezone: Mars/Olympus}\n"
    found = errors(quiet)
    assert found[0].startswith("routes.yaml:6:26: receivers[0].quiet_hours.start: must be a time of day")
    assert found[1].startswith("routes.yaml:6:59: receivers[0].quiet_hours.timezone: unknown time zone")


def test_holder_keeps_the_last_good_routes(tmp_path, caplog):
    path = tmp_path / "routes.yaml"
    path.write_text(MINIMAL)
    holder = RoutesHolder(path, environ={})
    assert holder.config.receiver_names == ["a"]

    path.write_text(MINIMAL.replace("name: a", "name: b"))
    with caplog.at_level(logging.ERROR, logger="paysentry.alerts.loader"):
        assert holder.reload() is False
    assert holder.config.receiver_names == ["a"], "the bad file is not used"
    assert "routes.yaml:2:13: route.receiver: no receiver named 'a'" in caplog.text
    assert holder.last_error is not None

    path.write_text(MINIMAL.replace("receiver: a", "receiver: c").replace("name: a", "name: c"))
    assert holder.reload() is True
    assert holder.config.receiver_names == ["c"]
    assert holder.reload_if_changed() is False


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_routes(tmp_path / "nope.yaml")
    assert str(caught.value).startswith(f"{tmp_path / 'nope.yaml'}:1:1: cannot read")


def test_holder_survives_a_file_the_yaml_reader_refuses(tmp_path):
    path = tmp_path / "routes.yaml"
    path.write_text(MINIMAL)
    holder = RoutesHolder(path, environ={})
    path.write_text(MINIMAL + "\x07\n")  # a control character: refused by the reader, not the parser
    assert holder.reload() is False
    assert holder.config.receiver_names == ["a"]
    assert str(holder.last_error) == f"{path}:6:1: invalid YAML: character '\\x07' is not allowed"
