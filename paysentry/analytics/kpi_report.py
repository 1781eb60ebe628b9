"""The KPI report's files: `kpis.json`, `kpis.csv` (every table in one long CSV), charts (PNG and SVG
under `charts/`) and `report.html` (self-contained)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from paysentry.analytics.charts import kpi_charts
from paysentry.analytics.html import Table, render_page

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (a bank name like `=HYPERLINK(...)`)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def kpi_rows(kpis: dict[str, Any]) -> Iterator[tuple[str, str, str, str, Any]]:
    """(table, dimension, key, metric, value) for every number in the KPI dict."""
    for name, value in kpis["payments"].items():
        yield "payments", "", "", name, value
    for currency, amount in kpis["amount_by_currency"].items():
        yield "amount_by_currency", "currency", currency, "amount", amount
    for dimension, table in kpis["by"].items():
        for key, stats in table.items():
            for metric in ("payments", "settled", "failed", "returned", "failure_rate"):
                yield "by_dimension", dimension, key, metric, stats[metric]
            for currency, amount in stats["amount_by_currency"].items():
                yield "by_dimension", dimension, key, f"amount_{currency}", amount
            for currency, fee in stats["fees_by_currency"].items():
                yield "by_dimension", dimension, key, f"fees_{currency}", fee
    for stage, summary in kpis["processing_seconds"].items():
        for metric, value in summary.items():
            yield "processing_seconds", "stage", stage, metric, value
    for channel, stages in kpis["processing_seconds_by_channel"].items():
        for stage, summary in stages.items():
            for metric in ("count", "p50", "p90", "p99"):
                yield "processing_seconds_by_channel", channel, stage, metric, summary[metric]
    for channel, row in kpis["failure_rate"]["by_channel"].items():
        for metric, value in row.items():
            yield "failure_rate", "channel", channel, metric, value
    for metric, value in kpis["failure_rate"]["overall"].items():
        yield "failure_rate", "", "overall", metric, value
    for reason, count in kpis["failure_rate"]["reasons"].items():
        yield "failure_reasons", "reason", reason, "count", count
    for channel, fees in kpis["fees_by_channel"].items():
        for currency, fee in fees["fees_by_currency"].items():
            yield "fees_by_channel", channel, currency, "fees", fee
            yield "fees_by_channel", channel, currency, "share_of_amount", fees["share_of_amount"].get(currency)
    for metric, value in kpis["reconciliation"].items():
        yield "reconciliation", "", "", metric, value
    exceptions = kpis["exceptions"]
    for metric in ("rejected", "duplicates"):
        yield "exceptions", "", "", metric, exceptions[metric]
    for reason, count in exceptions["rejected_by_reason"].items():
        yield "exceptions", "rejected_reason", reason, "count", count
    decisions = kpis.get("decisions")
    if decisions:
        for action, count in decisions["by_action"].items():
            yield "decisions", "action", action, "count", count
        for rule, count in decisions["by_rule"].items():
            yield "decisions", "rule", rule, "hits", count
        for rule, row in decisions["rule_precision"].items():
            for metric, value in row.items():
                yield "rule_precision", "rule", rule, metric, value


def _hours(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 3600:,.2f} h"


def _pct(rate: float | None) -> str:
    return "" if rate is None else f"{100 * rate:.2f} %"


def kpi_tables(kpis: dict[str, Any]) -> list[Table]:
    tables = [
        Table(
            "Processing time per stage",
            ["stage", "payments", "p50", "p90", "p99", "max"],
            [
                [s, v["count"], _hours(v["p50"]), _hours(v["p90"]), _hours(v["p99"]), _hours(v["max"])]
                for s, v in kpis["processing_seconds"].items()
            ],
            "created → approved → released → submitted → settled; a stage counts when it ends in the period",
        ),
        Table(
            "Failure and return rate by channel",
            ["channel", "outcomes", "failed", "returned", "rate"],
            [
                [c, v["outcomes"], v["failed"], v["returned"], _pct(v["rate"])]
                for c, v in kpis["failure_rate"]["by_channel"].items()
            ],
        ),
        Table(
            "Failure and return reasons",
            ["reason", "count"],
            [list(kv) for kv in kpis["failure_rate"]["reasons"].items()],
        ),
        Table(
            "Fees by channel",
            ["channel", "currency", "fees", "settled amount", "fee share"],
            [
                [c, cur, fee, v["settled_amount_by_currency"].get(cur, ""), _pct(v["share_of_amount"].get(cur))]
                for c, v in kpis["fees_by_channel"].items()
                for cur, fee in v["fees_by_currency"].items()
            ],
        ),
        Table("Reconciliation", ["state", "payments"], [[k, v] for k, v in kpis["reconciliation"].items()]),
    ]
    for dimension, table in kpis["by"].items():
        rows = [
            [
                key,
                v["payments"],
                ", ".join(f"{a} {c}" for c, a in v["amount_by_currency"].items()),
                v["settled"],
                v["failed"],
                v["returned"],
                _pct(v["failure_rate"]),
                ", ".join(f"{a} {c}" for c, a in v["fees_by_currency"].items()),
            ]
            for key, v in sorted(table.items(), key=lambda kv: -kv[1]["payments"])
        ]
        columns = [dimension, "payments", "amount", "settled", "failed", "returned", "failure rate", "fees"]
        tables.append(Table(f"By {dimension.replace('_', ' ')}", columns, rows))
    exceptions = kpis["exceptions"]
    tables.append(
        Table(
            "Exceptions",
            ["kind", "count"],
            [
                ["rejected events", exceptions["rejected"]],
                ["duplicates", exceptions["duplicates"]],
                *[[f"rejected: {r}", n] for r, n in exceptions["rejected_by_reason"].items()],
            ],
        )
    )
    decisions = kpis.get("decisions")
    if decisions:
        tables.append(
            Table("Decisions by action", ["action", "decisions"], [list(kv) for kv in decisions["by_action"].items()])
        )
        tables.append(
            Table(
                "Rules",
                ["rule", "hits", "flagged payments", "confirmed", "legit", "unlabelled", "precision"],
                [
                    [
                        r,
                        decisions["by_rule"].get(r, 0),
                        p["flagged_payments"],
                        p["confirmed"],
                        p["legit"],
                        p["unlabelled"],
                        _pct(p["precision"]),
                    ]
                    for r, p in decisions["rule_precision"].items()
                ],
                "precision = confirmed / (confirmed + legit) among the payments the rule flagged",
            )
        )
    else:
        tables.append(Table("Decisions", ["-"], [], "no decisions file given (--decisions)"))
    return tables


def headline(kpis: dict[str, Any]) -> list[tuple[str, Any]]:
    payments = kpis["payments"]
    rate = kpis["failure_rate"]["overall"]["rate"]
    settle = kpis["processing_seconds"]["created_to_settled"]
    amounts = ", ".join(f"{float(a):,.2f} {c}" for c, a in kpis["amount_by_currency"].items()) or "0"
    recon = kpis["reconciliation"]
    return [
        ("payments released", f"{payments['released']:,}"),
        ("amount released", amounts),
        ("failure + return rate", _pct(rate) or "n/a"),
        ("created → settled p50", _hours(settle["p50"]) or "n/a"),
        ("created → settled p90", _hours(settle["p90"]) or "n/a"),
        ("amount mismatches", recon["amount_mismatch"]),
        ("unsettled past SLA", recon["unsettled_past_sla"]),
        ("orphan settlements", recon["orphan_settlements"]),
    ]


def write_kpi_report(kpis: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write the report's files into `out_dir` (created if needed); returns them by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / "kpis.json", "csv": out_dir / "kpis.csv", "html": out_dir / "report.html"}
    files["json"].write_bytes(orjson.dumps(kpis, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    with files["csv"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["table", "dimension", "key", "metric", "value"])
        for row in kpi_rows(kpis):
            writer.writerow([csv_safe(cell) for cell in row])
    charts = kpi_charts(kpis, out_dir / "charts")
    period = kpis["period"]
    subtitle = (
        f"period {period['from'] or 'start'} to {period['to'] or 'end'} · events "
        f"{period['first_event'] or '-'} … {period['last_event'] or '-'}"
    )
    page = render_page("Payment KPIs", subtitle, headline(kpis), charts, kpi_tables(kpis))
    files["html"].write_text(page, encoding="utf-8")
    return files
