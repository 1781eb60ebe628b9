"""Alerts link each payment to its case in the review desk (PAYSENTRY_DESK_BASE_URL, or `desk_base_url`
in the routes file), by email and SMS through the real SMTP server and Twilio-API server; no link when
the desk's address is not set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devservices.twilio_server import count_segments
from paysentry.alerts.loader import parse_routes
from paysentry.alerts.routes_yaml import ConfigError
from tests.harness.alert_fixtures import BASE_ROUTES, decision

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)
DESK = "https://desk.example.com"


def _with_desk(url: str) -> str:
    return BASE_ROUTES.replace("  alert_ttl: 24h\n", f"  alert_ttl: 24h\n  desk_base_url: {url}\n", 1)


async def test_email_and_sms_carry_the_case_link(alert_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSENTRY_DESK_BASE_URL", DESK + "/")
    env = await alert_env()
    await env.submit(decision("PAY 7/1", vendor="V-1", severity="critical", rule_id="new_bank_account"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    link = f"{DESK}/cases/by-payment/PAY%207%2F1"  # the ERP's id is encoded whole: it cannot leave the path
    [mail] = env.emails("oncall@example.com")
    assert f"Case:          {link}" in mail.part("text/plain")
    assert f'<a href="{link}">Open the case in the review desk</a>' in mail.part("text/html")
    [sms] = env.sms()
    assert sms.body.endswith(f"Case: {link}") and "Ack: paysentry alerts ack" in sms.body
    assert count_segments(sms.body) <= 3


async def test_no_link_without_the_desks_address(alert_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYSENTRY_DESK_BASE_URL", raising=False)
    env = await alert_env()
    await env.submit(decision("P-2", vendor="V-2", severity="critical", rule_id="new_bank_account"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    [mail] = env.emails("oncall@example.com")
    assert "by-payment" not in mail.raw.decode(errors="replace") and "Case:" not in mail.part("text/plain")
    [sms] = env.sms()
    assert "Case:" not in sms.body and "by-payment" not in sms.body


async def test_the_routes_file_can_name_the_desk(alert_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYSENTRY_DESK_BASE_URL", raising=False)
    env = await alert_env(_with_desk("https://risk.example.org/desk"))
    await env.submit(decision("P-3", vendor="V-3", severity="high"), T0)
    await env.tick(T0 + timedelta(seconds=30))
    [mail] = env.emails()
    assert "https://risk.example.org/desk/cases/by-payment/P-3" in mail.part("text/plain")


async def test_a_long_sms_is_shortened_but_keeps_the_whole_link(alert_env, monkeypatch: pytest.MonkeyPatch) -> None:
    long_base = "https://desk.example.com/" + "d" * 120
    monkeypatch.setenv("PAYSENTRY_DESK_BASE_URL", long_base)
    env = await alert_env()
    vendor = "V-" + "x" * 200  # a long label pushes the text past three segments
    await env.submit(decision("P-4", vendor=vendor, severity="critical", rule_id="new_bank_account"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    [sms] = env.sms()
    assert "..." in sms.body and sms.body.endswith(f"Case: {long_base}/cases/by-payment/P-4")
    assert count_segments(sms.body) <= 3


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://desk.example.com", "https://desk example.com",
                                 "https://" + "x" * 300])  # fmt: skip
def test_a_desk_address_that_is_not_a_web_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="desk_base_url"):
        parse_routes(_with_desk(f"'{url}'"), "routes.yaml", environ={})


def _with_templates(sms: str, intro: str) -> str:
    """BASE_ROUTES with the on-call receiver's SMS and email on a custom template set."""
    routes = BASE_ROUTES.replace(
        '    sms: {to: ["+15555550100"]}\n', '    sms: {to: ["+15555550100"], template: mine}\n', 1
    ).replace("    email: {to: [oncall@example.com]}\n", "    email: {to: [oncall@example.com], template: mine}\n", 1)
    return routes + f"templates:\n  mine:\n    sms: '{sms}'\n    email_intro: '{intro}'\n"


@pytest.mark.parametrize(
    "sms",
    ["${SEVERITY} ${vendor} ${vendor} ${case_url} ${rule_id}: call treasury on the hotline and check the "
     "payment run before noon, ack ${ack_command}",  # the link in the middle
     "${case_url} ${SEVERITY} ${vendor} ${rule_id} " + "please look now " * 20 + "ack ${ack_command}"],
)  # fmt: skip
async def test_custom_templates_place_the_case_link_and_a_short_sms_keeps_it_whole(
    alert_env, monkeypatch: pytest.MonkeyPatch, sms: str
) -> None:
    monkeypatch.setenv("PAYSENTRY_DESK_BASE_URL", DESK)
    env = await alert_env(_with_templates(sms, "Open ${case_url} first."))
    vendor = "V-" + "x" * 250  # long enough to push the text past three segments
    await env.submit(decision("P-5", vendor=vendor, severity="critical", rule_id="new_bank_account"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    link = f"{DESK}/cases/by-payment/P-5"
    [mail] = env.emails("oncall@example.com")
    assert f"Open {link} first." in mail.part("text/plain")
    [sms_sent] = env.sms()
    assert "..." in sms_sent.body and link in sms_sent.body.split()
    assert count_segments(sms_sent.body) <= 3
