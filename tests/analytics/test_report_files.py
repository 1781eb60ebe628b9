"""The report commands write every file they promise, and nothing from the input reaches the HTML or a
spreadsheet as markup or a formula."""

from __future__ import annotations

import base64
import csv
import re
from datetime import timedelta
from pathlib import Path

import orjson
from lxml import html as lxml_html
from typer.testing import CliRunner

from paysentry.analytics.cli import report_app
from tests.analytics.builders import HOUR, Stream
from tests.analytics.conftest import SimFiles

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
FORMULA = '=HYPERLINK("http://evil")'
runner = CliRunner()


def hostile_stream(tmp_path: Path) -> Path:
    s = Stream()
    for index in range(4):
        fields = {
            "company_code": SCRIPT,
            "channel": "ach",
            "currency": "USD",
            "payee_bank": IMG + FORMULA,
            "vendor_name": SCRIPT,
            "payee_country": "US",
            "due_date": "2026-10-20",
        }
        s.payment(f"P{index}", index * HOUR, amount="500.00", **fields)
        s.add(
            "psp.failed" if index == 0 else "psp.settled",
            timedelta(days=1),
            f"P{index}",
            amount="500.00",
            currency="USD",
            channel="ach",
            fee="18.00",
            fee_currency="USD",
            status_reason=SCRIPT + FORMULA,
        )
    return s.write(tmp_path / "events.jsonl")


def assert_no_markup_from_input(page: str) -> None:
    assert SCRIPT not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;" in page  # the value is shown, escaped
    tree = lxml_html.fromstring(page)
    assert not tree.xpath("//script")
    assert all(src.startswith("data:image/svg+xml;base64,") for src in tree.xpath("//img/@src"))
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing loaded from elsewhere
    for src in tree.xpath("//img/@src"):
        svg = base64.b64decode(src.split(",", 1)[1]).decode()
        assert "<script" not in svg and "onerror" not in svg


def test_kpi_report_files(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = runner.invoke(report_app, ["kpis", str(hostile_stream(tmp_path)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    kpis = orjson.loads((out / "kpis.json").read_bytes())
    for key in (
        "payments",
        "amount_by_currency",
        "processing_seconds",
        "failure_rate",
        "fees_by_channel",
        "reconciliation",
    ):
        assert key in kpis
    assert set(kpis["failure_rate"]) >= {"overall", "by_channel"}
    assert {"p50", "p90", "p99"} <= set(kpis["processing_seconds"]["created_to_settled"])
    charts = {p.name for p in (out / "charts").iterdir()}
    assert {"payments_by_company.png", "payments_by_company.svg", "processing_hours.svg"} <= charts
    assert_no_markup_from_input((out / "report.html").read_text())
    with (out / "kpis.csv").open(newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert any(FORMULA in cell for cell in cells)
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


def test_strategy_report_files(tmp_path: Path) -> None:
    out = tmp_path / "strategy"
    result = runner.invoke(report_app, ["strategy", str(hostile_stream(tmp_path)), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    printed = orjson.loads(result.stdout)
    assert printed == orjson.loads((out / "strategy.json").read_bytes())
    assert_no_markup_from_input((out / "report.html").read_text())
    # four 500 USD ach payments each paid 18.00 where ACH costs 0.30 per the shipped tariffs
    corridor = printed["channel_cost"]["corridors"][0]
    assert corridor["saving"] == "53.10" and corridor["cheapest_channel"] == {"ach": 3}


def test_reports_on_the_simulation(tmp_path: Path, sim_files: SimFiles) -> None:
    for command in ("kpis", "strategy"):
        out = tmp_path / command
        args = [command, str(sim_files.events), "--labels", str(sim_files.labels), "--out", str(out)]
        result = runner.invoke(report_app, args)
        assert result.exit_code == 0, result.output
        tree = lxml_html.fromstring((out / "report.html").read_text())
        assert len(tree.xpath("//img")) >= 2
        assert len(tree.xpath("//table")) >= 5


def test_refusals(tmp_path: Path) -> None:
    events = hostile_stream(tmp_path)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        ["kpis", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")],
        ["kpis", str(events), "--out", str(a_file)],
        ["kpis", str(events), "--out", str(tmp_path / "o"), "--from", "yesterday"],
        ["kpis", str(events), "--out", str(tmp_path / "o"), "--from", "2026-10-02", "--to", "2026-10-01"],
        ["strategy", str(events), "--out", str(tmp_path / "o"), "--tariffs", str(tmp_path / "none.yaml")],
    ]
    for args in cases:
        result = runner.invoke(report_app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
