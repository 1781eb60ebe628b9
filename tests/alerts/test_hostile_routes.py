"""Hostile or careless routes files and CLI input: secrets never read or shown, alias bombs and deep
trees refused with a position, durations bounded, rendered text bounded, silences and acks audited."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paysentry.alerts.cli import alerts_app
from paysentry.alerts.config import GlobalSettings
from paysentry.alerts.dispatcher import AlertDispatcher
from paysentry.alerts.loader import load_routes, parse_routes
from paysentry.alerts.model import build_alert
from paysentry.alerts.notification import Notification
from paysentry.alerts.redis_store import RedisStore
from paysentry.alerts.routes_yaml import ConfigError
from paysentry.alerts.templates import MAX_LINE, render_email, render_sms, sms_segments
from tests.bounded import finishes
from tests.harness.alert_fixtures import decision

REPO = Path(__file__).resolve().parents[2]
ROUTES = REPO / "config" / "routes.yaml"
PREFIX = "hostile-test:alerts:"
SECRET = "hunter2-do-not-print"


def errors(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        finishes(lambda: parse_routes(textwrap.dedent(text), "routes.yaml", environ=environ or {}))
    return [str(issue) for issue in caught.value.issues]


def routes_with(receiver_email: str, extra: str = "") -> str:
    return f"""\
route:
  receiver: a
