"""`paysentry evaluate EVENTS --labels L` (detection quality on a test window after a training window)
and `paysentry simulate-card` (a card-like stream with delayed verdicts to evaluate on). Mounted without
a name, so both are top-level commands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from paysentry.evaluation import FLAG_ACTIONS, PAYER_FIELDS, EvaluationError, Windows, evaluate
from paysentry.yamlsource import InvalidSource

evaluation_app = typer.Typer(help="Measure detection quality the way fraud teams do.")
console = Console()
err = Console(stderr=True)


def _instant(text: str | None, option: str) -> datetime | None:
    """An RFC 3339 time or a date (midnight UTC); a time without an offset is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date or an RFC 3339 time", param_hint=option) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def print_report(report: dict[str, Any], out: Console) -> None:
    summary = report["summary"]
    head = Table(title=f"test window {summary['test_from'] or 'start'} .. {summary['test_to'] or 'end'}")
    head.add_column("measure")
    head.add_column("value", justify="right")
    for name in ("payments", "positives", "flagged", "recall", "recall_incident", "named", "named_positive",
                 "precision", "fpr", "roc_auc",
                 "average_precision", "card_precision_at_k", "card_precision_at_k_best", "k", "flag_at", "decisions",
                 "labels_seen_by_engine", "rejected_lines", "failed_events"):  # fmt: skip
        head.add_row(name, _fmt(summary[name]))
    out.print(head)
    ranks = Table(title="ranking (highest score per payment)")
    for column in ("score", "payments", "roc_auc", "average_precision"):
        ranks.add_column(column, justify="left" if column == "score" else "right")
    for name, row in report["ranking"].items():
        ranks.add_row(name, str(row["payments"]), _fmt(row["roc_auc"]), _fmt(row["average_precision"]))
    out.print(ranks)
    table = Table(
        title="per typology (flagged = action at or above flag_at; incident = recall counting the "
        "earlier failures a flagged decision names)"
    )
    table.add_column("typology", no_wrap=True)
    for column in ("labelled", "caught", "recall", "incident", "recall (own rules)", "flagged", "precision", "fpr"):
        table.add_column(column, justify="right")
    for typology, row in report["typologies"].items():
        table.add_row(typology, *(_fmt(row[c]) for c in ("labelled", "caught", "recall", "recall_incident",
                      "recall_own", "flagged", "precision", "fpr")))  # fmt: skip
    out.print(table)
    per_rule = Table(title="per rule (acting hits only)")
    per_rule.add_column("rule", no_wrap=True)
    for column in ("flagged", "precision", "false positives", "fpr"):
        per_rule.add_column(column, justify="right")
    for rule_id, row in report["rules"].items():
        per_rule.add_row(rule_id, *(_fmt(row[c]) for c in ("flagged", "precision", "false_positives", "fpr")))
    out.print(per_rule)
    days = Table(title=f"card-precision@{summary['k']} per day (UTC)")
    for column in ("day", "payers", "fraud payers", "hits", "precision", "best possible"):
        days.add_column(column, justify="right")
    for row in report["days"]:
        days.add_row(row["day"], str(row["payers"]), str(row["fraud_payers"]), str(row["hits"]),
                     _fmt(row["precision"]), _fmt(row["best"]))  # fmt: skip
    out.print(days)


@evaluation_app.command("evaluate")
def evaluate_command(
    events: Annotated[Path, typer.Argument(help="events file (JSON Lines, any order)")],
    labels: Annotated[Path | None, typer.Option(help="label.confirmed events, fed by their event time")] = None,
    train_days: Annotated[float | None, typer.Option(min=0, help="days before the test window")] = None,
    test_days: Annotated[float | None, typer.Option(min=0, help="length of the test window in days")] = None,
    test_from: Annotated[str | None, typer.Option("--from", help="test window start (date or RFC 3339)")] = None,
    test_to: Annotated[str | None, typer.Option("--to", help="test window end, exclusive")] = None,
    rules: Annotated[Path | None, typer.Option(help="rules directory (default: the built-in rulebook)")] = None,
    k: Annotated[int, typer.Option(min=1, help="payers per day for card-precision@k")] = 100,
    flag_at: Annotated[str, typer.Option(help=f"lowest flagging action: {', '.join(FLAG_ACTIONS)}")] = "review",
    payer: Annotated[str, typer.Option(help=f"who the payer is: {', '.join(PAYER_FIELDS)}")] = "created_by",
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the report as JSON here")] = None,
) -> None:
    """Replay EVENTS (labels merged in by event time, so the engine learns a verdict only once it is
    known) and print per-typology recall, precision and false-positive rate at the configured
    actions, ROC AUC and average precision of risk_score, and card-precision@k per day."""
    from paysentry.rulebook import load_rulebook

    try:
        windows = Windows(train_days, test_days, _instant(test_from, "--from"), _instant(test_to, "--to"))
        if rules is not None and not rules.exists():
            raise EvaluationError(f"{rules}: no such rules directory")
        if json_out is not None and any(p is not None and p.resolve() == json_out.resolve() for p in (events, labels)):
            raise EvaluationError(f"{json_out}: the report would overwrite an input")
        ruleset = load_rulebook(rules)
        report = evaluate(events, labels, ruleset, windows, k=k, flag_at=flag_at, payer_field=payer)
    except (EvaluationError, InvalidSource, OSError) as exc:
        err.print(f"[bold red]evaluate:[/] {exc}")
        raise typer.Exit(2) from None
    print_report(report, console)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        err.print(f"report written to {json_out}")


@evaluation_app.command("simulate-card")
def simulate_card(
    out: Annotated[Path, typer.Option("--out", help="events file (JSON Lines)")] = Path("card/events.jsonl"),
    labels: Annotated[Path | None, typer.Option(help="labels file (default: next to --out)")] = None,
    days: Annotated[int, typer.Option(min=1, max=3650)] = 63,
    payers: Annotated[int, typer.Option(min=1, max=1_000_000)] = 1000,
    payees: Annotated[int, typer.Option(min=2, max=1_000_000)] = 400,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Write a card-like stream (payers paying payees at all hours; compromised payees, compromised
    payers and large amounts) and its fraud verdicts, each known a week after the payment."""
    from paysentry.simulation.cardlike import CardConfig, write_card_stream

    labels = labels or out.with_name(out.stem + ".labels.jsonl")
    config = CardConfig(days=days, payers=payers, payees=payees, seed=seed)
    events, labelled = write_card_stream(config, out, labels)
    err.print(f"wrote [bold]{events}[/] events to {out} and [bold]{labelled}[/] labels to {labels}")
    err.print(f"evaluate the last week: paysentry evaluate {out} --labels {labels} --train-days {max(days - 7, 0)}")
