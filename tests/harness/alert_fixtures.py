"""Fixtures for alerting tests: a real SMTP server (plain, and STARTTLS with AUTH), a local Twilio API,
decision builders, and an `alert_env` factory that wires an AlertDispatcher to a real Redis and the
real email and SMS channels pointed at those servers."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from devservices.smtp_server import ReceivedMail, SmtpTestServer, make_self_signed_cert
from devservices.twilio_server import SentSms, TwilioTestServer
from paysentry.alerts.channels import Channel
from paysentry.alerts.config import RoutesConfig
from paysentry.alerts.dispatcher import AlertDispatcher, TickReport
from paysentry.alerts.email_channel import EmailChannel
from paysentry.alerts.loader import parse_routes
from paysentry.alerts.model import Alert
from paysentry.alerts.redis_store import RedisStore
from paysentry.alerts.settings import AlertSettings
from paysentry.alerts.sms_channel import SmsChannel
from paysentry.contract import Decision
from tests.harness.services import unavailable

TWILIO_SID = "AC" + "0" * 30 + "01"
TWILIO_TOKEN = "test-auth-token-9f8e7d"
TWILIO_FROM = "+15555550199"
SMTP_USER = "paysentry"
SMTP_PASSWORD = "smtp-secret-p4ss"
CLEAR_IBAN = "DE89370400440532013000"


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        unavailable("the openssl CLI is needed to make a test certificate")
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def _smtp_plain() -> Iterator[SmtpTestServer]:
    server = SmtpTestServer().up()
    yield server
    server.down()


@pytest.fixture
def smtp_server(_smtp_plain: SmtpTestServer) -> SmtpTestServer:
    _smtp_plain.reset()
    return _smtp_plain


@pytest.fixture(scope="session")
def _smtp_starttls(tls_cert: tuple[Path, Path]) -> Iterator[SmtpTestServer]:
    server = SmtpTestServer(cert=tls_cert, mode="starttls", username=SMTP_USER, password=SMTP_PASSWORD).up()
    yield server
    server.down()


@pytest.fixture
def smtp_starttls_server(_smtp_starttls: SmtpTestServer) -> SmtpTestServer:
    _smtp_starttls.reset()
    return _smtp_starttls


@pytest.fixture(scope="session")
def _twilio() -> Iterator[TwilioTestServer]:
    server = TwilioTestServer(TWILIO_SID, TWILIO_TOKEN).up()
    yield server
    server.close()


@pytest.fixture
def twilio_server(_twilio: TwilioTestServer) -> TwilioTestServer:
    _twilio.reset()
    return _twilio


@pytest.fixture
def alert_settings(smtp_server: SmtpTestServer, twilio_server: TwilioTestServer, redis_clean_url: str) -> AlertSettings:
    return AlertSettings(
        redis_url=redis_clean_url,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_from="paysentry@example.com",
        smtp_timeout=5.0,
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token=TWILIO_TOKEN,
        twilio_from_number=TWILIO_FROM,
        twilio_api_base_url=twilio_server.base_url,
        twilio_timeout=5.0,
    )


def decision(
    payment_id: str = "P-1001",
    *,
    vendor: str = "V-100",
    company: str = "1000",
    severity: str = "high",
    action: str | None = None,
    rule_id: str = "amount_spike",
    reason: str = "amount 125000.00 is 8.1x the vendor's 90-day median",
    amount: str = "125000.00",
    currency: str = "EUR",
    channel: str = "sepa",
    team: str | None = None,
    extra_rules: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    model_score: float | None = 0.87,
    event_id: str | None = None,
) -> Decision:
    """A decision as the engine emits it; `extra_rules` are (rule_id, severity, reason)."""
    action = action or {"critical": "block", "high": "hold"}.get(severity, "review")
    labels = {"team": team} if team else {}
    hits = [{"rule_id": rule_id, "severity": severity, "action": action, "reason": reason, "labels": labels,
             "annotations": {"runbook_url": f"https://runbooks.example.com/{rule_id}"}}]  # fmt: skip
    hits += [{"rule_id": r, "severity": s, "action": "review", "reason": why} for r, s, why in extra_rules]
    return Decision.model_validate(
        {
            "payment_id": payment_id, "event_id": event_id or f"evt-{payment_id}", "event_type": "payment.approved",
            "event_time": "2024-03-04T11:58:00+00:00", "vendor_id": vendor, "company_code": company,
            "action": action, "risk_score": 0.91, "severity": severity, "rule_hits": hits,
            "model_score": model_score, "ruleset_version": "2024.03.1",
            "explanation": {"payment": {
                "amount": amount, "currency": currency, "channel": channel, "payee_account_masked": "****3000",
                "payee_bank": "COBADEFFXXX", "payee_country": "DE", "created_by": "j.doe",
                "approved_by": ["m.roe", "k.lee"], "created_at": "2024-03-04T09:12:00+00:00",
                "approved_at": "2024-03-04T11:58:00+00:00",
            }},
        }
    )  # fmt: skip


@pytest.fixture
def make_decision() -> Callable[..., Decision]:
    return decision


BASE_ROUTES = """
global:
  alert_ttl: 24h
  runbook_base_url: https://runbooks.example.com/paysentry
  fallback_receiver: backup
  delivery: {max_attempts: 4, backoff: 30s, max_backoff: 5m, timeout: 5s}
