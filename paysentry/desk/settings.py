"""The review desk's settings, from the environment (prefix PAYSENTRY_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///var/paysentry.db"


class DeskSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYSENTRY_", env_file=".env", extra="ignore")

    # SQLite for the embedded run; PostgreSQL in production: postgresql+psycopg://user:pass@host/db
    database_url: str = DEFAULT_DATABASE_URL
    approvals_path: Path = Path("config/approvals.yaml")
    # None: Secure cookies exactly when the request came over https (uvicorn --proxy-headers behind TLS).
    desk_secure_cookies: bool | None = None
    desk_session_hours: float = 8.0
    # Where case links point (alerts and case.resolved records); empty: relative links.
    desk_base_url: str = ""
    # Fernet key(s) sealing TOTP secrets at rest, the sealing one first (paysentry/desk/totp_vault.py)
    desk_totp_key: SecretStr | None = None
