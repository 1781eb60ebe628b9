"""Helpers of the desk's tests: a live uvicorn server, users with known credentials, decisions."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from devservices.postgres import free_port
from paysentry.desk.db import User
from paysentry.desk.security import create_user, hash_password

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class LiveServer:
    """The app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: FastAPI):
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def add_user(sessions: sessionmaker[Session], name: str, role: str, erp_user_id: str | None = None) -> str | None:
    """A user whose password is PASSWORD (already changed from the one-time one); returns the TOTP secret."""
    with sessions() as session:
        user, _password, _uri = create_user(session, name, role, erp_user_id=erp_user_id, actor="test")
        user.password_hash = hash_password(PASSWORD)
        user.password_expired = False
        session.commit()
        return user.totp_secret


def get_user(session: Session, name: str) -> User:
    from sqlalchemy import select

    return session.scalars(select(User).where(User.name == name)).one()


def csrf_of(page: str) -> str:
    match = _CSRF.search(page)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: httpx.Client, name: str, secret: str | None, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    code = pyotp.TOTP(secret).now() if secret else ""
    form = {"csrf_token": csrf_of(page.text), "name": name, "password": password, "code": code}
    return client.post("/login", data=form)


def decision(
    payment_id: str,
    event_id: str,
    *,
    action: str = "hold",
    amount: str = "60000.00",
    company: str = "US01",
    vendor_id: str = "V100",
    vendor_name: str = "Acme Supplies",
    created_by: str = "u-ap-1",
    approved_by: tuple[str, ...] = ("u-fin-1",),
    rule_id: str = "duplicate_payment",
    event_time: datetime | None = None,
    account: str = "****1234",
    currency: str = "USD",
    severity: str = "high",
) -> dict[str, Any]:
    """A decision record shaped like the engine's (decision.schema.json plus the engine's extras)."""
    when = event_time or datetime(2026, 10, 6, 10, 0, tzinfo=UTC)
    hits = []
    if action != "allow":
        hits.append({"rule_id": rule_id, "severity": severity, "action": action,
                     "reason": f"{amount} {currency} to {vendor_id} looks like {rule_id}",
                     "labels": {"typology": rule_id}, "annotations": {}})  # fmt: skip
    return {
        "payment_id": payment_id,
        "event_id": event_id,
        "event_time": when.isoformat(),
        "event_type": "payment.released",
        "vendor_id": vendor_id,
        "company_code": company,
        "action": action,
        "risk_score": 0.8 if action != "allow" else 0.1,
        "severity": severity if action != "allow" else None,
        "rule_hits": hits,
        "shadow_hits": [],
        "model_score": 0.9,
        "explanation": {
            "features": {"amount_ratio_median_30d": 7.5},
            "payment": {
                "amount": amount,
                "currency": currency,
                "vendor_name": vendor_name,
                "created_by": created_by,
                "approved_by": list(approved_by),
                "payee_account_masked": account,
            },  # fmt: skip
        },
        "ruleset_version": "sha256:test",
        "model_version": "hst-test",
    }


def later(minutes: int) -> datetime:
    return datetime(2026, 10, 6, 10, 0, tzinfo=UTC) + timedelta(minutes=minutes)