route:
  receiver: finance
  group_by: [company, vendor]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['severity="critical"']
      receiver: oncall
      group_wait: 10s
      repeat_interval: 1h
      escalation: crit
receivers:
  - name: finance
    email: {to: [finance@example.com]}
    digest: {interval: 4h}
  - name: oncall
    email: {to: [oncall@example.com]}
    sms: {to: ["+15555550100"]}
    fallback: backup
  - name: lead
    email: {to: [lead@example.com]}
    sms: {to: ["+15555550101"]}
  - name: backup
    email: {to: [backup@example.com]}
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity=~"info|low|medium|high"']
    equal: [company, vendor]
escalations:
  crit:
    steps:
      - {after: 15m, receiver: lead}
"""


class AlertEnv:
    """A dispatcher on a real Redis with the real channels, plus what the servers received."""

    def __init__(self, config: RoutesConfig, settings: AlertSettings, smtp: SmtpTestServer, twilio: TwilioTestServer):
        self.config = config
        self.settings = settings
        self.smtp = smtp
        self.twilio = twilio
        self.dead_letters: list[dict[str, Any]] = []
        self._stores: list[RedisStore] = []
        self._channels: list[Channel] = []
        self.dispatcher = self.worker()

    def worker(self) -> AlertDispatcher:
        """Another dispatcher with its own Redis connection and channels: a second worker."""
        store = RedisStore.from_url(self.settings.redis_url, "test:alerts:")
        email, sms = EmailChannel(self.settings), SmsChannel(self.settings)
        self._stores.append(store)
        self._channels += [email, sms]
        return AlertDispatcher(self.config, store, {"email": email, "sms": sms}, dead_letter=self.dead_letters.append)

    def reconfigure(self, **changes: Any) -> AlertDispatcher:
        """Change settings (validated, e.g. a password becomes a SecretStr) and use a new dispatcher."""
        self.settings = AlertSettings.model_validate({**self.settings.model_dump(), **changes})
        self.dispatcher = self.worker()
        return self.dispatcher

    @property
    def state(self) -> Any:
        return self.dispatcher.state

    async def submit(self, d: Decision, now: datetime) -> Alert | None:
        return await self.dispatcher.submit_decision(d, now)

    async def tick(self, now: datetime) -> TickReport:
        return await self.dispatcher.tick(now)

    def emails(self, to: str | None = None) -> list[ReceivedMail]:
        return [m for m in self.smtp.messages if to is None or to in m.rcpt_tos]

    def sms(self, to: str | None = None) -> list[SentSms]:
        return [m for m in self.twilio.messages if to is None or m.to == to]

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
        for store in self._stores:
            await store.close()


@pytest.fixture
async def alert_env(
    alert_settings: AlertSettings, smtp_server: SmtpTestServer, twilio_server: TwilioTestServer
) -> AsyncIterator[Callable[..., Awaitable[AlertEnv]]]:
    """`env = await alert_env(routes_yaml=None)`: an AlertEnv on BASE_ROUTES or the given routes text."""
    made: list[AlertEnv] = []

    async def make(routes_yaml: str | None = None) -> AlertEnv:
        config = parse_routes(textwrap.dedent(routes_yaml or BASE_ROUTES), "routes.yaml", environ={})
        env = AlertEnv(config, alert_settings, smtp_server, twilio_server)
        made.append(env)
        return env

    yield make
    for env in made:
        await env.close()
