"""Who may use the desk: users and roles, passwords (argon2), TOTP, lockout, sessions and API tokens.

Roles: `viewer` reads; `analyst` works cases, rejects payments and releases those whose policy one
analyst may release; `lead` and `treasury` give the approvals policies ask of them; `admin` manages
users and tokens and counts for any approval. Every role that can release money (analyst, lead,
treasury, admin) must log in with a TOTP code as well as the password.

Login throttling: 5 failed logins in a row lock the account for 15 minutes; more than 20 failures from
one client address in 15 minutes refuse that client for the rest of the window. Sessions and API
tokens are random secrets of which the database keeps only a SHA-256 (they are long and random, so a
slow hash adds nothing); passwords are kept as argon2id hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from datetime import timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from paysentry.desk import audit
from paysentry.desk.db import ApiToken, AuditEntry, User, WebSession, utcnow
from paysentry.desk.totp_vault import TotpVault, VaultError

ROLES = ("viewer", "analyst", "lead", "treasury", "admin")
MFA_ROLES = frozenset({"analyst", "lead", "treasury", "admin"})
SCOPES = frozenset({"cases:read", "cases:write", "payments:read", "audit:read", "kpis:read"})
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
CLIENT_WINDOW = timedelta(minutes=15)
CLIENT_MAX_FAILURES = 20
MIN_PASSWORD = 12
MAX_PASSWORD = 256
TOTP_ISSUER = "paysentry desk"

NO_KEY = TotpVault([])  # secrets in clear: a desk without PAYSENTRY_DESK_TOTP_KEY
log = logging.getLogger("paysentry.desk")

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))  # compared against when the name is unknown (same timing)


class LoginRefused(Exception):
    """A login that did not succeed; the message is safe to show (it never says which factor was wrong)."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return False


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def create_user(
    session: Session,
    name: str,
    role: str,
    *,
    erp_user_id: str | None = None,
    actor: str = "cli",
    vault: TotpVault = NO_KEY,
) -> tuple[User, str, str | None]:
    """A new user with a one-time password (to be changed at first login) and, for roles that need
    one, a TOTP secret. Returns the user, the password and the TOTP provisioning URI (or None)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError("a user name is 1 to 64 letters, digits, '-', '_' or '.'")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise ValueError(f"user {name!r} exists already")
    password = secrets.token_urlsafe(15)
    secret = pyotp.random_base32() if role in MFA_ROLES else None
    user = User(name=name, role=role, password_hash=hash_password(password), password_expired=True,
                totp_secret=vault.seal(secret) if secret else None, erp_user_id=erp_user_id, failed_logins=0,
                disabled=False)  # fmt: skip
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="user.created", target=f"user:{name}",
                 after={"role": role, "erp_user_id": erp_user_id, "totp": secret is not None})  # fmt: skip
    uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=TOTP_ISSUER) if secret else None
    return user, password, uri


def _client_failures(session: Session, client: str | None) -> int:
    if not client:
        return 0
    since = utcnow() - CLIENT_WINDOW
    query = select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "login.failed", AuditEntry.client == client[:64], AuditEntry.at >= since
    )
    return int(session.scalar(query) or 0)


def authenticate(
    session: Session, name: str, password: str, code: str, client: str | None, vault: TotpVault = NO_KEY
) -> User:
    """The user, when name, password and (for roles that need it) TOTP code are right and neither the
    account nor the client is locked out; LoginRefused otherwise. Every attempt is audited; the caller
    commits either way. A TOTP secret not sealed with the vault's first key is sealed again."""
    name = name.replace("\x00", "")[:64]
    if _client_failures(session, client) >= CLIENT_MAX_FAILURES:
        audit.record(session, actor=name[:64] or "-", action="login.throttled", client=client)
        raise LoginRefused("too many failed logins from your address; try again later", status=429)
    user = session.scalar(select(User).where(User.name == name[:64]))
    if user is None:
        password_matches(_DUMMY_HASH, password)
        audit.record(session, actor=name[:64] or "-", action="login.failed", client=client, after={"why": "unknown"})
        raise LoginRefused("wrong name, password or code")
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        audit.record(session, actor=user.name, action="login.failed", client=client, after={"why": "locked"})
        raise LoginRefused("account locked after too many failed logins; try again later", status=423)
    ok = password_matches(user.password_hash, password) and not user.disabled
    if ok and user.totp_secret:
        secret = _open_secret(vault, user)
        step = _fresh_totp_step(secret, code.strip(), user.totp_last_step) if secret else None
        ok = step is not None
        if step is not None and secret:
            user.totp_last_step = step
            if not vault.is_current(user.totp_secret):
                user.totp_secret = vault.seal(secret)
    elif ok and user.role in MFA_ROLES:
        ok = False  # a role that moves money never logs in without a second factor
    if not ok:
        user.failed_logins += 1
        why = "bad credentials"
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            why = "locked"
        audit.record(session, actor=user.name, action="login.failed", client=client, after={"why": why})
        if why == "locked":
            raise LoginRefused("account locked after too many failed logins; try again later", status=423)
        raise LoginRefused("wrong name, password or code")
    user.failed_logins = 0
    user.locked_until = None
    audit.record(session, actor=user.name, action="login", client=client, after={"role": user.role})
    return user


