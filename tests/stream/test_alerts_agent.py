"""The alerts agent in a worker: decisions on `alerts` reach on-call by email and SMS, once, through a
real SMTP server and the local Twilio-API server, with state in a real Redis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devservices.smtp_server import SmtpTestServer
from devservices.twilio_server import TwilioTestServer
from paysentry.cli import run_replay
from paysentry.simulate import SimulationConfig, write_simulation
from tests.harness.alert_fixtures import TWILIO_SID, TWILIO_TOKEN
from tests.stream.conftest import StreamRig

pytestmark = pytest.mark.kafka

ROUTES = """
global:
  min_action: review
route:
  receiver: oncall
  group_by: [vendor]
  group_wait: 0s
  group_interval: 24h   # within the test: exactly one notification per vendor group
  repeat_interval: 24h
receivers:
  - name: oncall
    email: {to: [oncall@example.com]}
    sms: {to: ["+15550100"]}
    min_severity: {email: info, sms: critical}
"""


def test_worker_notifies_on_call_once_per_group(
    stream_rig: StreamRig, smtp_server: SmtpTestServer, twilio_server: TwilioTestServer, redis_clean_url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    write_simulation(SimulationConfig(days=8, seed=5), events, labels)
    stream_rig.produce(events)
    stream_rig.worker(
        "notifier", PAYSENTRY_ALERTS_ENABLED="true", PAYSENTRY_ALERTS_TICK_SECONDS="0.5",
        PAYSENTRY_REDIS_URL=redis_clean_url, PAYSENTRY_ALERTS_ROUTES_FILE=str(routes),
        PAYSENTRY_SMTP_HOST="127.0.0.1", PAYSENTRY_SMTP_PORT=str(smtp_server.port),
        PAYSENTRY_TWILIO_ACCOUNT_SID=TWILIO_SID, PAYSENTRY_TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        PAYSENTRY_TWILIO_FROM_NUMBER="+15550199", PAYSENTRY_TWILIO_API_BASE_URL=twilio_server.base_url,
    )  # fmt: skip
    replayed = run_replay(events, tmp_path / "replayed.jsonl", tmp_path / "rejected.jsonl", None, quiet=True).decisions
    expected = [d for d in replayed if d.action != "allow"]
    alerts = stream_rig.read("alerts", expect=len(expected), settle=3.0)
    assert len(alerts) == len(expected)
    vendors = {a["vendor_id"] for a in alerts}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(smtp_server.messages) < len(vendors):
        time.sleep(0.5)
    time.sleep(3)  # a duplicate, if any were sent, would arrive now
    stream_rig.check_alive()
    mails = smtp_server.messages
    assert mails, "no email reached the SMTP server"
    # one notification per vendor group, not one per alert, and none twice
    assert len(mails) == len(vendors) < len(alerts), sorted(m.subject for m in mails)
    assert all(sum(f"vendor {v or '-'}" in m.subject for m in mails) == 1 for v in vendors)
    for mail in mails:
        text = mail.part("text/plain")
        assert "ack" in text.lower()
        assert not any(ch.isdigit() and len(ch) > 8 for ch in text.split())  # no clear account numbers
    critical = [a for a in alerts if a.get("severity") == "critical"]
    if critical:
        assert twilio_server.messages, "a critical alert should also go out by SMS"
