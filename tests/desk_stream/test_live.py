"""The desk in the live loop on a real broker: cases filled from `decisions` by the workers equal what
`paysentry cases import` makes of replay's decisions; verdicts go back through the outbox to the engine
(through ingest, like any label) and to `cases.resolved`, none lost and none counted twice."""

from __future__ import annotations

import ast
import asyncio
import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from paysentry.cli import run_replay
from paysentry.desk import cases, outbox
from paysentry.desk.approvals import load_or_builtin
from paysentry.desk.cli import desk_app
from paysentry.desk.db import Case, DecisionRecord, OutboxRecord, open_database
from paysentry.simulate import SimulationConfig, write_simulation
from stream.desk_publish import CRASH_AFTER_SEND
from tests.desk.support import add_user, decision, get_user
from tests.stream.conftest import StreamRig, Worker

pytestmark = pytest.mark.kafka
DESK_URL = "https://desk.example.com"
COUNTS = re.compile(r"engine counts: (\{[^}]*\})")


def _simulate(tmp_path: Path, days: int, seed: int) -> tuple[Path, Path, int]:
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    write_simulation(SimulationConfig(days=days, seed=seed), events, labels)
    decided = tmp_path / "replay.jsonl"
    replayed = run_replay(events, decided, tmp_path / "replay.rejected", None, quiet=True).decisions
    return events, decided, len(replayed)


