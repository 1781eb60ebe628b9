"""Pages over HTTP against a live server, on both databases: login with TOTP, lockout, CSRF, escaping,
approvals and separation of duties through the forms, concurrent resolutions, the audit page."""

from __future__ import annotations

import threading

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from paysentry.desk import importer
from paysentry.desk.db import AuditEntry, Case, User
from paysentry.desk.security import CLIENT_MAX_FAILURES, MAX_FAILURES
from tests.desk.support import PASSWORD, LiveServer, add_user, csrf_of, decision, login

XSS = "<script>alert(1)</script>"


def _sessions(app: FastAPI) -> sessionmaker[Session]:
    return app.state.sessions


def _import(app: FastAPI, *records: dict) -> list[int]:
    with _sessions(app)() as session:
        for record in records:
            importer.import_decision(session, record, approvals=app.state.approvals)
        session.commit()
        ids = {c.payment_id: c.id for c in session.scalars(select(Case))}
    return [ids[r["payment_id"]] for r in records]


def _case_form(http: httpx.Client, case_id: int) -> dict[str, str]:
    page = http.get(f"/cases/{case_id}")
    assert page.status_code == 200
    version = page.text.split('name="version" value="', 1)[1].split('"', 1)[0]
    return {"csrf_token": csrf_of(page.text), "version": version}


def test_login_needs_password_and_totp(desk_app: FastAPI, http: httpx.Client) -> None:
    secret = add_user(_sessions(desk_app), "ana", "analyst")
    assert secret is not None
    assert http.get("/cases", follow_redirects=False).headers["location"] == "/login"
    assert login(http, "ana", None).status_code == 401  # no code
    wrong = pyotp.TOTP(pyotp.random_base32()).now()
    page = http.get("/login")
    refused = http.post("/login", data={"csrf_token": csrf_of(page.text), "name": "ana", "password": PASSWORD,
                                         "code": wrong})  # fmt: skip
    assert refused.status_code == 401 and "wrong name, password or code" in refused.text
    ok = login(http, "ana", secret)
    assert ok.status_code == 303 and ok.headers["location"] == "/cases"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert http.get("/cases").status_code == 200


def test_a_viewer_logs_in_with_a_password_only(desk_app: FastAPI, http: httpx.Client) -> None:
    assert add_user(_sessions(desk_app), "vic", "viewer") is None
    assert login(http, "vic", None).status_code == 303


