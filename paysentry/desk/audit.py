"""The desk's audit log: one row per login, case view, assignment, verdict, approval, user, token or
configuration change; who, when, from where, and the state before and after.

Rows are only ever added (`record`). Nothing in the desk updates or deletes them, and the database
refuses it too (triggers created by the initial migration, on PostgreSQL and SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from paysentry.desk.db import AuditEntry

MAX_TEXT = 160  # of the actor, target and client columns


def _plain(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON-ready (datetimes and decimals as text), so both databases store the same thing."""
    if value is None:
        return None
    return dict(orjson.loads(orjson.dumps(value, default=str)))


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    client: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry to `session` (committed with the change it describes)."""
    entry = AuditEntry(
        actor=actor[:80],
        action=action[:40],
        target=target[:MAX_TEXT] if target else None,
        client=client[:64] if client else None,
        before=_plain(before),
        after=_plain(after),
    )
    session.add(entry)
    return entry


def entries(session: Session, *, limit: int = 200, action: str | None = None) -> list[AuditEntry]:
    """The newest entries first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(session.scalars(query))


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "client": entry.client,
        "before": entry.before,
        "after": entry.after,
    }


def export_lines(session: Session, batch: int = 1000) -> Iterator[bytes]:
    """Every entry, oldest first, as JSON Lines; read in batches so a long log is never all in memory."""
    last_id = 0
    while True:
        rows = list(
            session.scalars(select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch))
        )
        if not rows:
            return
        for row in rows:
            yield orjson.dumps(entry_dict(row)) + b"\n"
        last_id = rows[-1].id
