"""The desk's pages: login, the queue, a case, the audit log, users.

A session lives in the `desk_session` cookie (HttpOnly, SameSite=Strict, Secure over https). Every
form carries the session's CSRF token (the login form a token of its own, double-submitted in a
cookie) and a POST without the right one is refused with 403. A user whose password was a one-time
password is sent to change it before anything else. A page opened without a session (an alert's link
to a case) is where the login leads back to, when it is a path of this desk.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from paysentry.desk import alert_link, audit, cases, queries, security
from paysentry.desk.approvals import is_erp_party
from paysentry.desk.db import Case, Comment, User, WebSession
from paysentry.desk.deps import client_of, db_session, render

web_router = APIRouter()
SESSION_COOKIE = "desk_session"
LOGIN_CSRF_COOKIE = "desk_login_csrf"
DB = Annotated[Session, Depends(db_session)]
CsrfField = Annotated[str, Form(max_length=128)]
AUDIT_ROLES = frozenset({"lead", "treasury", "admin"})
WORKING_ROLES = frozenset({"analyst", "lead", "treasury", "admin"})
HOME = "/cases"
MAX_NEXT = 512


def _secure(request: Request) -> bool:
    setting = request.app.state.settings.desk_secure_cookies
    return request.url.scheme == "https" if setting is None else bool(setting)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def current(request: Request, session: DB) -> WebSession:
    """The logged-in session, or a redirect to the login page."""
    row = security.session_for(session, request.cookies.get(SESSION_COOKIE))
    if row is None:
        raise HTTPException(303, "login required", headers={"Location": _login_then(request)})
    if row.user.password_expired and request.url.path != "/password":
        raise HTTPException(303, "password change required", headers={"Location": "/password"})
    return row


Current = Annotated[WebSession, Depends(current)]


def _login_then(request: Request) -> str:
    """The login page, told to come back to the page asked for (a GET of anything but the queue)."""
    wanted = quote(request.url.path, safe="/") + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET" or wanted in ("/", HOME) or safe_next(wanted) is None:
        return "/login"
    return "/login?" + urlencode({"next": wanted})


def safe_next(value: str | None) -> str | None:
    """`value` when it is a path on this desk (so a login cannot be made to lead elsewhere), else None."""
    if not value or len(value) > MAX_NEXT or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else None


def _check_csrf(web: WebSession, token: str) -> None:
    if not security.csrf_ok(web.csrf_token, token):
        raise HTTPException(403, "the form's CSRF token is missing or wrong; reload the page and try again")


def _need(web: WebSession, roles: frozenset[str]) -> User:
    if web.user.role not in roles:
        raise HTTPException(403, f"your role ({web.user.role}) cannot do this")
    return web.user


@web_router.get("/")
def home() -> Response:
    return _redirect("/cases")


@web_router.get("/login")
def login_page(
    request: Request, error: str | None = None, next_page: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", csrf=token, error=error, user=None, next=safe_next(next_page))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request))
    return response


@web_router.post("/login")
def login(
    request: Request,
    session: DB,
    csrf_token: CsrfField,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=security.MAX_PASSWORD)],
    code: Annotated[str, Form(max_length=10)] = "",
    next_page: Annotated[str, Form(alias="next", max_length=MAX_NEXT)] = "",
) -> Response:
    if not security.csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token):
        raise HTTPException(403, "the login form's CSRF token is missing or wrong; reload the page")
    client = client_of(request)
    try:
        user = security.authenticate(session, name, password, code, client, request.app.state.totp_vault)
    except security.LoginRefused as exc:
        session.commit()
        return render(request, "login.html", status=exc.status, csrf=csrf_token, error=str(exc), user=None,
                      next=safe_next(next_page))  # fmt: skip
    raw, _row = security.create_session(session, user, client, request.app.state.settings.desk_session_hours)
    session.commit()
    response = _redirect("/password" if user.password_expired else safe_next(next_page) or HOME)
    response.set_cookie(SESSION_COOKIE, raw, httponly=True, samesite="strict", secure=_secure(request), path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@web_router.post("/logout")
def logout(request: Request, session: DB, web: Current, csrf_token: CsrfField) -> Response:
    _check_csrf(web, csrf_token)
    audit.record(session, actor=web.user.name, action="logout", client=client_of(request))
    security.end_session(session, request.cookies.get(SESSION_COOKIE))
    session.commit()
    response = _redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@web_router.get("/password")
def password_page(request: Request, web: Current, error: str | None = None) -> Response:
    return render(request, "password.html", user=web.user, csrf=web.csrf_token, error=error)


@web_router.post("/password")
def password_change(
    request: Request,
    session: DB,
    web: Current,
    csrf_token: CsrfField,
    current_password: Annotated[str, Form(max_length=security.MAX_PASSWORD)],
    new_password: Annotated[str, Form(max_length=security.MAX_PASSWORD)],
) -> Response:
    _check_csrf(web, csrf_token)
    try:
        security.change_password(session, web.user, current_password, new_password, client_of(request))
    except ValueError as exc:
        return render(request, "password.html", status=422, user=web.user, csrf=web.csrf_token, error=str(exc))
    session.commit()
    return _redirect("/cases")


@web_router.get("/cases")
def queue(request: Request, session: DB, web: Current) -> Response:
    try:
        filters = queries.CaseFilters.model_validate(dict(request.query_params)).cleaned()
    except ValueError:
        raise HTTPException(422, "a filter value is not valid") from None
    if "state" not in request.query_params:
        filters = filters.model_copy(update={"state": "active"})
    rows = queries.list_cases(session, filters)
    users = list(session.scalars(select(User).where(User.role != "viewer").order_by(User.name)))
    return render(request, "queue.html", user=web.user, csrf=web.csrf_token, cases=rows, filters=filters,
                  users=users, message=request.query_params.get("msg"))  # fmt: skip


@web_router.post("/cases/bulk-release")
async def bulk_release(request: Request, session: DB, web: Current) -> Response:
    form = await request.form(max_files=0, max_fields=600)
    _check_csrf(web, str(form.get("csrf_token", "")))
    user = _need(web, WORKING_ROLES)
    try:
        ids = [int(str(v)) for v in form.getlist("case_id")][:500]
    except ValueError:
        raise HTTPException(422, "case ids are numbers") from None
    reason = str(form.get("reason", ""))[: cases.MAX_REASON]
    try:
        released, skipped = cases.bulk_release(
            session, ids, user, reason=reason, approvals=request.app.state.approvals, client=client_of(request)
        )
    except cases.CaseError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    message = f"released {len(released)}; left {len(skipped)}" + (
        " (" + "; ".join(f"#{k}: {v}" for k, v in list(skipped.items())[:5]) + ")" if skipped else ""
    )
    return _redirect("/cases?msg=" + quote(message[:400]))


def _case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise HTTPException(404, "no such case")
    return case


@web_router.get("/cases/by-payment/{payment_id:path}")
def case_by_payment(payment_id: str, request: Request, session: DB, web: Current) -> Response:
    """Where an alert's link lands: the payment's case, or a page saying there is none yet."""
    case = session.scalar(select(Case).where(Case.payment_id == payment_id)) if len(payment_id) <= 128 else None
    if case is None:
        message = "No case yet for this payment: the desk has no flagged decision on it (yet)."
        return render(request, "error.html", status=404, code=404, message=message, user=None)
    return _redirect(f"/cases/{case.id}")


@web_router.get("/cases/{case_id}")
def case_page(case_id: int, request: Request, session: DB, web: Current) -> Response:
    case = _case(session, case_id)
    decisions = queries.case_decisions(session, case.payment_id)
    comments = list(session.scalars(select(Comment).where(Comment.case_id == case.id).order_by(Comment.id)))
    approvals_cfg = request.app.state.approvals
    policy = approvals_cfg.policy_for(case.company_code, case.action, case.amount, case.currency)
    given = cases.approvals_given(session, case)
    users = list(session.scalars(select(User).where(User.role != "viewer").order_by(User.name)))
    typologies = sorted({(h.get("labels") or {}).get("typology", "") for d in decisions
                         for h in d.record.get("rule_hits", [])} - {""})  # fmt: skip
    audit.record(session, actor=web.user.name, action="case.view", target=f"case:{case.id}", client=client_of(request))
    session.commit()
    alert_state = alert_link.alerts_for_page(alert_link.alert_link(request.app), session, case)
    return render(request, "case.html", user=web.user, csrf=web.csrf_token, case=case, decisions=decisions,
                  comments=comments, policy=policy, approvals=given, users=users, typologies=typologies,
                  history=queries.vendor_history(session, case.vendor_id),
                  erp_party=is_erp_party(web.user.name, web.user.erp_user_id, case.erp_users),
                  message=request.query_params.get("msg"), alert_state=alert_state)  # fmt: skip


def _act(request: Request, session: Session, case: Case, work: Any, ack: str | None = None, by: str = "") -> Response:
    """Do `work`; when it took the case into review or closed it, acknowledge its alerts (`ack`: why)."""
    try:
        outcome = work()
    except cases.CaseError as exc:
        session.rollback()
        return render(request, "error.html", status=exc.status, code=exc.status, message=str(exc),
                      back=f"/cases/{case.id}", user=None)  # fmt: skip
    session.commit()
    if ack and case.state != "open":
        alert_link.acknowledge_case_alerts(alert_link.alert_link(request.app), session, case,
                                           by, ack, client_of(request))  # fmt: skip
        session.commit()
    return _redirect(f"/cases/{case.id}?msg=" + quote(str(outcome or "saved")))


VersionField = Annotated[int, Form(ge=1)]
TextField = Annotated[str, Form(max_length=cases.MAX_REASON)]


@web_router.post("/cases/{case_id}/review")
def review(case_id: int, request: Request, session: DB, web: Current, csrf_token: CsrfField,
           version: VersionField) -> Response:  # fmt: skip
    _check_csrf(web, csrf_token)
    user, case = _need(web, WORKING_ROLES), _case(session, case_id)
    return _act(request, session, case, lambda: cases.start_review(session, case, version, user, client_of(request)),
                ack="review started", by=user.name)  # fmt: skip


@web_router.post("/cases/{case_id}/assign")
def assign(case_id: int, request: Request, session: DB, web: Current, csrf_token: CsrfField,
           version: VersionField, assignee: Annotated[str, Form(max_length=64)] = "") -> Response:  # fmt: skip
    _check_csrf(web, csrf_token)
    user, case = _need(web, WORKING_ROLES), _case(session, case_id)
    target = session.scalar(select(User).where(User.name == assignee)) if assignee else None
    if assignee and target is None:
        raise HTTPException(422, "no such user")
    return _act(request, session, case, lambda: cases.assign(session, case, version, target, user, client_of(request)),
                ack=f"assigned to {target.name}" if target else None, by=user.name)  # fmt: skip


@web_router.post("/cases/{case_id}/comment")
def comment(case_id: int, request: Request, session: DB, web: Current, csrf_token: CsrfField,
            body: Annotated[str, Form(max_length=cases.MAX_COMMENT)]) -> Response:  # fmt: skip
    _check_csrf(web, csrf_token)
    user, case = _need(web, WORKING_ROLES), _case(session, case_id)

    def work() -> str:
        cases.add_comment(session, case, user, body, client_of(request))
        return "comment added"

    return _act(request, session, case, work)


@web_router.post("/cases/{case_id}/release")
def release(case_id: int, request: Request, session: DB, web: Current, csrf_token: CsrfField,
            version: VersionField, verdict: Annotated[str, Form(max_length=8)] = "legit",
            typology: Annotated[str, Form(max_length=64)] = "", reason: TextField = "") -> Response:  # fmt: skip
    _check_csrf(web, csrf_token)
    user, case = _need(web, WORKING_ROLES), _case(session, case_id)
    return _act(request, session, case, lambda: cases.release(
        session, case, version, user, verdict=verdict, typology=typology, reason=reason,
        approvals=request.app.state.approvals, client=client_of(request)),
        ack="release approved", by=user.name)  # fmt: skip


@web_router.post("/cases/{case_id}/reject")
def reject(case_id: int, request: Request, session: DB, web: Current, csrf_token: CsrfField,
           version: VersionField, verdict: Annotated[str, Form(max_length=8)] = "fraud",
           typology: Annotated[str, Form(max_length=64)] = "", reason: TextField = "") -> Response:  # fmt: skip
    _check_csrf(web, csrf_token)
    user, case = _need(web, WORKING_ROLES), _case(session, case_id)

    def work() -> str:
        cases.reject(session, case, version, user, verdict=verdict, typology=typology, reason=reason,
                     client=client_of(request))  # fmt: skip
        return "rejected"

    return _act(request, session, case, work, ack="payment rejected", by=user.name)


@web_router.get("/audit")
def audit_page(request: Request, session: DB, web: Current) -> Response:
    _need(web, AUDIT_ROLES)
    action = request.query_params.get("action") or None
    rows = audit.entries(session, limit=300, action=action[:40] if action else None)
    return render(request, "audit.html", user=web.user, csrf=web.csrf_token, entries=rows, action=action)


@web_router.get("/users")
def users_page(request: Request, session: DB, web: Current) -> Response:
    _need(web, frozenset({"admin"}))
    rows = list(session.scalars(select(User).order_by(User.name)))
    return render(request, "users.html", user=web.user, csrf=web.csrf_token, users=rows, roles=security.ROLES,
                  created=None)  # fmt: skip


@web_router.post("/users")
def users_add(request: Request, session: DB, web: Current, csrf_token: CsrfField,
              name: Annotated[str, Form(max_length=64)], role: Annotated[str, Form(max_length=16)],
              erp_user_id: Annotated[str, Form(max_length=64)] = "") -> Response:  # fmt: skip
    _check_csrf(web, csrf_token)
    admin = _need(web, frozenset({"admin"}))
    try:
        created = security.create_user(
            session, name, role, erp_user_id=erp_user_id or None, actor=admin.name, vault=request.app.state.totp_vault
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    session.commit()
    rows = list(session.scalars(select(User).order_by(User.name)))
    return render(request, "users.html", user=web.user, csrf=web.csrf_token, users=rows, roles=security.ROLES,
                  created={"name": created[0].name, "password": created[1], "uri": created[2]})  # fmt: skip
