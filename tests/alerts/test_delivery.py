"""Delivery through the real clients to real local servers: SMTP (plain, STARTTLS + AUTH, TLS) and
the Twilio API; retries, dead letters, fallbacks, and no secret in any log line."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from devservices.smtp_server import SmtpTestServer
from devservices.twilio_server import count_segments
from paysentry.alerts.email_channel import EmailChannel
from paysentry.alerts.redact import contains_clear_account
from paysentry.alerts.service import send_test
from paysentry.alerts.sms_channel import SmsChannel
from tests.harness.alert_fixtures import CLEAR_IBAN, SMTP_PASSWORD, SMTP_USER, TWILIO_FROM, TWILIO_TOKEN, decision

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


async def test_email_parts_subject_and_no_clear_account(alert_env):
    env = await alert_env()
    d = decision("P-1", vendor="V-1", severity="high", rule_id="new_bank_account",
                 reason=f"payee account changed to {CLEAR_IBAN} two days before payment")  # fmt: skip
    alert = await env.submit(d, T0)
    await env.tick(T0 + timedelta(seconds=30))
    [mail] = env.emails()
    assert mail.subject == "[PaySentry HIGH] new_bank_account - vendor V-1"
    assert mail.rcpt_tos == ["finance@example.com"] and mail.mail_from == "paysentry@example.com"
    assert mail.message.get_content_type() == "multipart/alternative"
    text, html = mail.part("text/plain"), mail.part("text/html")
    assert "P-1" in text and "****3000" in text and f"ack {alert.alert_id}" in text
    assert "P-1" in html and "****3000" in html
    assert not contains_clear_account(mail.raw.decode(errors="replace"), CLEAR_IBAN)
    assert mail.message["X-PaySentry-Group"] and mail.message["Auto-Submitted"] == "auto-generated"
    [sent] = [o for o in await env.state.outcomes() if o.status == "sent"]
    assert sent.channel == "email" and sent.provider_id == str(mail.message["Message-ID"])


async def test_sms_through_the_real_twilio_client(alert_env):
    env = await alert_env()
    alert = await env.submit(decision("P-77", vendor="V-9", severity="critical", rule_id="new_bank_account"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    [sms] = env.sms()
    assert sms.to == "+15555550100" and sms.from_ == TWILIO_FROM
    assert sms.body == (
        "PaySentry CRITICAL new_bank_account vendor V-9 125,000.00 EUR pay P-77. "
        f"Ack: paysentry alerts ack {alert.alert_id}"
    )
    assert count_segments(sms.body) <= 3
    [sent] = [o for o in await env.state.outcomes() if o.status == "sent" and o.channel == "sms"]
    assert sent.provider_id == sms.sid and sent.provider_id.startswith("SM")


async def test_starttls_with_auth_and_no_secret_in_logs(alert_env, smtp_starttls_server, tls_cert, caplog):
    env = await alert_env()
    env.reconfigure(
        smtp_port=smtp_starttls_server.port, smtp_starttls=True, smtp_ca_file=tls_cert[0],
        smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD,
    )  # fmt: skip
    caplog.set_level(logging.DEBUG)
    await env.submit(decision("P-1", vendor="V-1", severity="critical"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    [mail] = smtp_starttls_server.messages
    assert mail.tls and mail.authenticated_as == SMTP_USER
    assert len(env.sms()) == 1
    assert caplog.records, "the delivery was logged"
    for secret in (SMTP_PASSWORD, TWILIO_TOKEN, CLEAR_IBAN):
        assert secret not in caplog.text
    assert "sent" in caplog.text


async def test_implicit_tls(tls_cert, alert_settings):
    with SmtpTestServer(cert=tls_cert, mode="tls") as server:
        settings = alert_settings.model_copy(
            update={"smtp_port": server.port, "smtp_tls": True, "smtp_ca_file": tls_cert[0]}
        )
        from paysentry.alerts.templates import RenderedEmail

        await EmailChannel(settings).send(RenderedEmail("s", "t", "<p>h</p>"), ["a@example.com"])
        [mail] = server.messages
        assert mail.tls and mail.subject == "s"


async def test_untrusted_certificate_is_refused(alert_settings, smtp_starttls_server):
    from paysentry.alerts.channels import DeliveryError
    from paysentry.alerts.templates import RenderedEmail

    settings = alert_settings.model_copy(update={"smtp_port": smtp_starttls_server.port, "smtp_starttls": True})
    with pytest.raises(DeliveryError):
        await EmailChannel(settings).send(RenderedEmail("s", "t", "h"), ["a@example.com"])
    assert smtp_starttls_server.messages == []


async def test_wrong_smtp_password_is_permanent_and_falls_back(alert_env, smtp_starttls_server, tls_cert):
    env = await alert_env()
    env.reconfigure(
        smtp_port=smtp_starttls_server.port, smtp_starttls=True, smtp_ca_file=tls_cert[0],
        smtp_username=SMTP_USER, smtp_password="wrong",
    )  # fmt: skip
    await env.submit(decision("P-1", vendor="V-1", severity="high"), T0)
    await env.tick(T0 + timedelta(seconds=30))
    [dead, fallback_dead] = env.dead_letters
    assert dead["receiver"] == "finance" and dead["attempts"] == 1 and "authentication" in dead["error"]
    assert fallback_dead["receiver"] == "backup" and fallback_dead["fallback_for"] == "finance"
    assert len(await env.state.dead_letters()) == 2


async def test_invalid_number_is_dead_lettered_and_the_fallback_is_tried(alert_env, twilio_server):
    env = await alert_env()
    twilio_server.invalid_numbers.add("+15555550100")
    await env.submit(decision("P-1", vendor="V-1", severity="critical"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    assert env.sms() == [] and twilio_server.requests == 1, "a 400 is not retried"
    [dead] = env.dead_letters
    assert dead["channel"] == "sms" and dead["error"] == "twilio 400 error 21211"
    [fallback] = env.emails("backup@example.com")
    assert "Fallback: delivery to oncall by sms failed (twilio 400 error 21211)." in fallback.part("text/plain")
    assert len(env.emails("oncall@example.com")) == 1, "the email to on-call still went"
    assert env.dispatcher.metrics["failed|sms|dead_letter"] == 1


async def test_wrong_twilio_token_is_permanent(alert_env):
    env = await alert_env()
    env.reconfigure(twilio_auth_token="nope")
    await env.submit(decision("P-1", vendor="V-1", severity="critical"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    assert env.sms() == []
    assert env.dead_letters[0]["error"] == "twilio 401 error 20003"


async def test_messaging_service_sid(alert_settings, twilio_server):
    from paysentry.alerts.templates import RenderedSms

    settings = alert_settings.model_copy(
        update={"twilio_from_number": None, "twilio_messaging_service_sid": "MG" + "1" * 32}
    )
    channel = SmsChannel(settings)
    try:
        sid = await channel.send(RenderedSms("hello"), ["+15555550100"])
    finally:
        await channel.close()
    [sms] = twilio_server.messages
    assert sms.sid == sid and sms.from_ is None and sms.messaging_service_sid == "MG" + "1" * 32


async def test_retries_back_off_then_deliver_once(alert_env, twilio_server, smtp_server):
    env = await alert_env()
    twilio_server.fail_next(2, status=503)
    smtp_server.fail_next(1)
    await env.submit(decision("P-1", vendor="V-1", severity="critical"), T0)
    await env.tick(T0 + timedelta(seconds=10))
    assert env.sms() == [] and env.emails() == []
    await env.tick(T0 + timedelta(seconds=39))
    assert twilio_server.requests == 1, "backoff: not before 30s"
    await env.tick(T0 + timedelta(seconds=40))
    assert len(env.emails()) == 1 and env.sms() == []
    await env.tick(T0 + timedelta(seconds=100))
    assert len(env.sms()) == 1
    for seconds in range(110, 2000, 60):
        await env.tick(T0 + timedelta(seconds=seconds))
    assert len(env.sms("+15555550100")) == 1 and len(env.emails("oncall@example.com")) == 1
    retrying = [o for o in await env.state.outcomes() if o.status == "retrying"]
    assert sorted(o.channel for o in retrying) == ["email", "sms", "sms"]


async def test_after_the_last_retry_the_fallback_gets_it(alert_env, twilio_server):
    env = await alert_env()
    twilio_server.down()
    await env.submit(decision("P-1", vendor="V-1", severity="critical"), T0)
    when = T0 + timedelta(seconds=10)
    for _ in range(4):  # max_attempts: 4, backoff 30s doubling
        await env.tick(when)
        when += timedelta(minutes=5)
    assert [d["channel"] for d in env.dead_letters] == ["sms"]
    assert env.dead_letters[0]["attempts"] == 4 and "unreachable" in env.dead_letters[0]["error"]
    [fallback] = env.emails("backup@example.com")
    assert "gave up" not in fallback.part("text/plain") and "Fallback: delivery to oncall by sms" in fallback.part(
        "text/plain"
    )
    failed = [o for o in await env.state.outcomes() if o.status == "failed"]
    assert failed[0].reason.startswith("dead_letter: gave up after 4 attempts")


async def test_send_test_uses_the_real_channels(alert_env):
    env = await alert_env()
    channels = {"email": EmailChannel(env.settings), "sms": SmsChannel(env.settings)}
    try:
        results = await send_test(env.config, "oncall", channels)
    finally:
        await channels["sms"].close()
    assert [(r.channel, r.ok) for r in results] == [("sms", True), ("email", True)]
    assert "TEST" in env.sms()[0].body and "TEST" in env.emails()[0].subject
