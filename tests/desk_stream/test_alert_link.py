"""The desk and the alerts share one acknowledgement (the alerts' state in a real Redis): taking a case
acknowledges its alerts, an alert acknowledged with `paysentry alerts ack` shows as acknowledged on the
case page; an alert's link lands on the payment's case."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from typer.testing import CliRunner

from paysentry.alerts.cli import alerts_app
from paysentry.alerts.model import Alert, build_alert
from paysentry.alerts.notification import Ack
from paysentry.alerts.redis_store import RedisStore
from paysentry.alerts.state import AlertState
from paysentry.contract import Decision
from paysentry.desk import importer
from paysentry.desk.db import AuditEntry, Case
from tests.desk.support import add_user, csrf_of, decision, login

PREFIX = "desk-test:alerts:"
T = TypeVar("T")


@pytest.fixture
def alerts_redis(redis_clean_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PAYSENTRY_REDIS_URL", redis_clean_url)
    monkeypatch.setenv("PAYSENTRY_ALERTS_REDIS_PREFIX", PREFIX)
    monkeypatch.setenv("PAYSENTRY_ALERTS_AUDIT_LOG", str(tmp_path / "alerts-audit.jsonl"))
    return redis_clean_url


def _state_call(url: str, action: Callable[[AlertState], Awaitable[T]]) -> T:
    async def run() -> T:
        store = RedisStore.from_url(url, PREFIX)
        try:
            return await action(AlertState(store))
        finally:
            await store.close()

    return asyncio.run(run())


def _raise_alert(url: str, record: dict[str, Any]) -> Alert:
    alert = build_alert(Decision.model_validate(record))
    assert alert is not None
    _state_call(url, lambda state: state.record_alert(alert, datetime.now(UTC)))
    return alert


def _acks(url: str, alert_id: str) -> dict[str, Ack]:
    return _state_call(url, lambda state: state.acks([alert_id]))


def _import(app: FastAPI, record: dict[str, Any]) -> int:
    with app.state.sessions() as session:
        importer.import_decision(session, record, approvals=app.state.approvals)
        session.commit()
        return session.scalars(select(Case).where(Case.payment_id == record["payment_id"])).one().id


def _form(http: httpx.Client, case_id: int) -> tuple[str, dict[str, str]]:
    page = http.get(f"/cases/{case_id}")
    assert page.status_code == 200
    version = page.text.split('name="version" value="', 1)[1].split('"', 1)[0]
    return page.text, {"csrf_token": csrf_of(page.text), "version": version}


def test_starting_the_review_acknowledges_the_alert(desk_app: FastAPI, http: httpx.Client, alerts_redis: str,
                                                    tmp_path: Path) -> None:  # fmt: skip
    secret = add_user(desk_app.state.sessions, "ana", "analyst")
    record = decision("P1", "e1", action="review", amount="10.00")
    case_id = _import(desk_app, record)
    alert = _raise_alert(alerts_redis, record)
    login(http, "ana", secret)
    page, form = _form(http, case_id)
    assert f'data-alert-id="{alert.alert_id}"' in page and "not acknowledged" in page
    assert _acks(alerts_redis, alert.alert_id) == {}
    assert http.post(f"/cases/{case_id}/review", data=form).status_code == 303
    ack = _acks(alerts_redis, alert.alert_id)[alert.alert_id]
    assert ack.by == "desk:ana" and ack.comment == f"case {case_id}: review started"
    audit_lines = [orjson.loads(line) for line in (tmp_path / "alerts-audit.jsonl").read_bytes().splitlines()]
    assert [(a["action"], a["alert_id"], a["by"]) for a in audit_lines] == [("ack", alert.alert_id, "desk:ana")]
    with desk_app.state.sessions() as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "alert.ack")).all()
        assert (entry.actor, entry.target, entry.after["alerts"]) == ("ana", f"case:{case_id}", [alert.alert_id])
    page, _ = _form(http, case_id)
    assert "acknowledged by desk:ana" in page


def test_an_alert_acked_from_the_command_line_shows_on_the_case(desk_app: FastAPI, http: httpx.Client,
                                                                alerts_redis: str) -> None:  # fmt: skip
    secret = add_user(desk_app.state.sessions, "ana", "analyst")
    record = decision("P1", "e1", action="hold", amount="10.00")
    case_id = _import(desk_app, record)
    alert = _raise_alert(alerts_redis, record)
    result = CliRunner().invoke(alerts_app, ["ack", alert.alert_id, "--by", "bob", "-c", "on it"])
    assert result.exit_code == 0, result.output
    login(http, "ana", secret)
    page, form = _form(http, case_id)
    assert "acknowledged by bob" in page
    assert http.post(f"/cases/{case_id}/review", data=form).status_code == 303
    assert _acks(alerts_redis, alert.alert_id)[alert.alert_id].by == "bob"  # the first ack stands


def test_closing_a_case_acknowledges_its_later_alerts_too(desk_app: FastAPI, http: httpx.Client,
                                                          alerts_redis: str) -> None:  # fmt: skip
    secret = add_user(desk_app.state.sessions, "ana", "analyst")
    first = decision("P1", "e1", action="review", amount="10.00")
    case_id = _import(desk_app, first)
    login(http, "ana", secret)
    _, form = _form(http, case_id)
    http.post(f"/cases/{case_id}/review", data=form)
    second = decision("P1", "e2", action="hold", amount="10.00", rule_id="bank_change")  # a new alert
    _import(desk_app, second)
    alert = _raise_alert(alerts_redis, second)
    _, form = _form(http, case_id)
    response = http.post(f"/cases/{case_id}/reject", data={**form, "verdict": "fraud", "reason": "called"})
    assert response.status_code == 303
    assert _acks(alerts_redis, alert.alert_id)[alert.alert_id].comment == f"case {case_id}: payment rejected"


def test_the_desk_works_on_when_redis_is_away(desk_app: FastAPI, http: httpx.Client,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from devservices.postgres import free_port

    monkeypatch.setenv("PAYSENTRY_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    secret = add_user(desk_app.state.sessions, "ana", "analyst")
    case_id = _import(desk_app, decision("P1", "e1", action="review", amount="10.00"))
    login(http, "ana", secret)
    page, form = _form(http, case_id)
    assert "alerts&#39; state is unavailable" in page or "alerts' state is unavailable" in page
    assert http.post(f"/cases/{case_id}/review", data=form).status_code == 303
    with desk_app.state.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.state == "in_review"


def test_no_alerts_section_without_redis(desk_app: FastAPI, http: httpx.Client,
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.delenv("PAYSENTRY_REDIS_URL", raising=False)
    secret = add_user(desk_app.state.sessions, "ana", "analyst")
    case_id = _import(desk_app, decision("P1", "e1", action="review", amount="10.00"))
    login(http, "ana", secret)
    page, _ = _form(http, case_id)
    assert 'id="alerts"' not in page


def test_an_alert_link_lands_on_the_payments_case(desk_app: FastAPI, http: httpx.Client) -> None:
    secret = add_user(desk_app.state.sessions, "ana", "analyst")
    case_id = _import(desk_app, decision("PAY 7/1", "e1", action="review", amount="10.00"))
    anonymous = http.get("/cases/by-payment/PAY%207%2F1")
    assert anonymous.status_code == 303  # to the login, which then leads back to the link
    assert anonymous.headers["location"] == "/login?next=%2Fcases%2Fby-payment%2FPAY%25207%2F1"
    login(http, "ana", secret)
    found = http.get("/cases/by-payment/PAY%207%2F1")
    assert found.status_code == 303 and found.headers["location"] == f"/cases/{case_id}"
    missing = http.get("/cases/by-payment/P-unknown")
    assert missing.status_code == 404 and "No case yet for this payment" in missing.text
    hostile = http.get("/cases/by-payment/" + "%3Cscript%3E" + "x" * 200)
    assert hostile.status_code == 404 and "<script>" not in hostile.text
