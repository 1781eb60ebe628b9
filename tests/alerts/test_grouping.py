"""Grouping, repeats, dedup and the severity policy, on a real Redis with the real channels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.harness.alert_fixtures import decision

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)  # a Monday, noon UTC


async def test_ten_alerts_about_one_payment_run_are_one_notification(alert_env):
    env = await alert_env()
    for i in range(10):
        await env.submit(decision(f"P-{i}", vendor="V-7", severity="high"), T0 + timedelta(seconds=i))
    await env.submit(decision("P-other", vendor="V-8", severity="high"), T0)

    await env.tick(T0 + timedelta(seconds=29))
    assert env.emails() == [], "nothing goes out before group_wait"

    await env.tick(T0 + timedelta(seconds=30))
    mails = env.emails("finance@example.com")
    assert len(mails) == 2
    run = next(m for m in mails if "V-7" in m.subject)
    assert "(+9 more)" in run.subject
    text = run.part("text/plain")
    assert all(f"P-{i}" in text for i in range(10))
    assert env.sms() == [], "high alerts do not page"


async def test_new_alert_waits_for_group_interval_and_repeat_follows_repeat_interval(alert_env):
    env = await alert_env()
    await env.submit(decision("P-1", vendor="V-1"), T0)
    await env.tick(T0 + timedelta(seconds=30))
    assert len(env.emails()) == 1

    await env.submit(decision("P-2", vendor="V-1"), T0 + timedelta(minutes=1))
    await env.tick(T0 + timedelta(minutes=2))
    assert len(env.emails()) == 1, "a new alert in a notified group waits for group_interval"
    await env.tick(T0 + timedelta(minutes=5, seconds=30))
    mails = env.emails()
    assert len(mails) == 2
    assert "P-2" in mails[1].part("text/plain") and "(new)" in mails[1].part("text/plain")

    # Nothing new: no mail at each group_interval, until repeat_interval (4h) after the last one.
    for minutes in range(10, 240, 5):
        await env.tick(T0 + timedelta(minutes=minutes, seconds=30))
    assert len(env.emails()) == 2
    await env.tick(T0 + timedelta(hours=4, minutes=6))
    mails = env.emails()
    assert len(mails) == 3
    assert "REPEAT" in mails[2].subject


async def test_ack_stops_repeats(alert_env):
    env = await alert_env()
    first = await env.submit(decision("P-1", vendor="V-1"), T0)
    second = await env.submit(decision("P-2", vendor="V-1"), T0)
    await env.tick(T0 + timedelta(seconds=30))
    assert len(env.emails()) == 1

    await env.dispatcher.ack(first.alert_id, "alice", "looking", T0 + timedelta(minutes=10))
    await env.tick(T0 + timedelta(hours=4, minutes=1))
    repeat = env.emails()[-1]
    assert "REPEAT" in repeat.subject
    assert "P-2" in repeat.part("text/plain") and "P-1" not in repeat.part("text/plain")

    await env.dispatcher.ack(second.alert_id, "alice", "", T0 + timedelta(hours=5))
    for hours in range(5, 20):
        await env.tick(T0 + timedelta(hours=hours, minutes=30))
    assert len(env.emails()) == 2, "no repeats once every alert of the group is acked"


async def test_ack_by_notification_id_acks_the_whole_group(alert_env):
    env = await alert_env()
    for i in range(3):
        await env.submit(decision(f"P-{i}", vendor="V-1", severity="critical"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    [page] = env.sms()
    notification_id = page.body.rsplit(" ack ", 1)[1]
    assert notification_id.startswith("n-")
    acked = await env.dispatcher.ack(notification_id, "bob", "", T0 + timedelta(minutes=1))
    assert len(acked) == 3
    await env.tick(T0 + timedelta(hours=2))
    assert len(env.sms()) == 1


async def test_redelivered_decision_is_one_alert(alert_env):
    env = await alert_env()
    d = decision("P-1", vendor="V-1")
    assert await env.dispatcher.submit(_alert(d), T0) is True
    assert await env.dispatcher.submit(_alert(d), T0 + timedelta(seconds=5)) is False
    # The same payment and rules on a later event is the same alert too.
    later = decision("P-1", vendor="V-1", event_id="evt-later")
    assert await env.dispatcher.submit(_alert(later), T0 + timedelta(seconds=6)) is False
    await env.tick(T0 + timedelta(minutes=1))
    mails = env.emails()
    assert len(mails) == 1 and "(+" not in mails[0].subject


async def test_severity_policy_critical_pages_high_mails_lower_goes_to_digest(alert_env):
    env = await alert_env()
    await env.submit(decision("P-c", vendor="V-1", severity="critical"), T0)
    await env.submit(decision("P-h", vendor="V-2", severity="high"), T0)
    await env.submit(decision("P-m", vendor="V-3", severity="medium"), T0)
    await env.submit(decision("P-m2", vendor="V-4", severity="medium"), T0)
    await env.tick(T0 + timedelta(seconds=30))
    assert [s.to for s in env.sms()] == ["+15555550100"]
    assert {m.rcpt_tos[0] for m in env.emails()} == {"oncall@example.com", "finance@example.com"}
    assert not any("P-m" in m.part("text/plain") for m in env.emails())

    await env.tick(T0 + timedelta(hours=4, seconds=30))
    digests = [m for m in env.emails() if "DIGEST" in m.subject]
    assert len(digests) == 1
    text = digests[0].part("text/plain")
    assert "P-m " in text or "P-m\n" in text or "P-m (" in text
    assert "P-m2" in text


async def test_alerts_below_the_threshold_are_not_alerts(alert_env):
    env = await alert_env()
    allowed = decision("P-ok", severity="low", action="allow")
    assert await env.submit(allowed, T0) is None
    await env.tick(T0 + timedelta(hours=5))
    assert env.emails() == []


def _alert(d):
    from paysentry.alerts.model import build_alert

    alert = build_alert(d)
    assert alert is not None
    return alert


async def test_an_alert_that_fires_again_after_its_ttl_is_notified_again(alert_env):
    env = await alert_env()
    d = decision("P-1", vendor="V-1")
    alert = await env.submit(d, T0)
    await env.tick(T0 + timedelta(seconds=30))
    await env.dispatcher.ack(alert.alert_id, "alice", "", T0 + timedelta(minutes=1))
    assert await env.dispatcher.submit(_alert(d), T0 + timedelta(hours=12)) is False
    assert await env.dispatcher.submit(_alert(d), T0 + timedelta(hours=25)) is True, "alert_ttl (24h) is over"
    await env.tick(T0 + timedelta(hours=25))
    mails = env.emails()
    assert len(mails) == 2 and "(new)" in mails[1].part("text/plain"), "the old ack does not carry over"
