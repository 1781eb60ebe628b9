"""`paysentry report reconcile`: each class of finding on a hand-built stream with known answers, the
simulator's injected reconciliation errors found exactly (its labels are the independent truth), bounded
state, and the report's files (escaped, no clear account, formula-safe CSV)."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from paysentry.analytics.cli import report_app
from paysentry.analytics.reconcile import CLASSES, ReconcileBuilder, compute_reconcile, reconcile_lines
from paysentry.analytics.sources import bounded_lines
from paysentry.decode import MAX_RECORD_BYTES
from tests.analytics.builders import HOUR, T0, Stream
from tests.analytics.conftest import SimFiles

DAY = timedelta(days=1)
CLEAR_ACCOUNT = "DE89370400440532013000"
runner = CliRunner()


def _settle(stream: Stream, payment_id: str, at: timedelta, amount: str = "100.00", company: str = "DE01") -> None:
    stream.add("psp.settled", at, payment_id, amount=amount, company_code=company)


def known_stream() -> Stream:
    """One payment per class, plus a clean one; all of company DE01, released on T0's day."""
    s = Stream()
    base = {"company_code": "DE01", "payee_account": CLEAR_ACCOUNT}
    s.payment("P-OK", timedelta(0), invoice_id="INV-1", **base)
    _settle(s, "P-OK", 5 * HOUR)
    # released, never submitted
    s.add("payment.released", 2 * HOUR, "P-NOSUB", invoice_id="INV-2", **base)
    # submitted, never settled
    s.payment("P-LATE", timedelta(0), invoice_id="INV-3", **base)
    # settled for less than released
    s.payment("P-LESS", timedelta(0), invoice_id="INV-4", amount="250.00", **base)
    _settle(s, "P-LESS", 6 * HOUR, amount="240.00")
    # the platform settles a payment the ERP never announced
    s.add("psp.submitted", 3 * HOUR, "P-GHOST", company_code="DE01", amount="999.00")
    _settle(s, "P-GHOST", 3 * HOUR + timedelta(minutes=30), amount="999.00")
    # the same invoice (keyed differently), vendor and amount released again under another id
    s.payment("P-DUP", 3 * HOUR, invoice_id="inv 0001", **base)
    _settle(s, "P-DUP", 8 * HOUR)
    # a returned payment paid again with the same invoice is a re-send, not a duplicate
    s.payment("P-RET", timedelta(0), invoice_id="INV-5", **base)
    s.add("psp.returned", 5 * HOUR, "P-RET", company_code="DE01", status_reason="account closed")
    s.payment("P-RESEND", 6 * HOUR, invoice_id="INV-5", **base)
    _settle(s, "P-RESEND", 9 * HOUR)
    # the first event of the stream delivered again
    s.events.append(dict(s.events[0]))
    return s


def _run(path: Path, **options: Any) -> dict[str, Any]:
    """Validated up to three days after T0: the 48 h SLA of every payment has run out by then."""
    return compute_reconcile(path, sla_hours=48, **{"end": T0 + 3 * DAY, **options})


def _ids(result: dict[str, Any], name: str) -> list[str]:
    return [item.get("payment_id") or item.get("reason") for item in result["classes"][name]["items"]]


def test_each_class_finds_exactly_its_payment(tmp_path: Path) -> None:
    missing_amount = orjson.dumps({"type": "payment.released", "event_id": "x1", "event_time": T0.isoformat(),
                                   "payment_id": "P-X", "vendor_id": "V1", "currency": "EUR"})  # fmt: skip
    path = known_stream().write(tmp_path / "events.jsonl", [missing_amount, b'{"type": "payment.nonsense"}'])
    result = _run(path)
    assert _ids(result, "released_not_submitted") == ["P-NOSUB"]
    assert _ids(result, "unsettled_past_sla") == ["P-LATE"]
    assert _ids(result, "amount_mismatch") == ["P-LESS"]
    assert _ids(result, "orphan_settlement") == ["P-GHOST"]
    assert _ids(result, "duplicate_payment") == ["P-DUP"]
    assert result["classes"]["duplicate_payment"]["items"][0]["first_payment_id"] == "P-OK"
    assert [i["event_id"] for i in result["classes"]["redelivered_event"]["items"]] == ["e00001"]
    assert result["counts"]["missing_fields"] == 1
    assert "amount" in result["classes"]["missing_fields"]["items"][0]["reason"]
    assert result["counts"]["invalid_event"] == 1
    mismatch = result["classes"]["amount_mismatch"]["items"][0]
    assert (mismatch["amount"], mismatch["settled_amount"], mismatch["difference"]) == ("250.00", "240.00", "10.00")
    assert mismatch["account"] == "****3000"
    assert result["classes"]["orphan_settlement"]["items"][0]["platform_state"] == "settled"
    assert result["counts"]["amount_mismatch"] == result["classes"]["amount_mismatch"]["by_company"]["DE01"]


