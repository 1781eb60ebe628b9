"""Inhibition, silences (and their expiry), escalation of unacknowledged alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.harness.alert_fixtures import decision

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


async def test_a_critical_alert_mutes_lower_ones_about_the_same_vendor(alert_env):
    env = await alert_env()
    await env.submit(decision("P-crit", vendor="V-1", severity="critical", rule_id="new_bank_account"), T0)
    await env.submit(decision("P-high", vendor="V-1", severity="high"), T0)
    await env.submit(decision("P-elsewhere", vendor="V-2", severity="high"), T0)
    await env.tick(T0 + timedelta(seconds=30))

    finance = env.emails("finance@example.com")
    assert len(finance) == 1 and "V-2" in finance[0].subject, "V-1's high alert is inhibited, V-2's is not"
    assert len(env.emails("oncall@example.com")) == 1 and len(env.sms()) == 1
    outcomes = await env.state.outcomes()
    inhibited = [o for o in outcomes if o.status == "suppressed" and o.reason.startswith("inhibited")]
    assert len(inhibited) == 1 and inhibited[0].receiver == "finance"
    assert env.dispatcher.metrics["suppressed|-|inhibited"] == 1

    # The inhibition ends with the critical alert (alert_ttl): a new high alert then goes out.
    await env.submit(decision("P-later", vendor="V-1", severity="high"), T0 + timedelta(hours=25))
    await env.tick(T0 + timedelta(hours=25, seconds=30))
    assert any("P-later" in m.part("text/plain") for m in env.emails("finance@example.com"))


async def test_silences_mute_matching_alerts_until_they_expire(alert_env):
    env = await alert_env()
    silence = await env.state.add_silence(
        ['vendor="V-1"', 'rule_id=~"amount_.*"'], T0, T0 + timedelta(hours=2), "alice", "vendor migration", T0
    )
    await env.submit(decision("P-1", vendor="V-1", rule_id="amount_spike"), T0)
    await env.submit(decision("P-2", vendor="V-1", rule_id="duplicate_invoice"), T0 + timedelta(seconds=1))
    await env.tick(T0 + timedelta(seconds=31))
    [mail] = env.emails()
    assert "P-2" in mail.part("text/plain") and "P-1" not in mail.part("text/plain")
    muted = [o for o in await env.state.outcomes() if o.status == "suppressed"]
    assert [o.reason for o in muted] == [f"silenced: by {silence.id} (alice)"]

    # Ticks during the silence neither send P-1 nor record the suppression again.
    for minutes in range(5, 120, 5):
        await env.tick(T0 + timedelta(minutes=minutes, seconds=31))
    assert len(env.emails()) == 1
    assert len([o for o in await env.state.outcomes() if o.status == "suppressed"]) == 1

    # The silence expires by itself: P-1 (still active) goes out at the next group tick.
    await env.tick(T0 + timedelta(hours=2, minutes=0, seconds=31))
    mails = env.emails()
    assert len(mails) == 2 and "P-1" in mails[1].part("text/plain")
    assert [s.id for s in await env.state.silences(T0 + timedelta(hours=3))] == []
    assert [s.id for s in await env.state.silences(T0 + timedelta(hours=3), include_expired=True)] == [silence.id]


async def test_an_expired_silence_stops_applying_to_new_alerts(alert_env):
    env = await alert_env()
    await env.state.add_silence(['vendor="V-1"'], T0, T0 + timedelta(minutes=30), "bob", "maintenance", T0)
    await env.submit(decision("P-1", vendor="V-1"), T0 + timedelta(hours=1))
    await env.tick(T0 + timedelta(hours=1, seconds=30))
    assert len(env.emails()) == 1


async def test_expiring_a_silence_early(alert_env):
    env = await alert_env()
    silence = await env.state.add_silence(['vendor="V-1"'], T0, T0 + timedelta(days=1), "bob", "x", T0)
    await env.submit(decision("P-1", vendor="V-1"), T0)
    await env.tick(T0 + timedelta(seconds=30))
    assert env.emails() == []
    await env.state.expire_silence(silence.id, T0 + timedelta(minutes=1))
    await env.tick(T0 + timedelta(minutes=5, seconds=30))
    assert len(env.emails()) == 1


async def test_unacked_critical_alerts_escalate_to_the_next_receiver(alert_env):
    env = await alert_env()
    await env.submit(decision("P-1", vendor="V-1", severity="critical", rule_id="new_bank_account"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    assert [s.to for s in env.sms()] == ["+15555550100"]

    await env.tick(T0 + timedelta(minutes=15, seconds=9))
    assert len(env.sms()) == 1, "not before the step's `after`"
    await env.tick(T0 + timedelta(minutes=15, seconds=10))
    assert [s.to for s in env.sms()] == ["+15555550100", "+15555550101"]
    assert "ESCALATED" in env.sms()[1].body
    [lead_mail] = env.emails("lead@example.com")
    assert "ESCALATED" in lead_mail.subject
    assert "Escalation 1 of 1: not acknowledged 15m after the first notification to oncall" in lead_mail.part(
        "text/plain"
    )

    # The chain has one step: nothing more, ever.
    for minutes in range(20, 200, 10):
        await env.tick(T0 + timedelta(minutes=minutes))
    assert len(env.emails("lead@example.com")) == 1


async def test_acked_alerts_do_not_escalate(alert_env):
    env = await alert_env()
    alert = await env.submit(decision("P-1", vendor="V-1", severity="critical"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    await env.dispatcher.ack(alert.alert_id, "carol", "calling the vendor", T0 + timedelta(minutes=5))
    for minutes in range(10, 180, 5):
        await env.tick(T0 + timedelta(minutes=minutes))
    assert env.emails("lead@example.com") == [] and len(env.sms()) == 1
    stopped = [o for o in await env.state.outcomes() if o.reason.startswith("escalation_stopped")]
    assert len(stopped) == 1
    assert not any("REPEAT" in m.subject for m in env.emails()), "acked: no repeats either"


TWO_STEPS = """
route:
  receiver: oncall
  group_by: [vendor]
  group_wait: 0s
  escalation: chain
