"""Records read back from Redis may be damaged or forged (an older version's shape, a key edited by hand,
garbage). Each one is skipped with a warning naming its key, never its content; the tick goes on and
delivers the good alerts, and the CLI answers without a traceback."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from paysentry.alerts.cli import alerts_app
from paysentry.alerts.dispatcher import AlertDispatcher
from paysentry.alerts.loader import parse_routes
from paysentry.alerts.model import build_alert
from paysentry.alerts.notification import Notification
from paysentry.alerts.redis_store import RedisStore
from tests.harness.alert_fixtures import BASE_ROUTES, CLEAR_IBAN, decision

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)
PREFIX = "test:alerts:"
# Garbage that carries payment data, to check that it never reaches the log.
NOT_JSON = f"{{iban: {CLEAR_IBAN}"
OLD_SHAPE = f'{{"alert": {{"id": "a-1", "iban": "{CLEAR_IBAN}"}}, "received": "yesterday"}}'


def raw_client(env):
    """The Redis client under the worker's store, to write keys behind its back."""
    return env.dispatcher.store.client


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def assert_warned_about(caplog, key: str) -> None:
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(key in w for w in warnings), warnings
    assert CLEAR_IBAN not in caplog.text


def naive_copy(stored_json: str) -> str:
    """The same record with its time zone dropped, as an older version or a hand edit might leave it."""
    return re.sub(r'("received_at":\s*"[^"]+?)(Z|\+00:00)"', r'\1"', stored_json)


@pytest.mark.parametrize("damage", ["not_json", "old_shape", "naive_time"])
async def test_a_damaged_alert_does_not_hold_up_the_rest_of_its_group(alert_env, caplog, damage):
    env = await alert_env()
    bad = await env.submit(decision("P-1", vendor="V-7"), T0)
    await env.submit(decision("P-2", vendor="V-7"), T0)
    key = f"{PREFIX}alert:{bad.alert_id}"
    damaged = {"not_json": NOT_JSON, "old_shape": OLD_SHAPE, "naive_time": naive_copy(await raw_client(env).get(key))}
    await raw_client(env).set(key, damaged[damage])

    await env.tick(T0 + timedelta(seconds=30))

    [mail] = env.emails("finance@example.com")
    body = mail.part("text/plain")
    assert "P-2" in body and "P-1" not in body
    assert errors(caplog) == []
    assert_warned_about(caplog, f"alert:{bad.alert_id}")


async def test_a_damaged_outbox_entry_does_not_stop_the_tick(alert_env, caplog):
    env = await alert_env()
    await env.submit(decision("P-1", vendor="V-1"), T0)
    await raw_client(env).set(f"{PREFIX}outbox:d-forged", OLD_SHAPE)
    await raw_client(env).zadd(f"{PREFIX}due:outbox", {"d-forged": 0})
    assert await env.state.pending_deliveries() == []

    await env.tick(T0 + timedelta(seconds=30))

    assert len(env.emails("finance@example.com")) == 1
    assert await raw_client(env).zscore(f"{PREFIX}due:outbox", "d-forged") is None
    assert_warned_about(caplog, "outbox:d-forged")


async def test_a_damaged_group_is_dropped_and_starts_afresh_with_the_next_alert(alert_env, caplog):
    env = await alert_env()
    await env.submit(decision("P-1", vendor="V-1"), T0)
    [meta_key] = await raw_client(env).keys(f"{PREFIX}group:*:meta")
    await raw_client(env).set(meta_key, NOT_JSON)

    await env.tick(T0 + timedelta(seconds=30))
    assert env.emails() == [] and errors(caplog) == []
    assert_warned_about(caplog, meta_key.removeprefix(PREFIX))

    # Its members are kept: the next alert of the group brings them out with it.
    await env.submit(decision("P-2", vendor="V-1"), T0 + timedelta(seconds=60))
    await env.tick(T0 + timedelta(seconds=90))
    [mail] = env.emails("finance@example.com")
    assert "P-1" in mail.part("text/plain") and "P-2" in mail.part("text/plain")


@pytest.mark.parametrize(
    ("due_set", "member"),
    [
        ("due:queues", "garbage"),
        ("due:queues", '{"kind": "digest"}'),
        ("due:escalations", "garbage"),
        ("due:escalations", '["a", "b", "c"]'),
    ],
)
async def test_a_damaged_schedule_entry_is_dropped(alert_env, caplog, due_set, member):
    env = await alert_env()
    await env.submit(decision("P-1", vendor="V-1"), T0)
    await raw_client(env).zadd(f"{PREFIX}{due_set}", {member: 0})

    await env.tick(T0 + timedelta(seconds=30))

    assert len(env.emails("finance@example.com")) == 1
    assert await raw_client(env).zscore(f"{PREFIX}{due_set}", member) is None, "not back after every lease"
    assert errors(caplog) == []
    assert_warned_about(caplog, f"{due_set} member")


