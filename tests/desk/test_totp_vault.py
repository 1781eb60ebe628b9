"""TOTP secrets sealed at rest with PAYSENTRY_DESK_TOTP_KEY, on both databases: a new user's secret is
sealed, a clear one from before the key is sealed at the next login, a rotated key re-seals, a sealed
secret without its key refuses the login (never a server error), and a bad key stops the start."""

from __future__ import annotations

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from paysentry.desk.app import create_app
from paysentry.desk.cli import desk_app as desk_cli
from paysentry.desk.db import User
from paysentry.desk.security import create_user, hash_password
from paysentry.desk.settings import DeskSettings
from paysentry.desk.totp_vault import SEALED, TotpVault, new_key
from tests.desk.support import PASSWORD, LiveServer, login

OLD_KEY, NEW_KEY = new_key(), new_key()


def _stored(sessions: sessionmaker[Session], name: str) -> str:
    with sessions() as session:
        return session.scalars(select(User.totp_secret).where(User.name == name)).one() or ""


def _user(sessions: sessionmaker[Session], name: str, vault: TotpVault) -> str:
    """An analyst whose password is PASSWORD; returns the TOTP secret (as the authenticator app has it)."""
    with sessions() as session:
        user, _password, uri = create_user(session, name, "analyst", actor="test", vault=vault)
        user.password_hash = hash_password(PASSWORD)
        user.password_expired = False
        session.commit()
    assert uri is not None
    return pyotp.parse_uri(uri).secret


def _app(desk_settings: DeskSettings, key: str | None) -> FastAPI:
    return create_app(desk_settings.model_copy(update={"desk_totp_key": key}))


def _login_ok(app: FastAPI, name: str, secret: str) -> bool:
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        answer = login(http, name, secret)
        assert answer.status_code in (303, 401), answer.text
        return answer.status_code == 303


def test_a_new_secret_is_sealed_and_logs_in(desk_settings: DeskSettings) -> None:
    app = _app(desk_settings, NEW_KEY)
    secret = _user(app.state.sessions, "ana", app.state.totp_vault)
    stored = _stored(app.state.sessions, "ana")
    assert stored.startswith(SEALED) and secret not in stored
    assert _login_ok(app, "ana", secret)
    app.state.engine.dispose()


def test_a_clear_secret_is_sealed_at_the_next_login_and_a_rotated_key_reseals(desk_settings: DeskSettings) -> None:
    clear = _app(desk_settings, None)
    secret = _user(clear.state.sessions, "bo", clear.state.totp_vault)
    assert _stored(clear.state.sessions, "bo") == secret  # no key: kept as it was before keys existed
    clear.state.engine.dispose()

    first = _app(desk_settings, OLD_KEY)
    assert _login_ok(first, "bo", secret)
    sealed_old = _stored(first.state.sessions, "bo")
    assert sealed_old.startswith(SEALED) and TotpVault.from_setting(OLD_KEY).open(sealed_old) == secret
    first.state.engine.dispose()

    rotated = _app(desk_settings, f"{NEW_KEY},{OLD_KEY}")
    with rotated.state.sessions() as session:  # a code is good once: let the next login use a later step
        session.scalars(select(User).where(User.name == "bo")).one().totp_last_step = None
        session.commit()
    assert _login_ok(rotated, "bo", secret)
    assert TotpVault.from_setting(NEW_KEY).is_current(_stored(rotated.state.sessions, "bo"))
    rotated.state.engine.dispose()


def test_a_sealed_secret_without_its_key_refuses_the_login(
    desk_settings: DeskSettings, caplog: pytest.LogCaptureFixture
) -> None:
    sealing = _app(desk_settings, OLD_KEY)
    secret = _user(sealing.state.sessions, "cy", sealing.state.totp_vault)
    sealing.state.engine.dispose()
    for key in (None, NEW_KEY):
        app = _app(desk_settings, key)
        assert not _login_ok(app, "cy", secret)
        app.state.engine.dispose()
    assert "PAYSENTRY_DESK_TOTP_KEY" in caplog.text and secret not in caplog.text


@pytest.mark.parametrize("key", ["not-a-key", "a" * 44, f"{new_key()},short"])
def test_a_bad_key_stops_the_start_naming_the_setting_not_the_key(desk_settings: DeskSettings, key: str) -> None:
    with pytest.raises(ValueError, match="PAYSENTRY_DESK_TOTP_KEY") as refused:
        _app(desk_settings, key)
    assert key not in str(refused.value)


def test_seal_totp_seals_every_clear_secret(desk_settings: DeskSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    clear = _app(desk_settings, None)
    secrets = {name: _user(clear.state.sessions, name, clear.state.totp_vault) for name in ("di", "ed")}
    clear.state.engine.dispose()
    monkeypatch.setenv("PAYSENTRY_DATABASE_URL", desk_settings.database_url)
    runner = CliRunner()
    monkeypatch.delenv("PAYSENTRY_DESK_TOTP_KEY", raising=False)
    refused = runner.invoke(desk_cli, ["users", "seal-totp"])
    assert refused.exit_code == 2 and "PAYSENTRY_DESK_TOTP_KEY is not set" in refused.output
    monkeypatch.setenv("PAYSENTRY_DESK_TOTP_KEY", NEW_KEY)
    done = runner.invoke(desk_cli, ["users", "seal-totp"])
    assert done.exit_code == 0 and "2 TOTP secrets sealed" in done.output
    vault = TotpVault.from_setting(NEW_KEY)
    app = _app(desk_settings, NEW_KEY)
    for name, secret in secrets.items():
        stored = _stored(app.state.sessions, name)
        assert secret not in stored and vault.open(stored) == secret
    app.state.engine.dispose()
    key = runner.invoke(desk_cli, ["totp-key"])
    assert key.exit_code == 0 and TotpVault.from_setting(key.output.strip()).enabled