def test_an_alert_link_leads_back_to_its_case_after_login(desk_app: FastAPI, http: httpx.Client) -> None:
    secret = add_user(_sessions(desk_app), "ana", "analyst")
    [case_id] = _import(desk_app, decision("PAY 7/1", "e-71"))
    link = "/cases/by-payment/PAY%207%2F1"
    sent = http.get(link, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/login?next=%2Fcases%2Fby-payment%2FPAY%25207%2F1"
    page = http.get(sent.headers["location"])
    carried = page.text.split('name="next" value="', 1)[1].split('"')[0]
    form = {"csrf_token": csrf_of(page.text), "name": "ana", "password": PASSWORD,
            "code": pyotp.TOTP(secret or "").now(), "next": carried}  # fmt: skip
    back = http.post("/login", data=form)
    assert back.status_code == 303 and back.headers["location"] == "/cases/by-payment/PAY%207/1"
    assert http.get(back.headers["location"], follow_redirects=False).headers["location"] == f"/cases/{case_id}"


@pytest.mark.parametrize("target", ["https://evil.example.com/", "//evil.example.com/cases", "/\\evil.example.com",
                                    "javascript:alert(1)", "/cases\r\nSet-Cookie: x=1", "/" + "a" * 600])  # fmt: skip
def test_a_login_never_leads_off_the_desk(desk_app: FastAPI, http: httpx.Client, target: str) -> None:
    secret = add_user(_sessions(desk_app), "ana", "analyst")
    page = http.get("/login", params={"next": target})
    assert 'name="next"' not in page.text
    form = {"csrf_token": csrf_of(page.text), "name": "ana", "password": PASSWORD,
            "code": pyotp.TOTP(secret or "").now(), "next": target}  # fmt: skip
    answer = http.post("/login", data=form)
    assert answer.status_code == 422 if len(target) > 512 else answer.headers["location"] == "/cases"


def test_one_time_password_must_be_changed_first(desk_app: FastAPI, http: httpx.Client) -> None:
    from paysentry.desk.security import create_user

    with _sessions(desk_app)() as session:
        _user, one_time, _uri = create_user(session, "new", "viewer")
        session.commit()
    assert login(http, "new", None, password=one_time).headers["location"] == "/password"
    assert http.get("/cases", follow_redirects=False).headers["location"] == "/password"
    page = http.get("/password")
    short = http.post("/password", data={"csrf_token": csrf_of(page.text), "current_password": one_time,
                                         "new_password": "short"})  # fmt: skip
    assert short.status_code == 422
    done = http.post("/password", data={"csrf_token": csrf_of(page.text), "current_password": one_time,
                                        "new_password": "a much longer secret"})  # fmt: skip
    assert done.status_code == 303 and http.get("/cases").status_code == 200


def test_lockout_after_repeated_failures(desk_app: FastAPI, http: httpx.Client) -> None:
    secret = add_user(_sessions(desk_app), "ana", "analyst")
    for _ in range(MAX_FAILURES - 1):
        assert login(http, "ana", secret, password="wrong password!").status_code == 401
    assert login(http, "ana", secret, password="wrong password!").status_code == 423
    locked = login(http, "ana", secret)  # the right password no longer helps while locked
    assert locked.status_code == 423 and "locked" in locked.text
    with _sessions(desk_app)() as session:
        user = session.scalars(select(User).where(User.name == "ana")).one()
        assert user.locked_until is not None
        failures = session.scalars(select(AuditEntry).where(AuditEntry.action == "login.failed")).all()
        assert len(failures) == MAX_FAILURES + 1


def test_forms_without_the_csrf_token_are_refused(desk_app: FastAPI, http: httpx.Client) -> None:
    secret = add_user(_sessions(desk_app), "ana", "analyst")
    [case_id] = _import(desk_app, decision("P1", "e1", action="review", amount="10.00"))
    page = http.get("/login")
    no_token = http.post("/login", data={"csrf_token": "forged", "name": "ana", "password": PASSWORD, "code": "1"})
    assert no_token.status_code == 403
    assert csrf_of(page.text)
    login(http, "ana", secret)
    form = _case_form(http, case_id)
    refused = http.post(f"/cases/{case_id}/reject", data={**form, "csrf_token": "forged", "verdict": "fraud"})
    assert refused.status_code == 403
    missing = http.post(f"/cases/{case_id}/reject", data={"version": form["version"], "verdict": "fraud"})
    assert missing.status_code in (403, 422)
    with _sessions(desk_app)() as session:
        assert session.get(Case, case_id).state == "open"  # type: ignore[union-attr]


def test_vendor_names_are_escaped(desk_app: FastAPI, http: httpx.Client) -> None:
    secret = add_user(_sessions(desk_app), "ana", "analyst")
    [case_id] = _import(desk_app, decision("P1", "e1", vendor_name=XSS, rule_id="dup<b>x</b>"))
    login(http, "ana", secret)
    for page in (http.get("/cases"), http.get(f"/cases/{case_id}")):
        assert XSS not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "<b>x</b>" not in page.text
        assert "'unsafe-inline'" not in page.headers["content-security-policy"]
        assert "<script>" not in page.text.replace('<script src="/static/desk.js" defer></script>', "")


def test_a_case_shows_the_bank_details_and_both_model_scores(desk_app: FastAPI, http: httpx.Client) -> None:
    record = decision("P-BANK", "e-bank", rule_id="bank_change_bec")
    record["explanation"]["features"] = {"days_since_bank_change": 2.5, "account_new_for_vendor": True}
    record["explanation"]["models"] = {"model": "fraud-lr@v3", "model_score": 0.93, "anomaly_score": 0.41}
    quiet = decision("P-QUIET", "e-quiet")
    secret = add_user(_sessions(desk_app), "ana", "analyst")
    [bank_case, quiet_case] = _import(desk_app, record, quiet)
    login(http, "ana", secret)
    page = http.get(f"/cases/{bank_case}").text
    assert "changed 2.5 days before this payment" in page and "account new for this vendor" in page
    assert "scores: model 0.930 (fraud-lr@v3)" in page and "anomaly 0.410" in page
    other = http.get(f"/cases/{quiet_case}").text
    assert "no change on record" in other and "account new for this vendor" not in other


def test_two_leads_release_a_large_hold_through_the_forms(desk_app: FastAPI, live_desk: LiveServer) -> None:
    sessions = _sessions(desk_app)
    secrets = {name: add_user(sessions, name, "lead") for name in ("lea", "leo")}
    [case_id] = _import(desk_app, decision("P1", "e1", action="hold", amount="80000.00"))
    for name in ("lea", "leo"):
        with httpx.Client(base_url=live_desk.url) as http:
            login(http, name, secrets[name])
            response = http.post(f"/cases/{case_id}/release", data={**_case_form(http, case_id), "verdict": "legit"})
            assert response.status_code == 303
            expected = "approved" if name == "lea" else "released"
            assert response.headers["location"].endswith(f"msg={expected}")
    with sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None and (case.state, case.resolved_by) == ("released", "leo")


def test_separation_of_duties_is_enforced_by_the_server(desk_app: FastAPI, http: httpx.Client) -> None:
    secret = add_user(_sessions(desk_app), "ana", "analyst", erp_user_id="u-ap-1")
    [case_id] = _import(desk_app, decision("P1", "e1", action="review", amount="10.00", created_by="u-ap-1"))
    login(http, "ana", secret)
    page = http.get(f"/cases/{case_id}")
    assert "you cannot decide this case" in page.text
    for path, verdict in (("release", "legit"), ("reject", "fraud")):
        response = http.post(f"/cases/{case_id}/{path}", data={**_case_form(http, case_id), "verdict": verdict})
        assert response.status_code == 403 and "separation of duties" in response.text


def test_concurrent_resolutions_over_http_one_wins_the_other_gets_409(desk_app: FastAPI, live_desk: LiveServer) -> None:
    sessions = _sessions(desk_app)
    secrets = {name: add_user(sessions, name, "analyst") for name in ("ana", "bob")}
    [case_id] = _import(desk_app, decision("P1", "e1", action="review", amount="10.00"))
    clients = {name: httpx.Client(base_url=live_desk.url, timeout=60) for name in secrets}
    forms = {}
    for name, client in clients.items():
        login(client, name, secrets[name])
        forms[name] = _case_form(client, case_id)  # both see the same version
    barrier = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def submit(name: str, path: str, verdict: str) -> None:
        barrier.wait()
        response = clients[name].post(f"/cases/{case_id}/{path}", data={**forms[name], "verdict": verdict})
        statuses[name] = response.status_code

    threads = [threading.Thread(target=submit, args=("ana", "release", "legit")),
               threading.Thread(target=submit, args=("bob", "reject", "fraud"))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for client in clients.values():
        client.close()
    assert sorted(statuses.values()) == [303, 409]
    winner = next(name for name, status in statuses.items() if status == 303)
    with sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.resolved_by == winner


def test_audit_page_shows_steps_and_the_log_refuses_rewrites(desk_app: FastAPI, http: httpx.Client) -> None:
    sessions = _sessions(desk_app)
    secret = add_user(sessions, "lea", "lead")
    [case_id] = _import(desk_app, decision("P1", "e1", action="review", amount="10.00"))
    login(http, "lea", secret)
    http.post(f"/cases/{case_id}/reject", data={**_case_form(http, case_id), "verdict": "fraud"})
    page = http.get("/audit")
    assert page.status_code == 200
    for action in ("login", "case.view", "case.rejected", "user.created", "config.approvals"):
        assert f">{action}<" in page.text
    with sessions() as session:
        for statement in ("UPDATE desk_audit SET actor = 'mallory'", "DELETE FROM desk_audit"):
            try:
                session.execute(text(statement))
                session.commit()
                raise AssertionError(f"{statement} was allowed")
            except Exception as exc:  # the database's own error type differs between the two
                session.rollback()
                assert "append-only" in str(exc)
        assert session.scalar(select(AuditEntry).where(AuditEntry.actor == "mallory")) is None


def test_an_analyst_cannot_open_the_audit_page(desk_app: FastAPI, http: httpx.Client) -> None:
    secret = add_user(_sessions(desk_app), "ana", "analyst")
    login(http, "ana", secret)
    assert http.get("/audit").status_code == 403
    assert http.get("/users").status_code == 403


def test_bulk_release_from_the_queue(desk_app: FastAPI, http: httpx.Client) -> None:
    secret = add_user(_sessions(desk_app), "ana", "analyst")
    ids = _import(desk_app, decision("P1", "e1", action="review", amount="10.00"),
                  decision("P2", "e2", action="hold", amount="90000.00"))  # fmt: skip
    login(http, "ana", secret)
    page = http.get("/cases")
    form = {"csrf_token": csrf_of(page.text), "reason": "known vendor", "case_id": [str(i) for i in ids]}
    response = http.post("/cases/bulk-release", data=form)
    assert response.status_code == 303 and "released%201" in response.headers["location"]
    with _sessions(desk_app)() as session:
        assert [session.get(Case, i).state for i in ids] == ["released", "open"]  # type: ignore[union-attr]


def test_a_totp_code_logs_in_once(desk_app: FastAPI, live_desk: LiveServer) -> None:
    secret = add_user(_sessions(desk_app), "ana", "analyst")
    assert secret is not None
    code = pyotp.TOTP(secret).now()
    with httpx.Client(base_url=live_desk.url) as first, httpx.Client(base_url=live_desk.url) as second:
        for client, expected in ((first, 303), (second, 401)):
            page = client.get("/login")
            form = {"csrf_token": csrf_of(page.text), "name": "ana", "password": PASSWORD, "code": code}
            assert client.post("/login", data=form).status_code == expected


def test_a_client_with_many_failures_is_throttled(desk_app: FastAPI, http: httpx.Client) -> None:
    for attempt in range(CLIENT_MAX_FAILURES):
        assert login(http, f"nobody{attempt}", None).status_code == 401
    secret = add_user(_sessions(desk_app), "ana", "analyst")
    throttled = login(http, "ana", secret)  # right credentials, but from a client that kept guessing
    assert throttled.status_code == 429


def test_admin_adds_a_user_and_an_analyst_assigns_comments_and_logs_out(desk_app: FastAPI, http: httpx.Client) -> None:
    sessions = _sessions(desk_app)
    admin_secret = add_user(sessions, "root", "admin")
    [case_id] = _import(desk_app, decision("P1", "e1", action="review", amount="10.00"))
    login(http, "root", admin_secret)
    page = http.get("/users")
    created = http.post("/users", data={"csrf_token": csrf_of(page.text), "name": "ana", "role": "analyst",
                                        "erp_user_id": "u-risk-1"})  # fmt: skip
    assert created.status_code == 200
    assert "One-time password" in created.text and "otpauth://totp/" in created.text
    form = _case_form(http, case_id)
    assert http.post(f"/cases/{case_id}/assign", data={**form, "assignee": "ana"}).status_code == 303
    comment_form = {"csrf_token": form["csrf_token"], "body": "called the vendor <b>back</b>\x00"}
    assert http.post(f"/cases/{case_id}/comment", data=comment_form).status_code == 303
    case_page = http.get(f"/cases/{case_id}").text
    assert "called the vendor &lt;b&gt;back&lt;/b&gt;" in case_page
    with sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.state == "in_review" and case.assignee is not None
        assert case.assignee.name == "ana"
    assert http.post("/logout", data={"csrf_token": form["csrf_token"]}).status_code == 303
    assert http.get("/cases", follow_redirects=False).status_code == 303
