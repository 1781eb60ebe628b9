"""The JSON API over HTTP against a live server, on both databases: tokens, scopes, the ERP's question."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from paysentry.desk import cases, importer
from paysentry.desk.db import ApiToken, Case
from paysentry.desk.security import create_token
from tests.desk.support import add_user, decision, get_user


def _token(sessions: sessionmaker[Session], name: str, scopes: list[str]) -> dict[str, str]:
    with sessions() as session:
        raw = create_token(session, name, scopes)
        session.commit()
    return {"Authorization": f"Bearer {raw}"}


def _sessions(app: FastAPI) -> sessionmaker[Session]:
    return app.state.sessions


def test_401_without_a_valid_token_and_403_without_the_scope(desk_app: FastAPI, http: httpx.Client) -> None:
    sessions = _sessions(desk_app)
    reader = _token(sessions, "reader", ["cases:read"])
    assert http.get("/api/v1/cases").status_code == 401
    assert http.get("/api/v1/cases", headers={"Authorization": "Bearer psd_nope"}).status_code == 401
    assert http.get("/api/v1/cases", headers={"Authorization": "Basic abc"}).status_code == 401
    response = http.get("/api/v1/cases", headers=reader)
    assert response.status_code == 200 and response.json() == []
    assert http.get("/api/v1/payments/P1", headers=reader).status_code == 403
    assert http.post("/api/v1/decisions", headers=reader, json=[]).status_code == 403
    assert http.get("/api/v1/audit", headers=reader).status_code == 403
    with sessions() as session:
        session.scalars(select(ApiToken).where(ApiToken.name == "reader")).one().revoked = True
        session.commit()
    assert http.get("/api/v1/cases", headers=reader).status_code == 401


def test_tokens_are_stored_hashed(desk_app: FastAPI) -> None:
    sessions = _sessions(desk_app)
    header = _token(sessions, "erp", ["payments:read"])
    raw = header["Authorization"].removeprefix("Bearer ")
    with sessions() as session:
        stored = session.scalars(select(ApiToken)).one()
    assert raw not in (stored.token_hash, stored.name, stored.scopes)
    assert len(stored.token_hash) == 64


def test_import_through_the_api_is_idempotent_and_refuses_bad_records(desk_app: FastAPI, http: httpx.Client) -> None:
    writer = _token(_sessions(desk_app), "stream", ["cases:write", "cases:read"])
    records = [decision("P1", "e1", action="hold"), decision("P2", "e2", action="allow"), {"event_id": "x"}]
    first = http.post("/api/v1/decisions", headers=writer, json=records).json()
    assert (first["imported"], first["duplicates"], [r["index"] for r in first["refused"]]) == (2, 0, [2])
    again = http.post("/api/v1/decisions", headers=writer, json=records[:2]).json()
    assert (again["imported"], again["duplicates"]) == (0, 2)
    listed = http.get("/api/v1/cases", headers=writer, params={"state": "open"}).json()
    assert [c["payment_id"] for c in listed] == ["P1"]
    assert listed[0]["payee_account_masked"] == "****1234"
    detail = http.get(f"/api/v1/cases/{listed[0]['id']}", headers=writer).json()
    assert [d["event_id"] for d in detail["decisions"]] == ["e1"]
    assert (
        http.post(f"/api/v1/cases/{listed[0]['id']}/comments", headers=writer, json={"body": "seen"}).status_code == 201
    )
    too_many = [decision(f"P{i}", f"x{i}") for i in range(1001)]
    assert http.post("/api/v1/decisions", headers=writer, json=too_many).status_code == 422


def test_the_erp_question_may_this_payment_go_out(desk_app: FastAPI, http: httpx.Client, approvals) -> None:
    sessions = _sessions(desk_app)
    erp = _token(sessions, "erp", ["payments:read"])
    add_user(sessions, "ana", "analyst")
    with sessions() as session:
        importer.import_decision(session, decision("FINE", "e0", action="allow"))
        importer.import_decision(session, decision("HELD", "e1", action="review", amount="10.00"), approvals=approvals)
        session.commit()
    assert http.get("/api/v1/payments/NEVER-SEEN", headers=erp).status_code == 404
    assert http.get("/api/v1/payments/FINE", headers=erp).json()["may_go_out"] is True
    held = http.get("/api/v1/payments/HELD", headers=erp).json()
    assert (held["may_go_out"], held["case_state"], held["latest_decision"]["action"]) == (False, "open", "review")
    with sessions() as session:
        case = session.scalars(select(Case).where(Case.payment_id == "HELD")).one()
        cases.release(session, case, case.version, get_user(session, "ana"), verdict="legit", typology=None,
                      reason="vendor confirmed", approvals=approvals)  # fmt: skip
        session.commit()
    released = http.get("/api/v1/payments/HELD", headers=erp).json()
    assert released["may_go_out"] is True
    assert released["case"]["released_by"] == "ana"


def test_api_responses_carry_security_headers(desk_app: FastAPI, http: httpx.Client) -> None:
    response = http.get("/api/v1/cases")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_an_oversized_body_is_refused(desk_app: FastAPI, http: httpx.Client) -> None:
    writer = _token(_sessions(desk_app), "stream", ["cases:write"])
    body = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    response = http.post("/api/v1/decisions", headers={**writer, "content-type": "application/json"}, content=body)
    assert response.status_code == 413


def test_a_search_the_database_cannot_run_is_a_client_error(
    desk_app: FastAPI, http: httpx.Client, database_url: str
) -> None:
    reader = _token(_sessions(desk_app), "reader", ["cases:read"])
    response = http.get("/api/v1/cases", headers=reader, params={"vendor": "V\x00", "company": "x"})
    if database_url.startswith("postgresql"):  # PostgreSQL cannot search for a NUL character
        assert response.status_code == 422 and "NUL" in response.json()["detail"]
    else:
        assert response.status_code == 200 and response.json() == []
    assert http.get("/api/v1/cases", headers=reader, params={"limit": "100000"}).status_code == 422
    assert http.get("/api/v1/cases", headers=reader, params={"rule": "a' OR '1'='1"}).status_code == 422
