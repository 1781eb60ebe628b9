"""Quiet hours (hold, then a morning digest) and rate limits (excess summarised, never dropped)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.harness.alert_fixtures import decision

QUIET = """
route:
  receiver: oncall
  group_by: [vendor]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 24h
receivers:
  - name: oncall
    email: {to: [oncall@example.com]}
    sms: {to: ["+15555550100"]}
    min_severity: {sms: high, email: high}
    quiet_hours:
      start: "22:00"
      end: "07:00"
      timezone: Europe/Berlin
      min_severity: critical
      channels: [sms]
"""
NIGHT = datetime(2024, 1, 15, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
MORNING = datetime(2024, 1, 16, 6, 0, tzinfo=UTC)  # 07:00 in Berlin


async def test_no_sms_below_critical_at_night_then_one_morning_digest(alert_env):
    env = await alert_env(QUIET)
    await env.submit(decision("P-1", vendor="V-1", severity="high"), NIGHT)
    await env.submit(decision("P-2", vendor="V-2", severity="high"), NIGHT + timedelta(hours=2))
    await env.tick(NIGHT)
    await env.tick(NIGHT + timedelta(hours=2))
    assert env.sms() == [], "held during quiet hours"
    assert len(env.emails()) == 2, "email is not quiet"

    await env.submit(decision("P-3", vendor="V-3", severity="critical"), NIGHT + timedelta(hours=3))
    await env.tick(NIGHT + timedelta(hours=3))
    assert len(env.sms()) == 1 and "P-3" in env.sms()[0].body, "critical pages at night"

    await env.tick(MORNING - timedelta(seconds=1))
    assert len(env.sms()) == 1
    await env.tick(MORNING)
    sms = env.sms()
    assert len(sms) == 2
    assert "HELD OVERNIGHT" in sms[1].body and "[2 high]" in sms[1].body
    deferred = [o for o in await env.state.outcomes() if o.status == "deferred"]
    assert len(deferred) == 2 and all(o.reason.startswith("quiet_hours: held until 2024-01-16T06:00") for o in deferred)


async def test_acked_alerts_drop_out_of_the_morning_digest(alert_env):
    env = await alert_env(QUIET)
    first = await env.submit(decision("P-1", vendor="V-1", severity="high"), NIGHT)
    await env.submit(decision("P-2", vendor="V-2", severity="high"), NIGHT)
    await env.tick(NIGHT)
    await env.dispatcher.ack(first.alert_id, "night-shift", "seen by email", NIGHT + timedelta(hours=1))
    await env.tick(MORNING)
    [digest] = env.sms()
    assert "P-2" in digest.body and "[1 high]" in digest.body


async def test_all_acked_means_no_digest(alert_env):
    env = await alert_env(QUIET)
    alert = await env.submit(decision("P-1", vendor="V-1", severity="high"), NIGHT)
    await env.tick(NIGHT)
    await env.dispatcher.ack(alert.alert_id, "night-shift", "", NIGHT + timedelta(hours=1))
    await env.tick(MORNING)
    assert env.sms() == []


RATE = """
route:
  receiver: finance
  group_by: [vendor]
  group_wait: 0s
receivers:
  - name: finance
    email: {to: [finance@example.com]}
    rate_limit: {max: 2, per: 1h}
"""
T0 = datetime(2024, 3, 4, 12, 20, tzinfo=UTC)


async def test_rate_limit_summarises_the_excess(alert_env):
    env = await alert_env(RATE)
    for i in range(5):
        await env.submit(decision(f"P-{i}", vendor=f"V-{i}", severity="high"), T0)
    await env.tick(T0)
    mails = env.emails()
    assert len(mails) == 2
    limited = [o for o in await env.state.outcomes() if o.reason.startswith("rate_limited")]
    assert len(limited) == 3

    await env.tick(datetime(2024, 3, 4, 12, 59, 59, tzinfo=UTC))
    assert len(env.emails()) == 2
    await env.tick(datetime(2024, 3, 4, 13, 0, tzinfo=UTC))
    mails = env.emails()
    assert len(mails) == 3
    summary = mails[2]
    assert "RATE-LIMITED" in summary.subject
    text = summary.part("text/plain")
    sent_before = {p for m in mails[:2] for p in (f"P-{i}" for i in range(5)) if p in m.part("text/plain")}
    held = {f"P-{i}" for i in range(5)} - sent_before
    assert len(held) == 3 and all(p in text for p in held), "every held alert is in the summary"
    assert "The rate limit held back 3 notification(s)" in text


async def test_rate_counters_are_shared_by_workers(alert_env):
    env = await alert_env(RATE)
    other = env.worker()
    for i in range(2):
        await env.submit(decision(f"P-{i}", vendor=f"V-{i}", severity="high"), T0)
    await env.tick(T0)
    for i in range(2, 4):
        await other.submit_decision(decision(f"P-{i}", vendor=f"V-{i}", severity="high"), T0 + timedelta(minutes=1))
    await other.tick(T0 + timedelta(minutes=1))
    assert len(env.emails()) == 2, "the second worker sees the first one's count"
    await other.tick(datetime(2024, 3, 4, 13, 0, tzinfo=UTC))
    assert len(env.emails()) == 3
