"""`paysentry report kpis`, `strategy` and `reconcile`: the analytics reports from files."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

report_app = typer.Typer(help="Payment KPIs and the payment-strategy report.", no_args_is_help=True)
console = Console(stderr=True)

EventsArg = Annotated[Path, typer.Argument(help="events file (JSON Lines, the event contract)")]
OutOption = Annotated[Path, typer.Option("--out", help="directory for the report's files")]


def parse_moment(text: str | None, option: str) -> datetime | None:
    """A period bound: a date (midnight UTC) or an RFC 3339 time; a time without offset is UTC."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text[:40]!r} is not a date (2026-10-01) or a time (2026-10-01T08:00:00Z)", param_hint=option
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _readable(path: Path | None, what: str) -> None:
    if path is not None and not path.is_file():
        console.print(f"{what} {path} is not a readable file", style="red", markup=False, highlight=False)
        raise typer.Exit(2)


def _out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        console.print(f"--out {out} exists and is not a directory", style="red", markup=False, highlight=False)
        raise typer.Exit(2)


@report_app.command("kpis")
def kpis_command(
    events: EventsArg,
    out: OutOption,
    decisions: Annotated[Path | None, typer.Option(help="decisions file written by replay")] = None,
    labels: Annotated[Path | None, typer.Option(help="label.confirmed events kept apart from the events")] = None,
    start: Annotated[str | None, typer.Option("--from", help="period start (inclusive), date or RFC 3339")] = None,
    end: Annotated[str | None, typer.Option("--to", help="period end (exclusive), date or RFC 3339")] = None,
    sla_hours: Annotated[float, typer.Option(min=0.01, help="settlement SLA for 'unsettled past SLA'")] = 72.0,
    return_window_days: Annotated[
        float, typer.Option(min=0.0, max=366.0, help="days after settlement a return still undoes it")
    ] = 10.0,
) -> None:
    """Payment KPIs for a period: kpis.json, kpis.csv, charts and report.html in --out."""
    from paysentry.analytics.kpi_report import write_kpi_report
    from paysentry.analytics.sources import compute_kpis

    begin, finish = parse_moment(start, "--from"), parse_moment(end, "--to")
    if begin is not None and finish is not None and finish <= begin:
        raise typer.BadParameter("--to must be after --from", param_hint="--to")
    for path, what in ((events, "events file"), (decisions, "--decisions"), (labels, "--labels")):
        _readable(path, what)
    _out_dir(out)
    kpis = compute_kpis(events, decisions, labels_path=labels, start=begin, end=finish, sla_hours=sla_hours,
                        return_window_days=return_window_days)  # fmt: skip
    files = write_kpi_report(kpis, out)
    payments = kpis["payments"]
    rate = kpis["failure_rate"]["overall"]["rate"]
    console.print(
        f"{payments['released']:,} payments released, failure+return rate "
        f"{'n/a' if rate is None else f'{100 * rate:.2f} %'}, "
        f"{kpis['reconciliation']['amount_mismatch']} amount mismatches, "
        f"{kpis['exceptions']['rejected']} rejected events"
    )
    console.print(f"wrote {', '.join(str(p) for p in files.values())}")