def _wait(condition: Any, what: str, rig: StreamRig, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rig.check_alive()
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _count(sessions: sessionmaker[Session], model: Any, *where: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _case_set(sessions: sessionmaker[Session]) -> dict[str, tuple[Any, ...]]:
    with sessions() as session:
        return {c.payment_id: (c.state, c.action, c.severity, c.rule_ids, c.round, c.vendor_id, c.company_code,
                               c.amount, c.currency, c.payee_account_masked, c.opened_at, c.due_at)
                for c in session.scalars(select(Case))}  # fmt: skip


def _engine_counts(worker: Worker) -> dict[str, int]:
    found = COUNTS.findall(worker.log())
    return ast.literal_eval(found[-1]) if found else {}


def _settled_counts(worker: Worker, rig: StreamRig) -> dict[str, int]:
    """The engine's counts once two status reports in a row agree (the worker logs them every 10 s)."""
    seen: list[dict[str, int]] = []

    def settled() -> dict[str, int] | None:
        reports = [ast.literal_eval(c) for c in COUNTS.findall(worker.log())]
        if len(reports) > len(seen):
            seen[:] = reports
            if len(reports) >= 2 and reports[-1] == reports[-2] and reports[-1].get("decided"):
                return reports[-1]
        return None

    return _wait(settled, "the engine's counts to settle", rig, timeout=180)


def _records(rig: StreamRig, topic: str, expect: int) -> list[dict[str, Any]]:
    return rig.read(topic, expect=expect, timeout=90, settle=2.0)


def _close_two_cases(sessions: sessionmaker[Session]) -> tuple[int, int]:
    """Reject one case (fraud) and release another (legit), as people in the desk would."""
    add_user(sessions, "desk-admin", "admin")
    approvals = load_or_builtin(Path("config/approvals.yaml"))
    with sessions() as session:
        user = get_user(session, "desk-admin")
        ids = list(session.scalars(select(Case.id).where(Case.state == "open").order_by(Case.id)))
        rejected = ids[0]
        case = session.get(Case, rejected)
        assert case is not None
        cases.reject(session, case, case.version, user, verdict="fraud", typology="bec", reason="vendor denied")
        session.commit()
        refused: dict[int, str] = {}
        for case_id in ids[1:]:
            released, skipped = cases.bulk_release(session, [case_id], user, reason="known vendor", approvals=approvals)
            if released:
                return rejected, released[0]
            refused.update(skipped)
    raise AssertionError(f"no case a single approval releases: {refused}")


def test_stream_cases_equal_the_import_and_verdicts_reach_the_engine_once(
    postgres_database_url: str, stream_rig: StreamRig, tmp_path: Path
) -> None:
    events, decided, expected = _simulate(tmp_path, days=6, seed=11)
    stream_rig.produce(events)
    worker = stream_rig.worker("w1", PAYSENTRY_DATABASE_URL=postgres_database_url, PAYSENTRY_DESK_PUBLISH="false")
    _engine, live = open_database(postgres_database_url)
    _wait(lambda: _count(live, DecisionRecord) >= expected, "every decision in the desk", stream_rig, timeout=240)

    embedded_url = f"sqlite:///{tmp_path}/embedded.db"
    result = CliRunner().invoke(
        desk_app, ["cases", "import", str(decided)], env={"PAYSENTRY_DATABASE_URL": embedded_url}
    )
    assert result.exit_code == 0, result.output
    _embedded_engine, embedded = open_database(embedded_url)
    assert _count(live, DecisionRecord) == _count(embedded, DecisionRecord) == expected
    stream_cases = _case_set(live)
    assert len(stream_cases) >= 3
    assert stream_cases == _case_set(embedded)

    before = _settled_counts(worker, stream_rig)
    rejected, released = _close_two_cases(live)
    assert _count(live, OutboxRecord, OutboxRecord.sent_at.is_(None)) == 4

    publisher_env = {"PAYSENTRY_DATABASE_URL": postgres_database_url, "PAYSENTRY_DESK_BASE_URL": DESK_URL}
    crashing = stream_rig.worker("publisher-1", module="stream.desk_publish", PAYSENTRY_OUTBOX_FAULT=CRASH_AFTER_SEND,
                                 **publisher_env)  # fmt: skip
    assert crashing.wait_exit(120) == -9, crashing.log()
    assert _count(live, OutboxRecord, OutboxRecord.sent_at.is_(None)) == 4  # sent, but not marked: kept
    again = stream_rig.worker("publisher-2", module="stream.desk_publish", **publisher_env)
    assert again.wait_exit(120) == 0, again.log()
    assert "published 4 records" in again.log()
    assert _count(live, OutboxRecord, OutboxRecord.sent_at.is_(None)) == 0

    labels = [r for r in _records(stream_rig, "labels", 4) if str(r.get("event_id", "")).startswith("desk-label:")]
    assert sorted(r["event_id"] for r in labels) == sorted([f"desk-label:{rejected}:1", f"desk-label:{released}:1"] * 2)
    assert {r["event_id"]: r["verdict"] for r in labels} == {f"desk-label:{rejected}:1": "fraud",
                                                             f"desk-label:{released}:1": "legit"}  # fmt: skip
    resolved = _records(stream_rig, "cases.resolved", 4)
    assert len(resolved) == 4  # at least once: the ERP deduplicates by record_id
    by_id = {r["record_id"]: r for r in resolved}
    assert {k: v["outcome"] for k, v in by_id.items()} == {f"desk-case:{rejected}:1": "rejected",
                                                          f"desk-case:{released}:1": "released"}  # fmt: skip
    assert by_id[f"desk-case:{rejected}:1"]["case_url"] == f"{DESK_URL}/cases/{rejected}"

    # the engine applied each verdict once (state_only) and recognised each re-send (redelivered)
    want = {**before, "state_only": before.get("state_only", 0) + 2, "redelivered": before.get("redelivered", 0) + 2}
    _wait(lambda: _engine_counts(worker) == want, f"engine counts {want}", stream_rig, timeout=120)
    assert _settled_counts(worker, stream_rig) == want

    third = stream_rig.worker("publisher-3", module="stream.desk_publish", **publisher_env)
    assert third.wait_exit(120) == 0 and "published 0 records" in third.log()
    stream_rig.stop_all()


def test_the_worker_publishes_verdicts_and_dead_letters_what_is_not_a_decision(
    postgres_database_url: str, stream_rig: StreamRig, tmp_path: Path
) -> None:
    events, _decided, expected = _simulate(tmp_path, days=6, seed=11)
    stream_rig.produce(events)
    stream_rig.worker("w1", PAYSENTRY_DATABASE_URL=postgres_database_url, PAYSENTRY_DESK_BASE_URL=DESK_URL,
                      PAYSENTRY_DESK_PUBLISH_SECONDS="0.5")  # fmt: skip
    _engine, live = open_database(postgres_database_url)
    _wait(lambda: _count(live, DecisionRecord) >= expected, "every decision in the desk", stream_rig, timeout=240)

    poison = [b"not json", orjson.dumps({**decision("P-bad", "e-bad"), "action": "explode"}), orjson.dumps([1, 2]),
              orjson.dumps(decision("P-after", "e-after", action="hold"))]  # fmt: skip
    asyncio.run(_send(stream_rig, "decisions", poison))
    _wait(lambda: _count(live, Case, Case.payment_id == "P-after"), "the decision after the bad ones", stream_rig)
    dead = [r for r in _records(stream_rig, "deadletter", 3) if r.get("source") == "cases"]
    assert [r["reason"] for r in dead] == ["record is not JSON", "not a decision: action: Input should be 'allow', "
                                           "'review', 'hold' or 'block'", "record is not a JSON object"]  # fmt: skip
    assert all("explode" not in orjson.dumps(r).decode() for r in dead)  # the reason, never the record

    rejected, released = _close_two_cases(live)
    resolved = _records(stream_rig, "cases.resolved", 2)
    assert sorted(r["record_id"] for r in resolved) == sorted([f"desk-case:{rejected}:1", f"desk-case:{released}:1"])
    assert {r["case_url"] for r in resolved} == {f"{DESK_URL}/cases/{rejected}", f"{DESK_URL}/cases/{released}"}
    _wait(lambda: _count(live, OutboxRecord, OutboxRecord.sent_at.is_(None)) == 0, "the outbox drained", stream_rig)
    assert _count(live, OutboxRecord) == 4
    with live() as session:
        assert outbox.unsent_count(session) == 0
    stream_rig.stop_all()


async def _send(rig: StreamRig, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(**rig.settings.aiokafka_kwargs(), acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(rig.settings.topic(topic), value, key=b"P-poison")
    finally:
        await producer.stop()
