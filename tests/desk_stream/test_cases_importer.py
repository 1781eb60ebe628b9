"""What the stream's cases agent does with each `decisions` record, on both databases (the agent itself
runs in test_live.py): a decision is imported once, anything else is refused with a reason."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from paysentry.desk.approvals import ApprovalConfig
from paysentry.desk.db import Case, DecisionRecord
from stream.cases_agent import MAX_RECORD_BYTES, CaseImporter
from stream.desk_publish import publish_app
from tests.desk.support import decision


def test_a_decision_is_imported_once(sessions: sessionmaker[Session], db: Session, approvals: ApprovalConfig) -> None:
    importer = CaseImporter(sessions, approvals)
    record = orjson.dumps(decision("P1", "e1", action="hold"))
    assert importer.handle(record) is None
    assert importer.handle(record) is None  # a redelivery changes nothing
    assert (importer.imported, importer.duplicates) == (1, 1)
    assert db.scalar(select(func.count(DecisionRecord.id))) == 1
    assert db.scalars(select(Case)).one().payment_id == "P1"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty record (no value)"),
        (b"", "empty record (no value)"),
        (b"\xff\xfe", "record is not JSON"),
        (b"[1]", "record is not a JSON object"),
        (b"x" * (MAX_RECORD_BYTES + 1), "record larger than"),
        (orjson.dumps({**decision("P1", "e1"), "payment_id": "P" * 500}), "not a decision: payment_id"),
        (orjson.dumps({**decision("P1", "e1"), "event_time": "yesterday"}), "not a decision: event_time"),
        (orjson.dumps({**decision("P1", "e1"), "vendor_id": "a\x00b"}), "not a decision: decision contains a NUL"),
    ],
)
def test_what_is_not_a_decision_is_refused_with_a_reason(
    sessions: sessionmaker[Session], db: Session, approvals: ApprovalConfig, value: bytes | None, reason: str
) -> None:
    importer = CaseImporter(sessions, approvals)
    refused = importer.handle(value)
    assert refused is not None and refused.startswith(reason)
    assert "P" * 100 not in refused  # the reason, not the record
    assert db.scalar(select(func.count(DecisionRecord.id))) == 0


def test_publish_refuses_bad_settings_without_showing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSENTRY_PARTITIONS", "0")
    monkeypatch.setenv("PAYSENTRY_DATABASE_URL", "postgresql+psycopg://desk:s3cret@db.example.com/desk")
    result = CliRunner().invoke(publish_app, ["--once"])
    assert result.exit_code == 2
    assert "PAYSENTRY_PARTITIONS" in result.output and "s3cret" not in result.output
