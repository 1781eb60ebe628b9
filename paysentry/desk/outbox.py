"""The desk's transactional outbox: what a verdict tells the stream, written in the verdict's own
database transaction, so a verdict is never committed without its messages nor a message sent for a
verdict that was rolled back.

`enqueue_resolution(session, case)` (called by cases.py when a case is released or rejected) adds two
rows: the `label.confirmed` event for the inbound `labels` topic (it goes through ingest like any event)
and the `case.resolved` record for the `cases.resolved` topic an ERP consumes. Each row's `record_id` is
the message's stable id (`desk-label:<case>:<round>`, `desk-case:<case>:<round>`): a row is written once
per resolution, and a message sent twice (a publisher that died between Kafka's acknowledgement and
marking the row) is deduplicated downstream, by the engine's event id for labels and by `record_id` for
an ERP. A publisher (stream/desk_publish.py) claims unsent rows in id order, sends them, and marks them
sent only once Kafka acknowledged every one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from paysentry.desk.db import Case, OutboxRecord, utcnow
from paysentry.desk.labels import case_resolved, label_event

# Short topic names (the stream adds its PAYSENTRY_TOPIC_PREFIX); they match stream/topics.py.
LABELS_TOPIC = "labels"
RESOLVED_TOPIC = "cases.resolved"
MAX_BASE_URL = 200


def enqueue_resolution(session: Session, case: Case) -> list[OutboxRecord]:
    """The closed case's label and resolution, added to the caller's transaction (once per round)."""
    label = label_event(case)
    resolved = case_resolved(session, case)  # relative case_url: the publisher adds its base URL
    rows = []
    for topic, record_id, payload in (
        (LABELS_TOPIC, label["event_id"], label),
        (RESOLVED_TOPIC, resolved["record_id"], resolved),
    ):
        if session.scalar(select(OutboxRecord.id).where(OutboxRecord.record_id == record_id)) is None:
            row = OutboxRecord(topic=topic, record_id=record_id, message_key=case.payment_id, payload=payload)
            session.add(row)
            rows.append(row)
    session.flush()
    return rows


def claim_unsent(session: Session, limit: int = 200) -> list[OutboxRecord]:
    """The oldest unsent rows. On PostgreSQL they stay locked (FOR UPDATE SKIP LOCKED) until the caller
    ends its transaction, so two publishers never send the same row at once; SQLite (one process)
    ignores the lock."""
    query = (
        select(OutboxRecord)
        .where(OutboxRecord.sent_at.is_(None))
        .order_by(OutboxRecord.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def mark_sent(session: Session, ids: Sequence[int]) -> None:
    if ids:
        session.execute(
            update(OutboxRecord)
            .where(OutboxRecord.id.in_(list(ids)), OutboxRecord.sent_at.is_(None))
            .values(sent_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def unsent_count(session: Session) -> int:
    return int(
        session.scalar(select(func.count()).select_from(OutboxRecord).where(OutboxRecord.sent_at.is_(None))) or 0
    )


def message_of(row: OutboxRecord, base_url: str = "") -> tuple[str, bytes, bytes]:
    """(short topic, key, value) of a row; a `case.resolved` record's case_url gets `base_url`."""
    payload: dict[str, Any] = dict(row.payload)
    url = payload.get("case_url")
    if row.topic == RESOLVED_TOPIC and base_url and isinstance(url, str) and url.startswith("/"):
        payload["case_url"] = base_url.rstrip("/")[:MAX_BASE_URL] + url
    return row.topic, row.message_key.encode(), orjson.dumps(payload)
