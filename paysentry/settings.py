"""Runtime settings from the environment (prefix PAYSENTRY_), secrets as SecretStr so they never print."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYSENTRY_", env_file=".env", extra="ignore")

    # Key of the HMAC that replaces payee accounts. Workers that share state must share it; the
    # embedded run makes up a throw-away key when none is set (decisions do not depend on it).
    account_hash_key: SecretStr | None = None
    rules_path: Path | None = None

    def hash_key(self) -> bytes:
        if self.account_hash_key is not None:
            return self.account_hash_key.get_secret_value().encode()
        return secrets.token_bytes(32)
