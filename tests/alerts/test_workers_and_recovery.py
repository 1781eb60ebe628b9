"""Several workers on one Redis send each notification once; servers going down and coming back lose
nothing and duplicate nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from tests.harness.alert_fixtures import decision

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


async def test_two_workers_do_not_double_send(alert_env):
    env = await alert_env()
    a, b = env.dispatcher, env.worker()
    decisions = [decision(f"P-{i}", vendor=f"V-{i % 4}", severity="critical" if i % 4 == 0 else "high")
                 for i in range(24)]  # fmt: skip
    # Both workers see every decision (a redelivery after a rebalance) at about the same time.
    await asyncio.gather(*(w.submit_decision(d, T0) for d in decisions for w in (a, b)))
    for seconds in (10, 30, 31, 40, 330, 3600, 3700, 3900, 3901):
        now = T0 + timedelta(seconds=seconds)
        reports = await asyncio.gather(a.tick(now), b.tick(now))
        assert sum(r.groups for r in reports) <= 4, "each due group is flushed by one worker"

    critical = [m for m in env.emails("oncall@example.com") if "REPEAT" not in m.subject]
    finance = env.emails("finance@example.com")
    assert len(critical) == 1, "V-0's critical group: one page by email"
    assert len([s for s in env.sms("+15555550100") if "REPEAT" not in s.body]) == 1
    assert len(finance) == 3, "V-1, V-2, V-3: one email each"
    payments = Counter(p for m in finance for p in (f"P-{i}" for i in range(24)) if f"{p} " in m.part("text/plain"))
    assert all(n == 1 for n in payments.values()) and len(payments) == 18
    # The repeat after one hour is sent once too.
    assert len([m for m in env.emails("oncall@example.com") if "REPEAT" in m.subject]) == 1


async def test_a_claimed_group_is_invisible_to_the_other_worker(alert_env):
    env = await alert_env()
    a, b = env.dispatcher, env.worker()
    await a.submit_decision(decision("P-1", vendor="V-1"), T0)
    claimed_a = await a.state.claim("due:groups", T0 + timedelta(seconds=30), lease=60)
    claimed_b = await b.state.claim("due:groups", T0 + timedelta(seconds=30), lease=60)
    assert len(claimed_a) == 1 and claimed_b == []
    # If the claimer dies, the lease runs out and the other worker takes over.
    await b.tick(T0 + timedelta(seconds=91))
    assert len(env.emails()) == 1


async def test_servers_down_then_back_every_alert_delivered_once(alert_env, smtp_server, twilio_server):
    env = await alert_env()
    smtp_server.down()
    twilio_server.down()
    for i in range(6):
        severity = "critical" if i < 3 else "high"
        await env.submit(decision(f"P-{i}", vendor=f"V-{i}", severity=severity), T0)
    now = T0 + timedelta(seconds=30)
    await env.tick(now)
    await env.tick(now + timedelta(seconds=30))
    assert env.emails() == [] and env.sms() == []
    retrying = [o for o in await env.state.outcomes() if o.status == "retrying"]
    assert {o.channel for o in retrying} == {"email", "sms"}

    smtp_server.up()
    twilio_server.up()
    for minutes in range(2, 40):
        await env.tick(T0 + timedelta(minutes=minutes))

    oncall_sms = env.sms("+15555550100")
    assert sorted(s.body.split(" pay ")[1].split(".")[0] for s in oncall_sms) == ["P-0", "P-1", "P-2"]
    first_mails = [m for m in env.emails() if "ESCALATED" not in m.subject]
    delivered = Counter(m.subject.split(" - vendor ")[1] for m in first_mails)
    assert delivered == Counter({f"V-{i}": 1 for i in range(6)}), "every alert once, none twice"
    assert env.dead_letters == []
    assert await env.state.pending_deliveries() == []


async def test_redis_outbox_survives_a_worker_restart(alert_env, twilio_server):
    """A delivery that failed on one worker is retried by another (state is in Redis, not in memory)."""
    env = await alert_env()
    twilio_server.fail_next(1)
    await env.submit(decision("P-1", vendor="V-1", severity="critical"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    assert env.sms() == []
    restarted = env.worker()
    await restarted.tick(T0 + timedelta(seconds=40))
    assert len(env.sms()) == 1