def _open_secret(vault: TotpVault, user: User) -> str | None:
    try:
        return vault.open(user.totp_secret or "")
    except VaultError as exc:
        log.error("login refused for desk user id %s: %s", user.id, exc)
        return None


def seal_all(session: Session, vault: TotpVault) -> int:
    """Seal every TOTP secret not sealed with the vault's first key (after a key is set or rotated); the
    number sealed. VaultError when one cannot be opened."""
    if not vault.enabled:
        raise VaultError("PAYSENTRY_DESK_TOTP_KEY is not set")
    sealed = 0
    for user in session.scalars(select(User).where(User.totp_secret.is_not(None))):
        stored = user.totp_secret or ""
        if not vault.is_current(stored):
            user.totp_secret = vault.seal(vault.open(stored))
            sealed += 1
    if sealed:
        audit.record(session, actor="cli", action="totp.sealed", after={"users": sealed})
    return sealed


def _fresh_totp_step(secret: str, code: str, last_step: int | None) -> int | None:
    """The 30-second step `code` belongs to (now, or one step either side for clock drift), when that
    step is later than the last one used: a code seen once cannot log in again."""
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(time.time()) // totp.interval
    for step in (now_step - 1, now_step, now_step + 1):
        if hmac.compare_digest(totp.at(step * totp.interval), code) and (last_step is None or step > last_step):
            return step
    return None


def change_password(session: Session, user: User, current: str, new: str, client: str | None) -> None:
    if not password_matches(user.password_hash, current):
        raise ValueError("the current password is wrong")
    check_new_password(new)
    if new == current:
        raise ValueError("choose a password different from the current one")
    user.password_hash = hash_password(new)
    user.password_expired = False
    audit.record(session, actor=user.name, action="user.password", target=f"user:{user.name}", client=client)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_session(session: Session, user: User, client: str | None, hours: float) -> tuple[str, WebSession]:
    """A new login session: the raw cookie value (only ever in the cookie) and its row."""
    raw = secrets.token_urlsafe(32)
    row = WebSession(token_hash=_digest(raw), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                     expires_at=utcnow() + timedelta(hours=hours), client=(client or "")[:64] or None)  # fmt: skip
    session.add(row)
    session.execute(delete(WebSession).where(WebSession.expires_at < utcnow()))
    return raw, row


def session_for(session: Session, raw: str | None) -> WebSession | None:
    if not raw or len(raw) > 128:
        return None
    row = session.get(WebSession, _digest(raw))
    if row is None or row.expires_at <= utcnow() or row.user.disabled:
        return None
    return row


def end_session(session: Session, raw: str | None) -> None:
    if raw and len(raw) <= 128:
        session.execute(delete(WebSession).where(WebSession.token_hash == _digest(raw)))


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def create_token(session: Session, name: str, scopes: list[str], actor: str = "cli") -> str:
    """A new API token with `scopes`; returns the raw token (shown once, stored only hashed)."""
    unknown = sorted(set(scopes) - SCOPES)
    if unknown or not scopes:
        raise ValueError(f"unknown scope(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(sorted(SCOPES))}")
    if not name or len(name) > 64:
        raise ValueError("a token name is 1 to 64 characters")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise ValueError(f"token {name!r} exists already")
    raw = "psd_" + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=_digest(raw), scopes=",".join(sorted(set(scopes))), revoked=False))
    audit.record(session, actor=actor, action="token.created", target=f"token:{name}", after={"scopes": sorted(scopes)})
    return raw


def token_for(session: Session, raw: str | None) -> ApiToken | None:
    if not raw or len(raw) > 128:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(raw)))
    return None if token is None or token.revoked else token