async def test_a_queue_keeps_its_readable_notifications(alert_env, caplog):
    env = await alert_env()
    alert = build_alert(decision("P-1"))
    assert alert is not None
    good = Notification(id="n-1", kind="firing", receiver="finance", alerts=[alert], created_at=T0)
    await env.state.enqueue("digest", "finance", "email", good, 0)
    member = env.state.queue_member("digest", "finance", "email")
    await raw_client(env).rpush(f"{PREFIX}queue:{member}", NOT_JSON)

    assert await env.state.take_queue(member) == [good]
    assert_warned_about(caplog, f"queue:{member}[1]")


async def _damage_and_read(env, read: str):
    """Write one damaged record the way `read` finds it, and read it back."""
    state, client = env.state, raw_client(env)
    if read == "get_alert":
        await client.set(f"{PREFIX}alert:a-1", OLD_SHAPE)
        return await state.get_alert("a-1"), None, "alert:a-1"
    if read == "recent_alerts":
        await client.set(f"{PREFIX}alert:a-1", NOT_JSON)
        await client.zadd(f"{PREFIX}alerts", {"a-1": T0.timestamp()})
        return await state.recent_alerts(), [], "alert:a-1"
    if read == "acks":
        await client.set(f"{PREFIX}ack:a-1", '{"alert_id": "a-1", "by": "x", "at": "2024-03-04T12:00:00"}')
        return await state.acks(["a-1"]), {}, "ack:a-1"
    if read == "resolve_ack_target":
        await client.set(f"{PREFIX}notif:n-1", NOT_JSON)
        return await state.resolve_ack_target("n-1"), [], "notif:n-1"
    if read == "expire_silence":
        await client.hset(f"{PREFIX}silences", "s-1", OLD_SHAPE)
        return await state.expire_silence("s-1", T0), None, "silences[s-1]"
    if read == "inhibitor_active":
        await client.set(f"{PREFIX}inh:mark", "soon")
        return await state.inhibitor_active("mark", T0), False, "inh:mark"
    if read == "outcomes":
        await client.lpush(f"{PREFIX}outcomes", OLD_SHAPE)
        return await state.outcomes(), [], "outcomes[0]"
    if read == "metrics":
        await client.hset(f"{PREFIX}metrics", "sent|email|sent", "many")
        return await state.metrics(), {}, "metrics[sent|email|sent]"
    if read == "dead_letters":
        await client.rpush(f"{PREFIX}deadletter", NOT_JSON)
        await client.rpush(f"{PREFIX}deadletter", '["not", "an", "entry"]')
        return await state.dead_letters(), [], "deadletter[1]"
    raise AssertionError(read)


@pytest.mark.parametrize(
    "read",
    [
        "get_alert", "recent_alerts", "acks", "resolve_ack_target", "expire_silence", "inhibitor_active",
        "outcomes", "metrics", "dead_letters",
    ],
)  # fmt: skip
async def test_a_read_skips_a_damaged_record_as_if_absent(alert_env, caplog, read):
    env = await alert_env()
    got, absent, key = await _damage_and_read(env, read)
    assert got == absent
    assert_warned_about(caplog, key)


@pytest.fixture
def cli(monkeypatch, redis_clean_url, tmp_path):
    monkeypatch.setenv("PAYSENTRY_REDIS_URL", redis_clean_url)
    monkeypatch.setenv("PAYSENTRY_ALERTS_REDIS_PREFIX", PREFIX)
    monkeypatch.setenv("PAYSENTRY_ALERTS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("USER", "tester")
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    return lambda *args: runner.invoke(alerts_app, list(args), catch_exceptions=False)


def test_the_cli_answers_despite_damaged_records(cli, redis_clean_url, caplog):
    async def damage() -> str:
        store = RedisStore.from_url(redis_clean_url, PREFIX)
        try:
            dispatcher = AlertDispatcher(parse_routes(BASE_ROUTES, environ={}), store, {})
            good = await dispatcher.submit_decision(decision("P-1", vendor="V-1"), T0)
            assert good is not None
            client = store.client
            await client.set(f"{PREFIX}alert:a-bad", OLD_SHAPE)
            await client.zadd(f"{PREFIX}alerts", {"a-bad": T0.timestamp() + 1})
            await client.set(f"{PREFIX}ack:{good.alert_id}", NOT_JSON)
            await client.set(f"{PREFIX}notif:n-bad", NOT_JSON)
            await client.hset(f"{PREFIX}silences", "s-bad", NOT_JSON)
            return good.alert_id
        finally:
            await store.close()

    good_id = asyncio.run(damage())
    listed = cli("list")
    assert listed.exit_code == 0 and good_id in listed.stdout and "a-bad" not in listed.stdout
    acked = cli("ack", "n-bad")
    assert acked.exit_code == 1 and "unknown alert or notification id: n-bad" in acked.stderr
    assert cli("silence", "list").exit_code == 0
    expired = cli("silence", "expire", "s-bad")
    assert expired.exit_code == 1 and "no silence s-bad" in expired.stderr
    assert CLEAR_IBAN not in caplog.text + listed.output + acked.output + expired.output
