"""The strategy report's files: `strategy.json`, `strategy.csv` (every recommendation with its saving
and evidence), charts under `charts/` and a self-contained `report.html`."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from paysentry.analytics.charts import Chart, bar_chart
from paysentry.analytics.html import Table, render_page
from paysentry.analytics.kpi_report import csv_safe


def _money(values: dict[str, str]) -> str:
    return ", ".join(f"{float(v):,.2f} {c}" for c, v in values.items()) or "-"


def _ids(ids: list[str]) -> str:
    return ", ".join(ids)


def recommendations(result: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per finding: kind, subject, what to do, money at stake, evidence (payment ids)."""
    for c in result["channel_cost"]["corridors"]:
        if float(c["saving"]) > 0:
            best = next(iter(c["cheapest_channel"]), "")
            yield {
                "kind": "channel_cost",
                "subject": f"{c['company']} {c['currency']} to {c['payee_country']}, {c['amount_band']}",
                "action": f"pay through {best} where possible",
                "saving": {c["currency"]: c["estimated_yearly_saving"]},
                "basis": "per year",
                "evidence": c["evidence"],
            }
    for step in result["approval_steps"]:
        if step["rarely_changes_outcome"]:
            yield {
                "kind": "approval_step",
                "subject": f"{step['company']} {step['approval_chain']}",
                "action": (
                    f"{step['stopped_before_approval'] + step['stopped_after_approval']} of {step['payments']} "
                    f"payments stopped before release; approval takes {step['approval_hours_p50']} h (p50): "
                    "consider simplifying"
                ),
                "saving": {},
                "basis": "time",
                "evidence": step["evidence"],
            }
    rules = result.get("rules")
    if rules:
        for rule in rules["candidates_to_remove"]:
            yield {
                "kind": "rule",
                "subject": rule,
                "action": "never decided an action nor caught a confirmed problem",
                "saving": {},
                "basis": "review effort",
                "evidence": [],
            }
    timing = result["timing"]
    for row in timing["released_after_cutoff"]:
        yield {
            "kind": "cutoff",
            "subject": f"{row['company']} {row['channel']}",
            "action": f"{row['payments']} payments released after cut-off settled a day later: release earlier",
            "saving": {},
            "basis": "days",
            "evidence": row["evidence"],
        }
    for row in timing["paid_early"]:
        if row["payments"]:
            yield {
                "kind": "paid_early",
                "subject": row["company"],
                "action": f"{row['payments']} paid early ({row['days_early']} days in all): pay nearer the due date",
                "saving": row["estimated_yearly_cost"],
                "basis": "per year",
                "evidence": row["evidence"],
            }
    discounts = timing["missed_discounts"]
    if discounts["payments"]:
        yield {
            "kind": "missed_discount",
            "subject": "early-payment discounts",
            "action": f"{discounts['payments']} discounts missed",
            "saving": discounts["lost"],
            "basis": "period",
            "evidence": discounts["evidence"],
        }
    for item in timing["batching"]["top"]:
        yield {
            "kind": "batching",
            "subject": f"{item['company']} vendor {item['vendor']} {item['week']}",
            "action": f"{item['payments']} small payments in one week: pay them together",
            "saving": {item["currency"]: item["saving"]},
            "basis": "period",
            "evidence": item["evidence"],
        }
    for dimension, rows in result["failures"].items():
        for row in rows[:5]:
            yield {
                "kind": f"failures_{dimension}",
                "subject": row["name"],
                "action": f"{row['failures']} of {row['outcomes']} failed or returned",
                "saving": row["cost"],
                "basis": "period",
                "evidence": row["evidence"],
            }


def _charts(result: dict[str, Any], out_dir: Path) -> list[Chart]:
    charts = []
    corridors = [c for c in result["channel_cost"]["corridors"] if float(c["saving"]) > 0][:15]
    if corridors:
        charts.append(
            bar_chart(
                out_dir,
                "saving_by_corridor",
                "Estimated yearly saving by corridor",
                [f"{c['company']} {c['payee_country']} {c['amount_band']}" for c in corridors],
                [float(c["estimated_yearly_saving"]) for c in corridors],
                ylabel="in corridor currency",
            )
        )
    channels = result["failures"]["channel"]
    if channels:
        charts.append(
            bar_chart(
                out_dir,
                "failure_rate_by_channel",
                "Failure and return rate by channel (%)",
                [r["name"] for r in channels],
                [100 * (r["failure_rate"] or 0) for r in channels],
                ylabel="%",
            )
        )
    return charts