@report_app.command("strategy")
def strategy_command(
    events: EventsArg,
    out: OutOption,
    tariffs: Annotated[Path | None, typer.Option(help="channel tariffs (default: config/channels.yaml)")] = None,
    decisions: Annotated[
        Path | None, typer.Option(help="decisions file, for rules that never changed an outcome")
    ] = None,
    labels: Annotated[Path | None, typer.Option(help="label.confirmed events kept apart from the events")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="also print strategy.json to stdout")] = False,
) -> None:
    """Where paying costs more than it needs to: channel cost per corridor, approval steps, timing."""
    from paysentry.analytics.strategy import compute_strategy
    from paysentry.analytics.strategy_report import write_strategy_report
    from paysentry.analytics.tariffs import default_tariffs_path, load_tariffs
    from paysentry.yamlsource import InvalidSource

    tariffs_path = tariffs or default_tariffs_path()
    for path, what in (
        (events, "events file"),
        (tariffs_path, "--tariffs"),
        (decisions, "--decisions"),
        (labels, "--labels"),
    ):
        _readable(path, what)
    _out_dir(out)
    try:
        book = load_tariffs(tariffs_path)
    except InvalidSource as exc:
        console.print(str(exc), style="red", markup=False, highlight=False)
        raise typer.Exit(2) from None
    result = compute_strategy(events, book, decisions_path=decisions, labels_path=labels)
    files = write_strategy_report(result, out)
    if as_json:
        typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    saving = result["channel_cost"]["estimated_yearly_saving_by_currency"]
    console.print(
        "estimated yearly saving from cheaper channels: "
        + (", ".join(f"{float(v):,.2f} {c}" for c, v in saving.items()) or "none found")
    )
    console.print(f"wrote {', '.join(str(p) for p in files.values())}")


@report_app.command("reconcile")
def reconcile_command(
    events: EventsArg,
    out: OutOption,
    decisions: Annotated[
        Path | None, typer.Option(help="decisions file: mark each finding with what the engine decided")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="period start (inclusive), date or RFC 3339")] = None,
    end: Annotated[str | None, typer.Option("--to", help="period end (exclusive), date or RFC 3339")] = None,
    sla_hours: Annotated[float, typer.Option(min=0.01, help="hours after release a payment must be settled")] = 72.0,
    return_window_days: Annotated[
        float, typer.Option(min=0.0, max=366.0, help="days after settlement a return still undoes it")
    ] = 10.0,
    thresholds: Annotated[
        Path | None, typer.Option(help="validation thresholds (config/validation.yaml): exit 1 when one is exceeded")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="also print reconcile.json to stdout")] = False,
) -> None:
    """ERP vs payment platform: completeness per company and day, and each class of finding with the
    list to work through: reconcile.json, reconcile.csv, completeness.csv and report.html in --out."""
    from paysentry.analytics.reconcile import CLASSES, compute_reconcile, mark_engine_decisions
    from paysentry.analytics.reconcile_report import write_reconcile_report
    from paysentry.analytics.sources import iter_decisions
    from paysentry.analytics.validation import load_validation_config, over_threshold
    from paysentry.yamlsource import InvalidSource

    begin, finish = parse_moment(start, "--from"), parse_moment(end, "--to")
    if begin is not None and finish is not None and finish <= begin:
        raise typer.BadParameter("--to must be after --from", param_hint="--to")
    for path, what in ((events, "events file"), (decisions, "--decisions"), (thresholds, "--thresholds")):
        _readable(path, what)
    _out_dir(out)
    config = None
    if thresholds is not None:
        try:
            config = load_validation_config(thresholds)
        except InvalidSource as exc:
            console.print(str(exc), style="red", markup=False, highlight=False)
            raise typer.Exit(2) from None
    result = compute_reconcile(
        events, start=begin, end=finish, sla_hours=sla_hours, return_window_days=return_window_days
    )
    if decisions is not None:
        unreadable = [0]
        marked = mark_engine_decisions(
            result, iter_decisions(decisions, lambda n, r: unreadable.__setitem__(0, unreadable[0] + 1))
        )
        result["decisions"] = {"findings_marked": marked, "unreadable_lines": unreadable[0]}
    files = write_reconcile_report(result, out)
    if as_json:
        typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    counts = result["counts"]
    console.print(", ".join(f"{name} {counts[name]:,}" for name in CLASSES), markup=False, highlight=False)
    console.print(f"wrote {', '.join(str(p) for p in files.values())}", markup=False, highlight=False)
    if config is not None:
        exceeded = over_threshold(result, config)
        for finding in exceeded:
            console.print(
                f"{finding.name}: {finding.count} for company {finding.company}, above {finding.threshold}",
                style="red", markup=False, highlight=False,
            )  # fmt: skip
        if exceeded:
            raise typer.Exit(1)
