"""`connect convert` end to end, and its output through `paysentry replay`: decisions come out, the
reconciliation sees the settlements and reports the orphan."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
from typer.testing import CliRunner

from paysentry.cli import run_replay
from paysentry.connectors.cli import connect_app
from tests.connectors.support import MAPPINGS, SAMPLES, assert_no_clear_account

runner = CliRunner()


def _lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_convert_every_sample(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    files = [SAMPLES / n for n in ("camt054_v02.xml", "pain002_v03.xml", "pain001_v03.xml", "pain001_v09.xml",
                                   "camt053_v08.xml", "mt940_statement.sta")]  # fmt: skip
    result = runner.invoke(connect_app, ["convert", *map(str, files), "--out", str(out)])
    assert result.exit_code == 0, result.output
    events = _lines(out)
    # pain.001 files are read first whatever the order given, so the pain.002 finds the amount it leaves out.
    assert [e["type"] for e in events[:5]] == ["payment.released"] * 5
    types = [e["type"] for e in events]
    assert (types.count("psp.submitted"), types.count("psp.failed"), types.count("psp.settled")) == (2, 1, 7)
    assert len({(e["type"], e["event_id"]) for e in events}) == len(events) == 15
    assert "payment.released" in result.output and "psp.settled" in result.output
    assert (tmp_path / "events.jsonl.rejected").read_bytes() == b""
    assert_no_clear_account(result.output)


def test_convert_csv_reports_problems_and_rejects(tmp_path: Path) -> None:
    out = tmp_path / "ap.jsonl"
    mapping = f"csv:{MAPPINGS / 'generic-ap.yaml'}"
    result = runner.invoke(connect_app, ["convert", str(SAMPLES / "ap_payments_cp1252.csv"), "--format", mapping,
                                         "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(_lines(out)) == 4
    rejected = _lines(tmp_path / "ap.jsonl.rejected")
    assert {r["file"] for r in rejected} == {str(SAMPLES / "ap_payments_cp1252.csv")}
    assert [r["where"] for r in rejected] == ["line 6", "line 7"]
    assert "problems" in result.output and "amount" in result.output and "Status" in result.output


def test_convert_refused_file_and_bad_options(tmp_path: Path) -> None:
    junk = tmp_path / "junk.xml"
    junk.write_bytes(b"<Document><unterminated")
    out = tmp_path / "e.jsonl"
    result = runner.invoke(connect_app, ["convert", str(junk), str(SAMPLES / "pain001_v03.xml"), "--out", str(out)])
    assert result.exit_code == 1 and len(_lines(out)) == 3
    [rejected] = _lines(tmp_path / "e.jsonl.rejected")
    assert rejected["where"] == "file" and "XML without an ISO 20022" in rejected["reason"]
    bad = runner.invoke(connect_app, ["convert", str(junk), "--out", str(out), "--format", "pain.003"])
    assert bad.exit_code == 2 and "unknown format 'pain.003'" in bad.output
    mapping = tmp_path / "m.yaml"
    mapping.write_text("records: payments\n")
    bad = runner.invoke(connect_app, ["convert", str(junk), "--out", str(out), "--format", f"csv:{mapping}"])
    assert bad.exit_code == 2 and "m.yaml:1:1" in bad.output
    same = runner.invoke(connect_app, ["convert", str(junk), "--out", str(junk)])
    assert same.exit_code == 2 and "refusing to overwrite" in same.output


def test_converted_round_goes_through_replay(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    files = [SAMPLES / n for n in ("pain001_v03.xml", "pain002_v03.xml", "camt054_v02.xml")]
    assert runner.invoke(connect_app, ["convert", *map(str, files), "--out", str(events)]).exit_code == 0
    now = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    run = run_replay(events, tmp_path / "decisions.jsonl", tmp_path / "decisions.rejected", None, quiet=True, now=now)
    assert run.rejected == [] and run.events == 9 and run.decided == 9
    decided = {(d.payment_id, d.event_type): d for d in run.decisions}
    assert {t for _, t in decided} == {
        "payment.released",
        "psp.submitted",
        "psp.failed",
        "psp.settled",
        "psp.unmatched",
    }
    settled = decided[("PAY-2026-000101", "psp.settled")]
    summary = settled.explanation["payment"]
    assert (summary["released_amount"], summary["amount"], summary["payee_account_masked"]) == ("12500.00", "12500.00",
                                                                                                "****3000")  # fmt: skip
    # The orphan booking (no end-to-end id) matched no payment: the reconciliation timer reports it.
    orphan = decided[("orphan:BYLA-BK-20261128-000790/-/1", "psp.unmatched")]
    assert orphan.action != "allow" and any(hit.rule_id == "orphan_settlement" for hit in orphan.rule_hits)
    assert [key for key in decided if key[1] == "psp.unmatched"] == [("orphan:BYLA-BK-20261128-000790/-/1",
                                                                     "psp.unmatched")]  # fmt: skip
    assert_no_clear_account((tmp_path / "decisions.jsonl").read_bytes())
