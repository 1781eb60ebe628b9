"""The validation report's files: `reconcile.json` (the whole result), `reconcile.csv` (the worklist: one
row per listed finding), `completeness.csv` (per company and release day) and `report.html`
(self-contained, every value escaped)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from paysentry.analytics.html import Table, render_page
from paysentry.analytics.kpi_report import csv_safe
from paysentry.analytics.reconcile import CLASSES

WORKLIST_COLUMNS = (
    "class", "day", "company", "payment_id", "vendor", "channel", "account", "currency", "amount",
    "settled_amount", "difference", "invoice_id", "first_payment_id", "platform_state", "event_id", "type",
    "line", "reason", "engine_action", "engine_rules",
)  # fmt: skip
COMPLETENESS_COLUMNS = (
    "company", "day", "currency", "released", "submitted", "settled", "failed", "returned", "cancelled", "open",
    "released_amount", "settled_amount",
)  # fmt: skip
TITLES = {
    "released_not_submitted": "Released, never submitted to the platform",
    "unsettled_past_sla": "Submitted, no outcome within the SLA",
    "amount_mismatch": "Settled for another amount than released",
    "orphan_settlement": "Platform payments the ERP never announced",
    "duplicate_payment": "Same vendor, invoice and amount paid twice",
    "redelivered_event": "Events delivered again (same id and type)",
    "missing_fields": "Events missing required fields",
    "invalid_event": "Other events refused by the contract",
}


def worklist_rows(result: dict[str, Any]) -> Iterator[list[Any]]:
    for name in CLASSES:
        for item in result["classes"][name]["items"]:
            yield [name, *(item.get(column) for column in WORKLIST_COLUMNS[1:])]


def completeness_rows(result: dict[str, Any]) -> Iterator[list[Any]]:
    """One row per company, day and currency (the amounts are per currency; the counts repeat)."""
    for row in result["completeness"]:
        currencies = sorted(set(row["released_amount_by_currency"]) | set(row["settled_amount_by_currency"]))
        for currency in currencies or [""]:
            yield [
                row["company"], row["day"], currency, row["released"], row["submitted"], row["settled"],
                row["failed"], row["returned"], row["cancelled"], row["open"],
                row["released_amount_by_currency"].get(currency, ""),
                row["settled_amount_by_currency"].get(currency, ""),
            ]  # fmt: skip


def _write_csv(path: Path, header: tuple[str, ...], rows: Iterator[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([csv_safe(cell) for cell in row])


def _tables(result: dict[str, Any]) -> list[Table]:
    classes = result["classes"]
    summary = Table(
        "Findings",
        ["class", "count", "listed", "by company"],
        [
            [
                TITLES[name],
                classes[name]["count"],
                classes[name]["listed"],
                ", ".join(f"{company} {count}" for company, count in classes[name]["by_company"].items()),
            ]
            for name in CLASSES
        ],  # fmt: skip
        "each class's full count; the lists below (and reconcile.csv) keep the first items of each",
    )
    completeness = Table(
        "Completeness per company and release day",
        COMPLETENESS_COLUMNS,
        list(completeness_rows(result)),
        "payments released that day, and what the platform did with them by the end of the input",
    )
    tables = [summary, completeness]
    for name in CLASSES:
        items = classes[name]["items"]
        columns = [c for c in WORKLIST_COLUMNS[1:] if any(c in item for item in items)]
        note = "" if classes[name]["count"] == len(items) else f"{classes[name]['count']} in all"
        tables.append(Table(TITLES[name], columns, [[item.get(c) for c in columns] for item in items], note))
    return tables


def write_reconcile_report(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write the report's files into `out_dir` (created if needed); returns them by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "json": out_dir / "reconcile.json",
        "csv": out_dir / "reconcile.csv",
        "completeness": out_dir / "completeness.csv",
        "html": out_dir / "report.html",
    }
    files["json"].write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    _write_csv(files["csv"], WORKLIST_COLUMNS, worklist_rows(result))
    _write_csv(files["completeness"], COMPLETENESS_COLUMNS, completeness_rows(result))
    period = result["period"]
    tracking = result["tracking"]
    subtitle = (
        f"period {period['from'] or 'start'} to {period['to'] or 'end'} · settlement SLA {result['sla_hours']} h · "
        f"{result['events']['read']:,} events read, {result['events']['lines_refused']:,} lines refused · payments "
        f"followed to the end: closed by reason {tracking['closed_by_reason']}"
    )
    headline = [(TITLES[name], result["counts"][name]) for name in CLASSES]
    page = render_page("Payment data validation", subtitle, headline, [], _tables(result))
    files["html"].write_text(page, encoding="utf-8")
    return files
