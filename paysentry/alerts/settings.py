"""Settings for alert delivery and state, from the environment (prefix `PAYSENTRY_`).

PAYSENTRY_REDIS_URL                     redis://localhost:6379/0
PAYSENTRY_ALERTS_ROUTES_FILE            config/routes.yaml
PAYSENTRY_ALERTS_REDIS_PREFIX           paysentry:alerts:
PAYSENTRY_ALERTS_AUDIT_LOG              silence/ack audit (JSON Lines), default $PAYSENTRY_DATA_DIR/alerts-audit.jsonl
PAYSENTRY_DATA_DIR                      var/stream (the worker's data dir, where the rules audit log is too)
PAYSENTRY_SMTP_HOST / _PORT             localhost / 25
PAYSENTRY_SMTP_USERNAME / _PASSWORD     login for AUTH (password is a secret)
PAYSENTRY_SMTP_STARTTLS / _TLS          upgrade with STARTTLS / connect with TLS (not both)
PAYSENTRY_SMTP_FROM                     sender address
PAYSENTRY_SMTP_CA_FILE                  CA bundle to verify the server (default: system CAs)
PAYSENTRY_SMTP_VALIDATE_CERTS           true
PAYSENTRY_SMTP_TIMEOUT                  seconds, 10
PAYSENTRY_TWILIO_ACCOUNT_SID / _AUTH_TOKEN (secret)
PAYSENTRY_TWILIO_FROM_NUMBER or PAYSENTRY_TWILIO_MESSAGING_SERVICE_SID
PAYSENTRY_TWILIO_API_BASE_URL           default https://api.twilio.com (tests point it at a local server)
PAYSENTRY_TWILIO_TIMEOUT                seconds, 10
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYSENTRY_", extra="ignore")

    redis_url: str = "redis://localhost:6379/0"
    alerts_routes_file: Path = Path(__file__).resolve().parents[2] / "config" / "routes.yaml"
    alerts_redis_prefix: str = "paysentry:alerts:"
    alerts_audit_log: Path | None = None
    data_dir: Path = Path("var/stream")

    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_from: str = "paysentry@localhost"
    smtp_ca_file: Path | None = None
    smtp_validate_certs: bool = True
    smtp_timeout: float = 10.0

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str | None = None
    twilio_timeout: float = 10.0

    @model_validator(mode="after")
    def _one_tls_mode(self) -> AlertSettings:
        if self.smtp_tls and self.smtp_starttls:
            raise ValueError("set PAYSENTRY_SMTP_TLS (TLS on connect) or PAYSENTRY_SMTP_STARTTLS, not both")
        return self

    @property
    def audit_log_path(self) -> Path:
        """Where silences and acks are audited: next to the rules audit log unless set."""
        return self.alerts_audit_log or self.data_dir / "alerts-audit.jsonl"

    @property
    def sms_configured(self) -> bool:
        return bool(
            self.twilio_account_sid
            and self.twilio_auth_token
            and (self.twilio_from_number or self.twilio_messaging_service_sid)
        )
