"""`paysentry alerts …` against a real Redis, SMTP server and Twilio endpoint."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paysentry.alerts.cli import alerts_app
from paysentry.alerts.dispatcher import AlertDispatcher
from paysentry.alerts.loader import load_routes
from paysentry.alerts.redis_store import RedisStore
from paysentry.alerts.store import MemoryKVStore
from tests.harness.alert_fixtures import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN, decision

REPO = Path(__file__).resolve().parents[2]
ROUTES = REPO / "config" / "routes.yaml"
PREFIX = "cli-test:alerts:"


@pytest.fixture
def cli(monkeypatch, redis_clean_url, smtp_server, twilio_server):
    env = {
        "PAYSENTRY_REDIS_URL": redis_clean_url,
        "PAYSENTRY_ALERTS_REDIS_PREFIX": PREFIX,
        "PAYSENTRY_ALERTS_ROUTES_FILE": str(ROUTES),
        "PAYSENTRY_SMTP_HOST": smtp_server.host,
        "PAYSENTRY_SMTP_PORT": str(smtp_server.port),
        "PAYSENTRY_SMTP_FROM": "paysentry@example.com",
        "PAYSENTRY_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "PAYSENTRY_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "PAYSENTRY_TWILIO_FROM_NUMBER": TWILIO_FROM,
        "PAYSENTRY_TWILIO_API_BASE_URL": twilio_server.base_url,
        "USER": "tester",
        "COLUMNS": "200",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(alerts_app, list(args), catch_exceptions=False)

    return run


def with_dispatcher(redis_url: str, action):
    async def go():
        store = RedisStore.from_url(redis_url, PREFIX)
        try:
            return await action(AlertDispatcher(load_routes(ROUTES, environ={}), store, {}))
        finally:
            await store.close()

    return asyncio.run(go())


def test_route_test(cli):
    result = cli("route-test", "severity=critical", "vendor=V-1", "channel=swift")
    assert result.exit_code == 0
    assert result.stdout.strip().splitlines()[-1] == "payments-oncall,treasury"
    assert "sms, email" in result.stdout
    ok = cli("route-test", "severity=medium", "--verify-receivers", "ap-team")
    assert ok.exit_code == 0 and "digest" in ok.stdout
    wrong = cli("route-test", "severity=medium", "--verify-receivers", "treasury")
    assert wrong.exit_code == 1 and "expected receivers ['treasury'], got ['ap-team']" in wrong.stderr
    assert cli("route-test", "severity~critical").exit_code == 2


def test_check(cli, tmp_path):
    assert cli("check", str(ROUTES)).exit_code == 0
    bad = tmp_path / "routes.yaml"
    bad.write_text("route:\n  receiver: ghost\n  group_wait: soon\nreceivers:\n  - {name: a, email: {to: [a@x.io]}}\n")
    result = cli("check", str(bad))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"{bad}:3:15: route.group_wait: 'soon' is not a duration like '30s', "
                                          "'5m', '4h' or '1h30m'"]  # fmt: skip


def test_silence_add_list_expire(cli, redis_clean_url):
    result = cli("silence", "add", "vendor=V-1", 'rule_id=~"amount_.*"', "--duration", "2h", "--comment", "migration")
    assert result.exit_code == 0, result.output
    silence_id = result.stdout.strip()
    listed = cli("silence", "list")
    assert silence_id in listed.stdout and "tester" in listed.stdout and "migration" in listed.stdout

    async def check(dispatcher):
        now = datetime.now(UTC)
        [silence] = await dispatcher.state.silences(now)
        assert silence.created_by == "tester" and silence.matchers == ['vendor="V-1"', 'rule_id=~"amount_.*"']
        assert timedelta(hours=1, minutes=59) < silence.ends_at - now <= timedelta(hours=2)
        alert = await dispatcher.submit_decision(decision("P-1", vendor="V-1"), now)
        return await dispatcher.suppressor.reasons([alert], now)

    reasons = with_dispatcher(redis_clean_url, check)
    assert list(reasons.values()) == [f"silenced: by {silence_id} (tester)"]

    assert cli("silence", "expire", silence_id).exit_code == 0
    assert silence_id not in cli("silence", "list").stdout
    assert silence_id in cli("silence", "list", "--all").stdout
    assert cli("silence", "expire", "nope").exit_code == 1
    assert cli("silence", "add", "vendor=V-1", "--comment", " ").exit_code == 2
    assert cli("silence", "add", "vendor=V-1", "--comment", "x", "--duration", "soon").exit_code == 2


def test_ack_and_list(cli, redis_clean_url):
    alert = with_dispatcher(
        redis_clean_url, lambda d: d.submit_decision(decision("P-9", vendor="V-9"), datetime.now(UTC))
    )
    unknown = cli("ack", "feedfeedfeed")
    assert unknown.exit_code == 1 and "unknown alert or notification id: feedfeedfeed" in unknown.stderr
    result = cli("ack", alert.alert_id, "--comment", "called the vendor")
    assert result.exit_code == 0 and f"acked {alert.alert_id}" in result.stdout
    listed = cli("list")
    assert alert.alert_id in listed.stdout and "P-9" in listed.stdout and "tester" in listed.stdout


def test_send_test(cli, smtp_server, twilio_server):
    result = cli("send-test", "payments-oncall")
    assert result.exit_code == 0, result.output
    assert "sent sms to +15555550100" in result.stdout and "sent email to payments-oncall@example.com" in result.stdout
    assert len(twilio_server.messages) == 1 and len(smtp_server.messages) == 1
    assert cli("send-test", "payments-oncall", "--channel", "email").exit_code == 0
    assert len(smtp_server.messages) == 2 and len(twilio_server.messages) == 1
    assert cli("send-test", "nobody").exit_code == 2

    smtp_server.down()
    failed = cli("send-test", "ap-team")
    assert failed.exit_code == 1 and "FAILED email" in failed.stdout


def test_cli_without_redis(cli, monkeypatch):
    monkeypatch.setenv("PAYSENTRY_REDIS_URL", "redis://127.0.0.1:1/0")
    result = cli("silence", "list")
    assert result.exit_code == 2 and "cannot reach Redis" in result.stderr


def test_memory_store_behaves_like_redis_for_a_dispatcher():
    """The embedded run's store: same interface, same outcome for a simple flow."""

    async def go():
        from paysentry.alerts.channels import RecordingChannel

        email = RecordingChannel("email")
        d = AlertDispatcher(
            load_routes(ROUTES, environ={}), MemoryKVStore(), {"email": email, "sms": RecordingChannel("sms")}
        )
        t0 = datetime(2024, 3, 4, 12, tzinfo=UTC)
        await d.submit_decision(decision("P-1", severity="high"), t0)
        await d.submit_decision(decision("P-1", severity="high"), t0)
        await d.tick(t0 + timedelta(seconds=30))
        return email.sent

    [(message, recipients)] = asyncio.run(go())
    assert recipients == ["ap-team@example.com"] and "P-1" in message.text
