"""Feedback and the desk's commands: labels valid against the contract, case.resolved records, the
CLI (import twice, users, tokens, exports) through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from paysentry.contract import parse_event
from paysentry.desk import cases, importer
from paysentry.desk.cli import desk_app
from paysentry.desk.db import Case
from paysentry.desk.labels import case_resolved, label_event, label_lines
from tests.desk.support import add_user, decision, get_user

SCHEMA = json.loads(Path("/work/shared/contract/event.schema.json").read_text())
runner = CliRunner()


def _close_two(db: Session, sessions, approvals) -> tuple[Case, Case]:
    add_user(sessions, "ana", "analyst")
    importer.import_decision(db, decision("P1", "e1", action="review", amount="10.00"), approvals=approvals)
    importer.import_decision(db, decision("P2", "e2", action="review", amount="10.00"), approvals=approvals)
    importer.import_decision(db, decision("P3", "e3", action="review", amount="10.00"), approvals=approvals)
    db.commit()
    first, second = (db.scalars(select(Case).where(Case.payment_id == p)).one() for p in ("P1", "P2"))
    user = get_user(db, "ana")
    cases.release(db, first, first.version, user, verdict="legit", typology=None, reason="ok", approvals=approvals)
    cases.reject(db, second, second.version, user, verdict="fraud", typology="bank_change_bec", reason="fake")
    db.commit()
    return first, second


def test_closed_cases_become_contract_labels(db: Session, sessions, approvals) -> None:
    first, second = _close_two(db, sessions, approvals)
    events = [orjson.loads(line) for line in label_lines(db)]
    assert [(e["payment_id"], e["verdict"]) for e in events] == [("P1", "legit"), ("P2", "fraud")]
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for event in events:
        validator.validate(event)
        parsed = parse_event(event, account_key=b"k" * 32)
        assert parsed.type == "label.confirmed" and parsed.labeled_by == "ana"
    assert events[1]["typology"] == "bank_change_bec"
    assert [orjson.loads(line) for line in label_lines(db)] == events  # stable ids: exporting twice is the same
    with pytest.raises(ValueError, match="not closed"):
        label_event(db.scalars(select(Case).where(Case.payment_id == "P3")).one())


def test_case_resolved_record_for_the_erp(db: Session, sessions, approvals) -> None:
    first, second = _close_two(db, sessions, approvals)
    record = case_resolved(db, first, "https://desk.example.com/")
    assert record["type"] == "case.resolved" and record["outcome"] == "released"
    assert record["case_url"] == f"https://desk.example.com/cases/{first.id}"
    assert record["approvals"][0]["user"] == "ana"
    assert record["payee_account_masked"] == "****1234"
    assert case_resolved(db, second)["outcome"] == "rejected"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, approvals_path: Path) -> str:
    monkeypatch.setenv("PAYSENTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("PAYSENTRY_APPROVALS_PATH", str(approvals_path))
    return database_url


def test_cli_import_is_idempotent_and_reports_refusals(cli_env: str, tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    lines = [orjson.dumps(decision("P1", "e1")), orjson.dumps(decision("P2", "e2", action="allow")), b"{not json"]
    path.write_bytes(b"\n".join(lines) + b"\n")
    first = runner.invoke(desk_app, ["cases", "import", str(path)])
    assert first.exit_code == 1 and "imported 2, already known 0, refused 1" in first.stdout
    assert f"{path}:3: refused" in first.output
    second = runner.invoke(desk_app, ["cases", "import", str(path)])
    assert "imported 0, already known 2, refused 1" in second.stdout
    missing = runner.invoke(desk_app, ["cases", "import", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2


def test_cli_users_tokens_and_exports(cli_env: str, tmp_path: Path) -> None:
    added = runner.invoke(desk_app, ["users", "add", "lea", "--role", "lead"])
    assert added.exit_code == 0
    assert "one-time password: " in added.stdout and "otpauth://totp/" in added.stdout
    viewer = runner.invoke(desk_app, ["users", "add", "vic", "--role", "viewer"])
    assert "otpauth" not in viewer.stdout
    assert runner.invoke(desk_app, ["users", "add", "x", "--role", "boss"]).exit_code == 2
    token = runner.invoke(desk_app, ["tokens", "create", "erp", "--scopes", "payments:read,cases:read"])
    assert token.exit_code == 0 and token.stdout.startswith("psd_")
    assert runner.invoke(desk_app, ["tokens", "create", "bad", "--scopes", "root"]).exit_code == 2
    out = tmp_path / "labels.jsonl"
    assert runner.invoke(desk_app, ["cases", "export-labels", "--out", str(out)]).exit_code == 0
    assert out.read_bytes() == b""
    audit_out = tmp_path / "audit.jsonl"
    assert runner.invoke(desk_app, ["audit", "export", "--out", str(audit_out)]).exit_code == 0
    actions = [orjson.loads(line)["action"] for line in audit_out.read_bytes().splitlines()]
    assert actions == ["user.created", "user.created", "token.created"]
    assert token.stdout.strip() not in audit_out.read_text()


@pytest.fixture(scope="module")
def demo_decisions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Decisions the engine itself wrote: `paysentry demo` over ten simulated days."""
    import subprocess
    import sys

    workdir = tmp_path_factory.mktemp("demo")
    command = [
        str(Path(sys.executable).parent / "paysentry"),
        "demo",
        "--workdir",
        str(workdir),
        "--days",
        "10",
        "--no-desk",
    ]
    done = subprocess.run(command, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return workdir / "decisions.jsonl"


def test_the_engines_own_decisions_import_into_cases(cli_env: str, demo_decisions: Path, sessions) -> None:
    records = [orjson.loads(line) for line in demo_decisions.read_bytes().splitlines() if line.strip()]
    flagged = {r["payment_id"] for r in records if r["action"] != "allow"}
    assert flagged, "the demo month should flag some payments"
    result = runner.invoke(desk_app, ["cases", "import", str(demo_decisions)])
    assert result.exit_code == 0 and f"imported {len(records)}, already known 0, refused 0" in result.stdout
    again = runner.invoke(desk_app, ["cases", "import", str(demo_decisions)])
    assert f"imported 0, already known {len(records)}, refused 0" in again.stdout
    with sessions() as session:
        stored = session.scalars(select(Case)).all()
        assert {c.payment_id for c in stored} == flagged
        assert all(c.payee_account_masked is None or c.payee_account_masked.startswith("****") for c in stored)


def test_the_web_command_is_there() -> None:
    result = runner.invoke(desk_app, ["web", "--help"])
    assert result.exit_code == 0 and "--port" in result.stdout and "--host" in result.stdout
