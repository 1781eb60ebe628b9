"""The JSON API under /api/v1, for ERPs, RPA bots and the stream: `Authorization: Bearer <token>`.

Scopes: `cases:read` (list and read cases), `cases:write` (import decisions, comment), `payments:read`
(the ERP's question), `audit:read` (the audit log), `kpis:read` (the dashboard's figures). A missing
or unknown token is 401, a token without the scope 403. Releasing or rejecting a payment is not offered
here: a person does it in the desk, with a second factor and the approval policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from paysentry.desk import audit, cases, importer, queries, security
from paysentry.desk.db import ApiToken, Case, Comment
from paysentry.desk.deps import client_of, db_session

api_router = APIRouter()
MAX_DECISIONS_PER_CALL = 1000
DB = Annotated[Session, Depends(db_session)]


def require_scope(scope: str) -> Callable[..., ApiToken]:
    def check(request: Request, session: DB) -> ApiToken:
        header = request.headers.get("authorization", "")
        kind, _, raw = header.partition(" ")
        token = security.token_for(session, raw.strip()) if kind.lower() == "bearer" else None
        if token is None:
            raise HTTPException(401, "a valid API token is required", headers={"WWW-Authenticate": "Bearer"})
        if scope not in token.scope_set():
            raise HTTPException(403, f"this token lacks the scope {scope}")
        return token

    return check


def _case_or_404(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise HTTPException(404, "no such case")
    return case


@api_router.get("/cases")
def list_cases(
    session: DB,
    _token: Annotated[ApiToken, Depends(require_scope("cases:read"))],
    filters: Annotated[queries.CaseFilters, Query()],
) -> list[dict[str, Any]]:
    return [queries.case_dict(case) for case in queries.list_cases(session, filters.cleaned())]


@api_router.get("/cases/{case_id}")
def read_case(
    case_id: int, request: Request, session: DB, token: Annotated[ApiToken, Depends(require_scope("cases:read"))]
) -> dict[str, Any]:
    case = _case_or_404(session, case_id)
    comments = session.scalars(select(Comment).where(Comment.case_id == case.id).order_by(Comment.id))
    result = {
        **queries.case_dict(case),
        "decisions": [row.record for row in queries.case_decisions(session, case.payment_id)],
        "approvals": queries.approval_list(session, case),
        "comments": [{"author": c.author, "body": c.body, "at": c.created_at.isoformat()} for c in comments],
    }
    audit.record(session, actor=f"token:{token.name}", action="case.view", target=f"case:{case.id}",
                 client=client_of(request))  # fmt: skip
    session.commit()
    return result


@api_router.post("/cases/{case_id}/comments", status_code=201)
def comment(
    case_id: int,
    request: Request,
    session: DB,
    token: Annotated[ApiToken, Depends(require_scope("cases:write"))],
    body: Annotated[str, Body(embed=True, max_length=cases.MAX_COMMENT)],
) -> dict[str, Any]:
    case = _case_or_404(session, case_id)
    author = _TokenActor(token)
    try:
        cases.add_comment(session, case, author, body, client_of(request))  # type: ignore[arg-type]
    except cases.CaseError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    session.commit()
    return {"case_id": case.id, "author": author.name}


class _TokenActor:
    """A token acting where a user would (comments, imports): named `token:<name>` in the record."""

    def __init__(self, token: ApiToken):
        self.name = f"token:{token.name}"


@api_router.post("/decisions")
def import_decisions(
    request: Request,
    session: DB,
    token: Annotated[ApiToken, Depends(require_scope("cases:write"))],
    records: Annotated[list[dict[str, Any]], Body(max_length=MAX_DECISIONS_PER_CALL)],
) -> dict[str, Any]:
    """Import decisions (a JSON list); idempotent by decision event id."""
    imported = duplicates = 0
    refused: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        try:
            if importer.import_decision(session, record, approvals=request.app.state.approvals,
                                     actor=f"token:{token.name}"):  # fmt: skip
                imported += 1
            else:
                duplicates += 1
        except importer.InvalidDecision as exc:
            refused.append({"index": index, "reason": str(exc)})
    session.commit()
    return {"imported": imported, "duplicates": duplicates, "refused": refused}


@api_router.get("/payments/{payment_id}")
def payment(
    payment_id: str,
    request: Request,
    session: DB,
    token: Annotated[ApiToken, Depends(require_scope("payments:read"))],
) -> dict[str, Any]:
    """May this payment go out? The latest decision, the case's state and who released it."""
    if len(payment_id) > 128:
        raise HTTPException(422, "payment id longer than 128 characters")
    status = queries.payment_status(session, payment_id)
    if status is None:
        raise HTTPException(404, "the desk has no decision on this payment; it has not been screened")
    return status


@api_router.get("/audit")
def audit_log(
    session: DB,
    _token: Annotated[ApiToken, Depends(require_scope("audit:read"))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    action: Annotated[str | None, Query(max_length=40)] = None,
) -> list[dict[str, Any]]:
    return [audit.entry_dict(entry) for entry in audit.entries(session, limit=limit, action=action)]


@api_router.get("/kpis")
def kpis(
    request: Request, session: DB, _token: Annotated[ApiToken, Depends(require_scope("kpis:read"))]
) -> dict[str, Any]:
    """The dashboard's figures (query: days, to, company, channel), and the KPI file's when configured."""
    from paysentry.desk.dashboard import desk_kpis
    from paysentry.desk.dashboard_web import filters_of, platform_kpis

    return {**desk_kpis(session, filters_of(request)), "platform": platform_kpis(request.app.state.kpis_file)}
