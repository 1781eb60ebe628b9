"""Cases: one per payment the engine flagged (`review`, `hold` or `block`; opened by importer.py), and
what people do with it.

Plain synchronous functions over a SQLAlchemy session; the web app, the API, the CLI and the stream's
consumer all call them, and each writes its own audit entries. The caller commits.

States: open -> in_review -> released | rejected. A new flagged decision on a closed case reopens it
(a new round: approvals start again). Every change names the case version it was based on and is one
conditional UPDATE (`... WHERE version = seen`): of two people resolving a case at once exactly one
wins, the other gets CaseConflict (HTTP 409), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from paysentry.desk import audit, outbox
from paysentry.desk.approvals import (
    ROLE_FILLS,
    ApprovalConfig,
    ApprovalRefused,
    is_erp_party,
    missing_approvals,
    next_requirement,
)
from paysentry.desk.db import Approval, Case, Comment, User, utcnow

FLAGGED = ("review", "hold", "block")
STATES = ("open", "in_review", "released", "rejected")
CLOSED = ("released", "rejected")
RELEASE_VERDICTS = ("legit", "error")
REJECT_VERDICTS = ("fraud", "error")
REJECTING_ROLES = ROLE_FILLS["analyst"] | ROLE_FILLS["treasury"]
MAX_REASON = 2000
MAX_COMMENT = 4000
MAX_TYPOLOGY = 64


class CaseError(Exception):
    """A request the case cannot take (HTTP 422 unless a subclass says otherwise)."""

    status = 422


class CaseConflict(CaseError):
    """Someone changed the case since the caller read it."""

    status = 409


class CaseForbidden(CaseError):
    status = 403


def case_summary(case: Case) -> dict[str, Any]:
    """What the audit log keeps of a case before and after a change."""
    return {
        "state": case.state,
        "verdict": case.verdict,
        "typology": case.typology,
        "assignee": case.assignee.name if case.assignee else None,
        "action": case.action,
        "version": case.version,
        "round": case.round,
        "due_at": case.due_at,
    }


def _change(session: Session, case: Case, seen_version: int, **values: Any) -> None:
    """Apply `values` only if the case is still at `seen_version`; CaseConflict otherwise."""
    result = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.version == seen_version)
        .values(version=seen_version + 1, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise CaseConflict(f"case {case.id} was changed by someone else meanwhile; reload it and try again")
    session.refresh(case)


def _still_at(case: Case, seen_version: int) -> None:
    """The caller decided on what it saw: when the case moved on since, that is a conflict (409),
    whatever else would be wrong with the request now."""
    if case.version != seen_version:
        raise CaseConflict(f"case {case.id} was changed by someone else meanwhile; reload it and try again")


def _clean(text: str | None, limit: int, what: str) -> str | None:
    text = (text or "").replace("\x00", "").strip()
    if len(text) > limit:
        raise CaseError(f"{what} is longer than {limit} characters")
    return text or None


def _check_party(case: Case, user: User) -> None:
    if is_erp_party(user.name, user.erp_user_id, case.erp_users):
        raise CaseForbidden(
            "separation of duties: you created or approved this payment in the ERP, so you cannot decide its case"
        )


def start_review(session: Session, case: Case, seen_version: int, user: User, client: str | None = None) -> None:
    _still_at(case, seen_version)
    if case.state != "open":
        raise CaseError(f"case is {case.state}, not open")
    before = case_summary(case)
    _change(session, case, seen_version, state="in_review")
    audit.record(session, actor=user.name, action="case.review", target=f"case:{case.id}", client=client,
                 before=before, after=case_summary(case))  # fmt: skip


def assign(
    session: Session, case: Case, seen_version: int, assignee: User | None, user: User, client: str | None = None
) -> None:
    """Assign (or, with None, unassign) the case; an open case assigned to someone is in review."""
    _still_at(case, seen_version)
    if case.state in CLOSED:
        raise CaseError(f"case is {case.state}; a closed case is not assigned")
    if assignee is not None and assignee.role == "viewer":
        raise CaseError("a viewer cannot be assigned a case")
    before = case_summary(case)
    state = "in_review" if assignee is not None and case.state == "open" else case.state
    _change(session, case, seen_version, assignee_id=assignee.id if assignee else None, state=state)
    audit.record(session, actor=user.name, action="case.assigned", target=f"case:{case.id}", client=client,
                 before=before, after=case_summary(case))  # fmt: skip


def add_comment(session: Session, case: Case, user: User, body: str, client: str | None = None) -> Comment:
    text = _clean(body, MAX_COMMENT, "comment")
    if text is None:
        raise CaseError("comment is empty")
    comment = Comment(case_id=case.id, author=user.name, body=text)
    session.add(comment)
    audit.record(session, actor=user.name, action="case.comment", target=f"case:{case.id}", client=client,
                 after={"comment": text[:200]})  # fmt: skip
    return comment


def approvals_given(session: Session, case: Case) -> list[Approval]:
    query = select(Approval).where(Approval.case_id == case.id, Approval.round == case.round).order_by(Approval.id)
    return list(session.scalars(query))


def release(
    session: Session,
    case: Case,
    seen_version: int,
    user: User,
    *,
    verdict: str,
    typology: str | None,
    reason: str | None,
    approvals: ApprovalConfig,
    client: str | None = None,
) -> str:
    """Add `user`'s approval to release the payment. Returns "released" when it completes the case's
    approval policy, else "approved" (more approvals are needed)."""
    _still_at(case, seen_version)  # a case resolved meanwhile is a conflict (409), not "already closed"
    if case.state in CLOSED:
        raise CaseError(f"case is already {case.state}")
    if verdict not in RELEASE_VERDICTS:
        raise CaseError(f"a released payment's verdict is one of {', '.join(RELEASE_VERDICTS)}")
    _check_party(case, user)
    policy = approvals.policy_for(case.company_code, case.action, case.amount, case.currency)
    given = [(a.user_name, a.role) for a in approvals_given(session, case)]
    try:
        role = next_requirement(policy, given, user.name, user.role)
    except ApprovalRefused as exc:
        raise CaseForbidden(str(exc)) from None
    reason_text = _clean(reason, MAX_REASON, "reason")
    typology_text = _clean(typology, MAX_TYPOLOGY, "typology")
    before = case_summary(case)
    done = not missing_approvals(policy, [*given, (user.name, role)])
    values: dict[str, Any] = {"state": "in_review"}
    if done:
        values = {"state": "released", "verdict": verdict, "typology": typology_text, "resolved_at": utcnow(),
                  "resolved_by": user.name, "resolution_reason": reason_text}  # fmt: skip
    _change(session, case, seen_version, **values)
    session.add(Approval(case_id=case.id, round=case.round, user_name=user.name, role=role))
    after = {**case_summary(case), "approval": {"role": role, "policy": policy.name}, "reason": reason_text}
    audit.record(session, actor=user.name, action="case.approval", target=f"case:{case.id}", client=client,
                 before=before, after=after)  # fmt: skip
    if done:
        audit.record(session, actor=user.name, action="case.released", target=f"case:{case.id}", client=client,
                     before=before, after={**case_summary(case), "reason": reason_text})  # fmt: skip
        outbox.enqueue_resolution(session, case)  # the label and the ERP's record commit with the verdict
    return "released" if done else "approved"


def reject(
    session: Session,
    case: Case,
    seen_version: int,
    user: User,
    *,
    verdict: str,
    typology: str | None,
    reason: str | None,
    client: str | None = None,
) -> None:
    """Stop the payment. Needs no approval chain (it moves no money), but the same separation of duties."""
    _still_at(case, seen_version)
    if case.state in CLOSED:
        raise CaseError(f"case is already {case.state}")
    if verdict not in REJECT_VERDICTS:
        raise CaseError(f"a rejected payment's verdict is one of {', '.join(REJECT_VERDICTS)}")
    if user.role not in REJECTING_ROLES:
        raise CaseForbidden(f"role {user.role} cannot reject payments")
    _check_party(case, user)
    reason_text = _clean(reason, MAX_REASON, "reason")
    before = case_summary(case)
    _change(session, case, seen_version, state="rejected", verdict=verdict, resolved_at=utcnow(),
            resolved_by=user.name, resolution_reason=reason_text,
            typology=_clean(typology, MAX_TYPOLOGY, "typology"))  # fmt: skip
    audit.record(session, actor=user.name, action="case.rejected", target=f"case:{case.id}", client=client,
                 before=before, after={**case_summary(case), "reason": reason_text})  # fmt: skip
    outbox.enqueue_resolution(session, case)


def bulk_release(
    session: Session,
    case_ids: list[int],
    user: User,
    *,
    reason: str,
    approvals: ApprovalConfig,
    client: str | None = None,
) -> tuple[list[int], dict[int, str]]:
    """Release false positives in bulk (verdict `legit`) with one reason. Each case goes through the same
    checks as a single release; one a single approval cannot release is left as it is. Returns the ids
    released and, for the others, why not. Each case is committed on its own."""
    if not (reason or "").strip():
        raise CaseError("a bulk release needs a reason")
    released: list[int] = []
    skipped: dict[int, str] = {}
    for case_id in case_ids[:500]:
        case = session.get(Case, case_id)
        if case is None:
            skipped[case_id] = "no such case"
            continue
        policy = approvals.policy_for(case.company_code, case.action, case.amount, case.currency)
        if sum(r.count for r in policy.require) > 1:
            skipped[case_id] = f"policy '{policy.name}' needs more than one approval"
            continue
        try:
            outcome = release(session, case, case.version, user, verdict="legit", typology=None,
                              reason=f"bulk: {reason}", approvals=approvals, client=client)  # fmt: skip
        except CaseError as exc:
            session.rollback()
            skipped[case_id] = str(exc)
            continue
        session.commit()
        if outcome == "released":
            released.append(case_id)
    return released, skipped