def _tables(result: dict[str, Any], recs: list[dict[str, Any]]) -> list[Table]:
    cost = result["channel_cost"]
    tables = [
        Table(
            "Recommendations",
            ["kind", "subject", "what", "money at stake", "basis", "evidence (payments)"],
            [
                [r["kind"], r["subject"], r["action"], _money(r["saving"]), r["basis"], _ids(r["evidence"])]
                for r in recs
            ],
        ),
        Table(
            "Channel cost per corridor",
            [
                "company",
                "currency",
                "payee country",
                "amount band",
                "payments",
                "fees paid",
                "cheapest",
                "saving",
                "yearly saving",
                "channels used",
                "cheapest channel",
                "evidence",
            ],
            [
                [
                    c["company"],
                    c["currency"],
                    c["payee_country"],
                    c["amount_band"],
                    c["payments"],
                    c["fees_paid"],
                    c["cheapest_fees"],
                    c["saving"],
                    c["estimated_yearly_saving"],
                    ", ".join(c["channels_used"]),
                    ", ".join(c["cheapest_channel"]),
                    _ids(c["evidence"]),
                ]
                for c in cost["corridors"]
            ],
            f"{cost['payments_not_priced']} settled payments had no eligible tariff or a fee in another currency",
        ),
        Table(
            "Approval steps",
            [
                "company",
                "chain",
                "payments",
                "approval p50 h",
                "approval p90 h",
                "release wait p50 h",
                "stopped at approval",
                "stopped after",
                "rarely changes outcome",
            ],
            [
                [
                    s["company"],
                    s["approval_chain"],
                    s["payments"],
                    s["approval_hours_p50"],
                    s["approval_hours_p90"],
                    s["release_wait_hours_p50"],
                    s["stopped_before_approval"],
                    s["stopped_after_approval"],
                    "yes" if s["rarely_changes_outcome"] else "no",
                ]
                for s in result["approval_steps"]
            ],
        ),
    ]
    rules = result.get("rules")
    if rules:
        tables.append(
            Table(
                "Rules",
                ["rule", "hits", "decided an action", "confirmed problems", "evidence"],
                [
                    [r["rule"], r["hits"], r["decided"], r["confirmed_payments"], _ids(r["evidence"])]
                    for r in rules["rules"]
                ],
            )
        )
    timing = result["timing"]
    tables.append(
        Table(
            "Paid before the due date",
            ["company", "payments", "days early", "paid late", "cost of capital", "yearly", "evidence"],
            [
                [
                    r["company"],
                    r["payments"],
                    r["days_early"],
                    r["paid_late"],
                    _money(r["cost_of_capital"]),
                    _money(r["estimated_yearly_cost"]),
                    _ids(r["evidence"]),
                ]
                for r in timing["paid_early"]
            ],
        )
    )
    tables.append(
        Table(
            "Released after the cut-off, settled a day later",
            ["company", "channel", "payments", "amount", "evidence"],
            [
                [r["company"], r["channel"], r["payments"], _money(r["amount"]), _ids(r["evidence"])]
                for r in timing["released_after_cutoff"]
            ],
        )
    )
    for dimension, rows in result["failures"].items():
        tables.append(
            Table(
                f"Failures by {dimension.replace('_', ' ')}",
                [dimension, "outcomes", "failures", "rate", "cost", "p50 hours to failure", "evidence"],
                [
                    [
                        r["name"],
                        r["outcomes"],
                        r["failures"],
                        r["failure_rate"],
                        _money(r["cost"]),
                        r["hours_to_failure_p50"],
                        _ids(r["evidence"]),
                    ]
                    for r in rows
                ],
            )
        )
    return tables


def write_strategy_report(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / "strategy.json", "csv": out_dir / "strategy.csv", "html": out_dir / "report.html"}
    files["json"].write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    recs = list(recommendations(result))
    with files["csv"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kind", "subject", "action", "money_at_stake", "basis", "evidence"])
        for r in recs:
            writer.writerow(
                [
                    csv_safe(v)
                    for v in (
                        r["kind"],
                        r["subject"],
                        r["action"],
                        _money(r["saving"]),
                        r["basis"],
                        " ".join(r["evidence"]),
                    )
                ]
            )
    saving = result["channel_cost"]["estimated_yearly_saving_by_currency"]
    batching = result["timing"]["batching"]
    headline = [
        ("yearly saving, cheaper channels", _money(saving)),
        ("recommendations", len(recs)),
        ("batching opportunities", batching["opportunities"]),
        ("period (days)", result["period_days"]),
    ]
    page = render_page(
        "Payment strategy",
        "where paying costs more than it needs to, with the payments behind it",
        headline,
        _charts(result, out_dir / "charts"),
        _tables(result, recs),
    )
    files["html"].write_text(page, encoding="utf-8")
    return files
