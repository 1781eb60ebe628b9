"""The synchronous façade for the embedded run, and the service the live stream runs."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from paysentry.alerts.embedded import EmbeddedAlerts
from paysentry.alerts.service import AlertService
from tests.harness.alert_fixtures import decision

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


def run_embedded() -> tuple[dict[str, dict[str, int]], EmbeddedAlerts]:
    alerts = EmbeddedAlerts(REPO / "config" / "routes.yaml")
    for i in range(10):
        alerts.handle(decision(f"P-{i}", vendor="V-1", severity="high"), T0 + timedelta(seconds=i))
    alerts.handle(decision("P-crit", vendor="V-2", severity="critical"), T0 + timedelta(seconds=20))
    alerts.handle(decision("P-low", vendor="V-3", severity="medium"), T0 + timedelta(seconds=30))
    alerts.handle(decision("P-allow", vendor="V-3", severity="low", action="allow"), T0 + timedelta(seconds=40))
    alerts.drain(T0 + timedelta(seconds=40), horizon=timedelta(minutes=20))
    return alerts.summary(), alerts


def test_embedded_run_counts_what_would_go_where():
    summary, alerts = run_embedded()
    try:
        assert summary["sent"] == {
            "ap-team/email": 1,  # ten alerts about V-1: one email
            "payments-oncall/email": 1,
            "payments-oncall/sms": 1,
            "payments-lead/email": 1,  # nobody acked the critical one within 15 minutes
            "payments-lead/sms": 1,
        }
        assert summary["deferred"] == {"ap-team/email": 1}, "the medium alert waits for the digest"
        [(mail, to)] = alerts.channels["email"].sent[:1]  # type: ignore[attr-defined]
        assert to == ["ap-team@example.com"] and "(+9 more)" in mail.subject
    finally:
        alerts.close()


async def test_the_facade_works_inside_a_running_event_loop():
    summary, alerts = run_embedded()
    alerts.close()
    assert summary["sent"]["ap-team/email"] == 1


async def test_service_reads_decisions_as_json_and_reloads_routes(tmp_path, alert_settings, smtp_server):
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "route: {receiver: a, group_wait: 0s}\n"
        "receivers: [{name: a, email: {to: [a@example.com]}}, {name: b, email: {to: [b@example.com]}}]\n"
    )
    settings = alert_settings.model_copy(update={"alerts_routes_file": routes, "alerts_redis_prefix": "svc:"})
    service = AlertService.from_settings(settings)
    assert service.holder is not None
    try:
        await service.handle_decision(decision("P-1", vendor="V-1").to_json(), T0)
        await service.tick(T0)
        assert [m.rcpt_tos for m in smtp_server.messages] == [["a@example.com"]]

        bump(routes, "route: {receiver: ghost}\nreceivers: [{name: a, email: {to: [a@example.com]}}]\n")
        await service.tick(T0 + timedelta(seconds=1))
        assert service.holder.last_error is not None, "the bad file is reported and ignored"
        assert service.dispatcher.config.route.receiver == "a"

        bump(routes, "route: {receiver: b, group_wait: 0s}\nreceivers: [{name: b, email: {to: [b@example.com]}}]\n")
        await service.tick(T0 + timedelta(seconds=2))
        await service.handle_decision(decision("P-2", vendor="V-2").model_dump(mode="json"), T0 + timedelta(seconds=3))
        await service.tick(T0 + timedelta(seconds=3))
        assert [m.rcpt_tos for m in smtp_server.messages] == [["a@example.com"], ["b@example.com"]]
    finally:
        await service.close()


def bump(path: Path, text: str) -> None:
    """Write the file with a newer mtime (file systems with coarse timestamps would hide the change)."""
    path.write_text(text)
    stamp = time.time() + len(text)
    os.utime(path, (stamp, stamp))