receivers:
  - {name: oncall, sms: {to: ["+15555550100"]}, min_severity: {sms: high}}
  - {name: lead, sms: {to: ["+15555550101"]}}
  - {name: director, sms: {to: ["+15555550102"]}}
escalations:
  chain:
    min_severity: high
    steps:
      - {after: 10m, receiver: lead}
      - {after: 20m, receiver: director}
"""


async def test_an_ack_between_steps_stops_the_chain(alert_env):
    env = await alert_env(TWO_STEPS)
    alert = await env.submit(decision("P-1", vendor="V-1", severity="critical"), T0)
    await env.submit(decision("P-2", vendor="V-1", severity="low", action="review"), T0)
    await env.tick(T0)
    await env.tick(T0 + timedelta(minutes=10))
    assert [s.to for s in env.sms()] == ["+15555550100", "+15555550101"]
    assert "P-1" in env.sms()[1].body, "only alerts at or above the chain's min_severity escalate"
    await env.dispatcher.ack(alert.alert_id, "lead", "", T0 + timedelta(minutes=12))
    await env.tick(T0 + timedelta(minutes=30))
    assert [s.to for s in env.sms()] == ["+15555550100", "+15555550101"]


async def test_the_chain_runs_to_the_last_step(alert_env):
    env = await alert_env(TWO_STEPS)
    await env.submit(decision("P-1", vendor="V-1", severity="high"), T0)
    await env.tick(T0)
    await env.tick(T0 + timedelta(minutes=10))
    await env.tick(T0 + timedelta(minutes=29))
    await env.tick(T0 + timedelta(minutes=30))
    assert [s.to for s in env.sms()] == ["+15555550100", "+15555550101", "+15555550102"]
    assert "ESCALATED" in env.sms()[2].body
