"""Runtime settings from the environment (prefix PAYSENTRY_), secrets as SecretStr so they never print."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from paysentry.event_time import TimeWindow

_DURATION = re.compile(r"\s*([0-9]{1,12})\s*([smhdw]?)\s*", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MAX_DURATION_SECONDS = 1000 * 366 * 86400  # no window needs more; keeps every sum of times in range


def parse_seconds(value: Any) -> int:
    """Seconds from `86400`, `90s`, `15m`, `12h`, `1d`, `3650d` or `2w`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 86400, 12h, 1d or 3650d")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.fullmatch(str(value))
        if not match:
            raise ValueError("expected a duration like 86400, 12h, 1d or 3650d")
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if not 0 <= seconds <= _MAX_DURATION_SECONDS:
        raise ValueError("a duration must be between 0 and 1000 years")
    return seconds


Seconds = Annotated[int, BeforeValidator(parse_seconds)]


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYSENTRY_", env_file=".env", extra="ignore")

    # Key of the HMAC that replaces payee accounts. Workers that share state must share it; the
    # embedded run makes up a throw-away key when none is set (decisions do not depend on it).
    account_hash_key: SecretStr | None = None
    rules_path: Path | None = None
    # How far an event's time may be after / before the stream's clock before ingest refuses it.
    max_event_ahead: Seconds = 86400
    max_event_behind: Seconds = 3650 * 86400

    def hash_key(self) -> bytes:
        if self.account_hash_key is not None:
            return self.account_hash_key.get_secret_value().encode()
        return secrets.token_bytes(32)

    def time_window(self) -> TimeWindow:
        return TimeWindow(ahead_seconds=self.max_event_ahead, behind_seconds=self.max_event_behind)
