"""TOTP secrets at rest: sealed with a key from the environment, so a copy of the database alone does not
let anyone produce a user's second factor.

`PAYSENTRY_DESK_TOTP_KEY` holds one or more Fernet keys separated by commas (make one with
`paysentry totp-key`): the first seals, every one opens, so a key is rotated by putting the new one
first and keeping the old one until `paysentry users seal-totp` (or each user's next login) has
sealed every secret again. A sealed secret reads `fernet:<token>`; a secret stored before a key was set
is still in clear and is sealed at its user's next login. Without a key secrets stay in clear and the
desk says so when it starts.
"""

from __future__ import annotations

import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

log = logging.getLogger("paysentry.desk")
SEALED = "fernet:"
MAX_KEYS = 8


class VaultError(ValueError):
    """A secret cannot be opened (no key, or none of the keys): the login it was for is refused."""


class TotpVault:
    def __init__(self, keys: list[bytes]):
        self._primary = Fernet(keys[0]) if keys else None
        self._all = MultiFernet([Fernet(key) for key in keys]) if keys else None

    @classmethod
    def from_setting(cls, value: SecretStr | str | None) -> TotpVault:
        """The vault for the setting's keys; ValueError naming the setting (never the key) when one is not a
        Fernet key."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else (value or "")
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if len(parts) > MAX_KEYS:
            raise ValueError(f"PAYSENTRY_DESK_TOTP_KEY: at most {MAX_KEYS} keys")
        for position, part in enumerate(parts, 1):
            try:
                Fernet(part.encode())
            except ValueError:
                raise ValueError(
                    f"PAYSENTRY_DESK_TOTP_KEY: key {position} is not a Fernet key (32 url-safe base64 bytes; "
                    "`paysentry totp-key` makes one)"
                ) from None
        return cls([part.encode() for part in parts])

    @property
    def enabled(self) -> bool:
        return self._primary is not None

    def seal(self, secret: str) -> str:
        """What the database keeps for `secret`: sealed with the first key, or the secret itself without one."""
        if self._primary is None:
            return secret
        return SEALED + self._primary.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        """The secret behind a stored value (a clear one is returned as it is)."""
        if not stored.startswith(SEALED):
            return stored
        if self._all is None:
            raise VaultError("the TOTP secret is sealed but PAYSENTRY_DESK_TOTP_KEY is not set")
        try:
            return self._all.decrypt(stored[len(SEALED) :].encode()).decode()
        except (InvalidToken, UnicodeDecodeError):
            raise VaultError("the TOTP secret opens with none of the keys in PAYSENTRY_DESK_TOTP_KEY") from None

    def is_current(self, stored: str) -> bool:
        """Whether `stored` is as `seal` would write it now (sealed with the first key, or clear without keys)."""
        if self._primary is None:
            return True
        if not stored.startswith(SEALED):
            return False
        try:
            self._primary.decrypt(stored[len(SEALED) :].encode())
        except InvalidToken:
            return False
        return True


def new_key() -> str:
    return Fernet.generate_key().decode()