def test_completeness_per_company_and_release_day(tmp_path: Path) -> None:
    result = _run(known_stream().write(tmp_path / "events.jsonl"))
    (row,) = result["completeness"]
    assert (row["company"], row["day"]) == ("DE01", T0.date().isoformat())
    # released: OK, NOSUB, LATE, LESS, DUP, RET, RESEND (7); NOSUB never reached the platform
    assert (row["released"], row["submitted"], row["settled"], row["returned"], row["open"]) == (7, 6, 4, 1, 2)
    assert row["released_amount_by_currency"] == {"EUR": "850.00"}
    assert row["settled_amount_by_currency"] == {"EUR": "540.00"}


def test_period_bounds_what_counts(tmp_path: Path) -> None:
    s = Stream()
    s.add("payment.released", timedelta(0), "P-OLD", company_code="DE01")
    s.add("payment.released", 3 * DAY, "P-NEW", company_code="DE01")
    path = s.write(tmp_path / "events.jsonl")
    # P-OLD's SLA runs out on day 2 (in the period), P-NEW's on day 5 (after it)
    result = _run(path, start=T0 + DAY, end=T0 + 4 * DAY)
    assert _ids(result, "released_not_submitted") == ["P-OLD"]
    assert [row["day"] for row in result["completeness"]] == [(T0 + 3 * DAY).date().isoformat()]


def test_state_is_dropped_when_reconciled_or_past_capacity(tmp_path: Path) -> None:
    s = Stream()
    for n in range(30):
        s.add("payment.released", n * HOUR, f"P{n}", company_code="DE01")
    path = s.write(tmp_path / "events.jsonl")
    builder = ReconcileBuilder(sla_hours=1000, max_tracked=10, memory=5)
    result = reconcile_lines(bounded_lines(path, MAX_RECORD_BYTES), builder)
    tracking = result["tracking"]
    assert tracking["closed_by_reason"] == {"capacity": 20, "end": 10}
    assert tracking["forgotten_keys"]["events"] == 25
    settled = known_stream()
    result = _run(settled.write(tmp_path / "settled.jsonl"))
    assert result["tracking"]["closed_by_reason"]["settled"] == 4


def test_overlong_line_is_refused_with_its_reason_and_others_are_read(tmp_path: Path) -> None:
    s = Stream()
    s.add("payment.released", timedelta(0), "P1", company_code="DE01")
    huge = b'{"type": "payment.released", "vendor_name": "' + b"x" * (MAX_RECORD_BYTES + 10) + b'"}'
    path = s.write(tmp_path / "events.jsonl", [huge])
    result = _run(path)
    assert result["counts"]["invalid_event"] == 1
    assert "longer than" in result["classes"]["invalid_event"]["items"][0]["reason"]
    assert result["completeness"][0]["released"] == 1


def test_simulated_reconciliation_errors_are_found_exactly(sim_files: SimFiles) -> None:
    """The simulator labels every settlement mismatch, orphan settlement, unsettled payment and duplicate
    it injects; the validation must find those and nothing else."""
    result = compute_reconcile(sim_files.events)
    truth: dict[str, set[str]] = {}
    for line in sim_files.labels.read_bytes().splitlines():
        label = orjson.loads(line)
        truth.setdefault(label.get("typology") or "", set()).add(label["payment_id"])
    pairs = {
        "amount_mismatch": "settlement_mismatch",
        "orphan_settlement": "orphan_settlement",
        "duplicate_payment": "duplicate_payment",
        "unsettled_past_sla": "unsettled_sla",
    }
    for name, typology in pairs.items():
        found = {item["payment_id"] for item in result["classes"][name]["items"]}
        assert found == truth[typology], name
        assert result["counts"][name] == len(truth[typology])
    assert result["counts"]["released_not_submitted"] == 0
    assert result["counts"]["redelivered_event"] == result["counts"]["invalid_event"] == 0


