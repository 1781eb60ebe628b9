"""Nothing is dropped silently: unexpected channel errors are retried, dead letters reach an async sink,
and unknown receivers after a reload are dead-lettered rather than lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from paysentry.alerts.channels import RecordingChannel
from paysentry.alerts.dispatcher import AlertDispatcher
from paysentry.alerts.loader import parse_routes
from paysentry.alerts.store import MemoryKVStore
from tests.harness.alert_fixtures import BASE_ROUTES, decision

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


class FlakyChannel(RecordingChannel):
    def __init__(self, name: str, failures: int):
        super().__init__(name)
        self.failures = failures

    async def send(self, message, recipients, *, thread_id=None):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("socket exploded")
        return await super().send(message, recipients, thread_id=thread_id)


async def test_an_unexpected_channel_error_is_retried_not_lost(caplog):
    email = FlakyChannel("email", failures=1)
    config = parse_routes(BASE_ROUTES, environ={})
    dispatcher = AlertDispatcher(config, MemoryKVStore(), {"email": email, "sms": RecordingChannel("sms")})
    await dispatcher.submit_decision(decision("P-1"), T0)
    await dispatcher.tick(T0 + timedelta(seconds=30))
    assert email.sent == [] and "unexpected error sending" in caplog.text
    await dispatcher.tick(T0 + timedelta(seconds=60))
    assert len(email.sent) == 1
    assert dispatcher.metrics["retrying|email|retry"] == 1 and dispatcher.metrics["sent|email|sent"] == 1


async def test_dead_letters_reach_an_async_sink_and_the_store():
    received = []

    async def sink(entry):
        received.append(entry)

    config = parse_routes(BASE_ROUTES.replace("fallback_receiver: backup", "fallback_receiver: finance"), environ={})
    email = FlakyChannel("email", failures=100)
    dispatcher = AlertDispatcher(
        config, MemoryKVStore(), {"email": email, "sms": RecordingChannel("sms")}, dead_letter=sink
    )
    await dispatcher.submit_decision(decision("P-1"), T0)
    now = T0 + timedelta(seconds=30)
    for _ in range(5):
        await dispatcher.tick(now)
        now += timedelta(minutes=10)
    assert [e["receiver"] for e in received] == ["finance"], "no fallback to itself"
    assert received[0]["attempts"] == 4 and received[0]["alert_ids"]
    assert await dispatcher.state.dead_letters() == received


async def test_a_reload_that_drops_a_receiver_dead_letters_its_pending_work():
    config = parse_routes(BASE_ROUTES, environ={})
    store = MemoryKVStore()
    email = RecordingChannel("email")
    dispatcher = AlertDispatcher(config, store, {"email": email, "sms": RecordingChannel("sms")})
    await dispatcher.submit_decision(decision("P-1"), T0)
    dispatcher._routes = parse_routes(BASE_ROUTES.replace("name: finance", "name: accounts").replace(
        "receiver: finance", "receiver: accounts"), environ={})  # fmt: skip
    await dispatcher.tick(T0 + timedelta(seconds=30))
    [dead] = await dispatcher.state.dead_letters()
    assert dead["receiver"] == "finance" and dead["error"] == "unknown receiver"
    [(mail, to)] = email.sent
    assert to == ["backup@example.com"] and "receiver finance is no longer in the routes" in mail.text