receivers:
  - name: a
    email: {{to: ["{receiver_email}"]}}
{extra}"""


# -- item 3: ${NAME} ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "PAYSENTRY_SMTP_PASSWORD",
            "${PAYSENTRY_SMTP_PASSWORD}: only variables named PAYSENTRY_ROUTES_... can be used here",
        ),
        ("HOME", "${HOME}: only variables named PAYSENTRY_ROUTES_... can be used here"),
        (
            "PAYSENTRY_ROUTES_TWILIO_AUTH_TOKEN",
            "${PAYSENTRY_ROUTES_TWILIO_AUTH_TOKEN} looks like a secret (its name contains AUTH); "
            "secrets are never read into this file",
        ),
        (
            "PAYSENTRY_ROUTES_HASH_KEY",
            "${PAYSENTRY_ROUTES_HASH_KEY} looks like a secret (its name contains KEY); "
            "secrets are never read into this file",
        ),
    ],
)
def test_secrets_and_foreign_variables_are_never_substituted(name: str, message: str) -> None:
    env = {name: SECRET}
    found = errors(routes_with("${" + name + "}"), env)
    assert found == [f"routes.yaml:5:18: receivers[0].email.to[0]: {message}"]
    assert SECRET not in "\n".join(found)
    # A default does not make a refused name acceptable either.
    assert errors(routes_with("${" + name + ":-a@example.com}"), env) == found


def test_a_substituted_value_never_appears_in_an_error() -> None:
    env = {"PAYSENTRY_ROUTES_BAD_EMAIL": SECRET, "PAYSENTRY_ROUTES_WAIT": "1" + SECRET}
    text = routes_with("${PAYSENTRY_ROUTES_BAD_EMAIL}").replace(
        "  receiver: a\n", "  receiver: a\n  group_wait: ${PAYSENTRY_ROUTES_WAIT}\n"
    )
    found = errors(text, env)
    assert found == [
        "routes.yaml:3:15: route.group_wait: '${PAYSENTRY_ROUTES_WAIT}' is not a duration like '30s', '5m', '4h' "
        "or '1h30m'",
        "routes.yaml:6:18: receivers[0].email.to[0]: '${PAYSENTRY_ROUTES_BAD_EMAIL}' is not an email address",
    ]


def test_check_output_never_shows_a_substituted_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        routes_with("a@example.com").replace("  receiver: a\n", "  receiver: ${PAYSENTRY_ROUTES_MAIN}\n"), "utf-8"
    )
    monkeypatch.setenv("PAYSENTRY_ROUTES_MAIN", SECRET)
    monkeypatch.setenv("PAYSENTRY_SMTP_PASSWORD", SECRET)
    result = CliRunner().invoke(alerts_app, ["check", str(routes)])
    assert result.exit_code == 1
    assert SECRET not in result.output
    assert "no receiver named '${PAYSENTRY_ROUTES_MAIN}' (receivers: a)" in result.output


# -- item 4: alias bombs --------------------------------------------------------------------------------
def billion_laughs() -> str:
    lines, item = [], '"lol"'
    for name in "abcdefghi":
        lines.append(f"{name}: &{name} [{', '.join([item] * 9)}]")
        item = f"*{name}"
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_quickly_with_a_position(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("x-bomb:\n" + textwrap.indent(billion_laughs(), "  ") + routes_with("a@example.com"), "utf-8")
    with pytest.raises(ConfigError) as caught:
        finishes(lambda: load_routes(routes, environ={}))
    assert str(caught.value) == f"{routes}:5:26: aliases expand to more than 5000 nodes; write the values out instead"


def test_shared_anchors_still_work() -> None:
    text = routes_with("a@example.com").replace("  receiver: a\n", "  receiver: a\n  group_by: &labels [vendor]\n")
    text += "inhibit_rules:\n  - source_matchers: [severity=critical]\n    target_matchers: [severity=low]\n"
    text += "    equal: *labels\n"
    config = parse_routes(text, environ={})
    assert config.inhibit_rules[0].equal == ["vendor"]


# -- item 12: durations and deep route trees ------------------------------------------------------------
def nested_routes(depth: int) -> str:
    text, indent = "route:\n  receiver: a\n", "  "
    for _ in range(depth):
        text += f"{indent}routes:\n{indent}  - receiver: a\n"
        indent += "    "
    return text + "receivers:\n  - name: a\n    email: {to: [a@example.com]}\n"


def test_deep_route_trees_are_refused_with_a_position() -> None:
    parse_routes(nested_routes(32), environ={})
    assert errors(nested_routes(33)) == ["routes.yaml:67:131: routes are nested more than 32 levels deep"]
    assert errors(nested_routes(300)) == ["routes.yaml:102:201: nested more than 100 levels deep"]


def test_huge_durations_are_refused_in_the_file_and_on_the_command_line() -> None:
    text = routes_with("a@example.com").replace("  receiver: a\n", "  receiver: a\n  repeat_interval: 999999999y\n")
    assert errors(text) == ["routes.yaml:3:20: route.repeat_interval: '999999999y' is longer than 10 years"]
    result = CliRunner().invoke(alerts_app, ["silence", "add", "vendor=V-1", "-c", "x", "-d", "999999999y"])
    assert result.exit_code == 2
    assert result.output.strip() == "'999999999y' is longer than 10 years"


# -- item 9: rendered alert text is bounded -------------------------------------------------------------
def test_rendered_alert_text_is_bounded() -> None:
    huge = "x" * 200_000
    d = decision("P-1", reason=huge, vendor="V-" + "9" * 5000)
    alert = build_alert(d)
    assert alert is not None
    alerts = [alert.model_copy(update={"alert_id": f"a-{i}"}) for i in range(500)]
    note = Notification(
        id="n-1", kind="digest", receiver="oncall", alerts=alerts, created_at=datetime.now(UTC),
        new_alert_ids=[a.alert_id for a in alerts],
    )  # fmt: skip
    settings = GlobalSettings()
    email = finishes(lambda: render_email(note, None, settings))
    assert len(email.subject) <= MAX_LINE
    assert len(email.text) < 500_000 and len(email.html) < 1_000_000  # unbounded, it was over 100 MB
    assert "... and 450 more alert(s)" in email.text
    sms = finishes(lambda: render_sms(note, None, settings))
    assert sms_segments(sms.body) <= 3


# -- item 17: silences and acks are audited -------------------------------------------------------------
@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, redis_clean_url: str, tmp_path: Path) -> Callable[..., Any]:
    env = {
        "PAYSENTRY_REDIS_URL": redis_clean_url,
        "PAYSENTRY_ALERTS_REDIS_PREFIX": PREFIX,
        "PAYSENTRY_ALERTS_ROUTES_FILE": str(ROUTES),
        "PAYSENTRY_ALERTS_AUDIT_LOG": str(tmp_path / "audit" / "alerts-audit.jsonl"),
        "USER": "tester",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    return lambda *args: runner.invoke(alerts_app, list(args), catch_exceptions=False)


def test_silences_and_acks_are_appended_to_the_audit_log(
    cli: Callable[..., Any], redis_clean_url: str, tmp_path: Path
) -> None:
    audit = tmp_path / "audit" / "alerts-audit.jsonl"
    added = cli("silence", "add", "vendor=V-1", "--duration", "2h", "--comment", "vendor called", "--author", "ann")
    assert added.exit_code == 0
    silence_id = added.stdout.strip()
    first = audit.read_bytes()
    [record] = [json.loads(line) for line in first.splitlines()]
    assert record["action"] == "silence_add" and record["silence_id"] == silence_id and record["by"] == "ann"
    assert record["matchers"] == ['vendor="V-1"'] and record["comment"] == "vendor called"
    assert record["os_user"]  # the account that ran the command, whatever --author says
    assert datetime.fromisoformat(record["until"]) > datetime.fromisoformat(record["time"])

    async def submit() -> Any:
        store = RedisStore.from_url(redis_clean_url, PREFIX)
        try:
            dispatcher = AlertDispatcher(load_routes(ROUTES, environ={}), store, {})
            return await dispatcher.submit_decision(decision("P-9", vendor="V-9"), datetime.now(UTC))
        finally:
            await store.close()

    alert = asyncio.run(submit())
    assert cli("ack", alert.alert_id, "--by", "bob", "--comment", "called").exit_code == 0
    assert cli("silence", "expire", silence_id).exit_code == 0
    after = audit.read_bytes()
    assert after.startswith(first)  # earlier lines are never rewritten
    records = [json.loads(line) for line in after.splitlines()]
    assert [r["action"] for r in records] == ["silence_add", "ack", "silence_expire"]
    assert records[1]["alert_id"] == alert.alert_id and records[1]["by"] == "bob"
    assert records[2]["silence_id"] == silence_id and records[2]["by"] == "tester"


def test_damaged_or_outdated_silence_records_do_not_stop_the_dispatcher() -> None:
    from datetime import timedelta

    from paysentry.alerts.notification import Silence
    from paysentry.alerts.state import AlertState
    from paysentry.alerts.store import MemoryKVStore

    now = datetime.now(UTC)
    state = AlertState(MemoryKVStore())
    lookahead = Silence(
        id="old", matchers=['vendor=~"(?=V)V-1"'], starts_at=now, ends_at=now + timedelta(hours=1),
        created_by="ann", comment="written before patterns ran on RE2", created_at=now,
    )  # fmt: skip

    async def run() -> list[Silence]:
        await state.store.hset("silences", "old", lookahead.model_dump_json())
        await state.store.hset("silences", "broken", "{not json")
        return await state.silences(now)

    [silence] = asyncio.run(run())
    assert silence.id == "old" and silence.mutes({"vendor": "V-1"}, now) is False