def test_cli_writes_escaped_files_without_the_clear_account(tmp_path: Path) -> None:
    s = known_stream()
    s.add("payment.released", 4 * HOUR, "<script>alert(1)</script>", company_code="=HYPERLINK(1)",
          payee_account=CLEAR_ACCOUNT)  # fmt: skip
    path = s.write(tmp_path / "events.jsonl")
    out = tmp_path / "out"
    result = runner.invoke(
        report_app,
        ["reconcile", str(path), "--out", str(out), "--sla-hours", "48", "--json", "--to", (T0 + 3 * DAY).isoformat()],
    )
    assert result.exit_code == 0, result.output
    printed = orjson.loads(result.stdout[result.stdout.index("{") :])
    assert printed["counts"]["amount_mismatch"] == 1
    for name in ("reconcile.json", "reconcile.csv", "completeness.csv", "report.html"):
        text = (out / name).read_text()
        assert CLEAR_ACCOUNT not in text and "0532013000" not in text, name
    page = (out / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    rows = list(csv.DictReader((out / "reconcile.csv").open()))
    assert {row["class"] for row in rows} <= set(CLASSES)
    hostile = [row for row in rows if row["payment_id"] == "<script>alert(1)</script>"]
    assert hostile and hostile[0]["company"] == "'=HYPERLINK(1)"
    companies = {row["company"] for row in csv.DictReader((out / "completeness.csv").open())}
    assert companies == {"DE01", "'=HYPERLINK(1)"}


def test_cli_thresholds_set_the_exit_code(tmp_path: Path) -> None:
    path = known_stream().write(tmp_path / "events.jsonl")
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("default_threshold: 5\n")
    strict = tmp_path / "strict.yaml"
    strict.write_text("default_threshold: 5\nthresholds: {amount_mismatch: 0}\n")
    ok = runner.invoke(report_app, ["reconcile", str(path), "--out", str(tmp_path / "a"), "--thresholds", str(lenient)])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(report_app, ["reconcile", str(path), "--out", str(tmp_path / "b"), "--thresholds", str(strict)])
    assert bad.exit_code == 1
    assert "amount_mismatch: 1 for company DE01, above 0" in " ".join(bad.output.split())


def test_cli_refuses_bad_arguments_in_one_line(tmp_path: Path) -> None:
    path = known_stream().write(tmp_path / "events.jsonl")
    broken = tmp_path / "broken.yaml"
    broken.write_text("default_threshold: 1\nthreshold: {amount_mismatch: 0}\n")
    result = runner.invoke(
        report_app, ["reconcile", str(path), "--out", str(tmp_path / "o"), "--thresholds", str(broken)]
    )
    assert result.exit_code == 2
    assert f"{broken}:2:1:" in "".join(result.output.split()) and "threshold" in result.output
    result = runner.invoke(report_app, ["reconcile", str(path), "--out", str(tmp_path / "o"),
                                        "--from", "2026-10-05", "--to", "2026-10-01"])  # fmt: skip
    assert result.exit_code == 2 and "--to must be after --from" in result.output
    result = runner.invoke(report_app, ["reconcile", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "is not a readable file" in " ".join(result.output.split())


def test_cli_marks_findings_with_the_engines_decisions(tmp_path: Path) -> None:
    path = known_stream().write(tmp_path / "events.jsonl")
    hit = {"rule_id": "settlement_mismatch", "severity": "high", "action": "hold", "reason": "settled 240.00"}
    records = [
        {"payment_id": "P-LESS", "event_id": "d1", "event_time": T0.isoformat(), "action": "allow",
         "risk_score": 0.1, "rule_hits": []},
        {"payment_id": "P-LESS", "event_id": "d2", "event_time": T0.isoformat(), "action": "hold",
         "risk_score": 0.9, "rule_hits": [hit]},
        {"payment_id": "P-OTHER", "event_id": "d3", "event_time": T0.isoformat(), "action": "block",
         "risk_score": 1.0, "rule_hits": []},
    ]  # fmt: skip
    decisions = tmp_path / "decisions.jsonl"
    decisions.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\nnot a decision\n")
    out = tmp_path / "out"
    args = [
        "reconcile",
        str(path),
        "--out",
        str(out),
        "--decisions",
        str(decisions),
        "--sla-hours",
        "48",
        "--to",
        (T0 + 3 * DAY).isoformat(),
    ]
    result = runner.invoke(report_app, args)
    assert result.exit_code == 0, result.output
    written = orjson.loads((out / "reconcile.json").read_bytes())
    assert written["decisions"] == {"findings_marked": 1, "unreadable_lines": 1}
    (mismatch,) = written["classes"]["amount_mismatch"]["items"]
    assert (mismatch["engine_action"], mismatch["engine_rules"]) == ("hold", "settlement_mismatch")
    assert "engine_action" not in written["classes"]["released_not_submitted"]["items"][0]
