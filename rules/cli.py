"""`paysentry rules check | test | backtest`: the rule author's tools (mounted by paysentry.cli)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rules.loader import check_ruleset, discover
from rules.source import RuleError

rules_app = typer.Typer(help="Check, test and backtest YAML rules.", no_args_is_help=True)
err = Console(stderr=True)

PathArg = Annotated[Path, typer.Argument(help="rules directory (or one rules file)")]


class Format(StrEnum):
    table = "table"
    json = "json"


def _print_errors(errors: list[RuleError]) -> None:
    for error in errors:
        typer.echo(str(error))
    err.print(f"[bold red]{len(errors)} error{'s' if len(errors) != 1 else ''}[/]")


@rules_app.command()
def check(path: PathArg) -> None:
    """Validate rules, lists, companies and rule tests; print every problem as file:line:col: message."""
    from rules.testing import load_tests

    ruleset, errors = check_ruleset(path)
    if ruleset is not None:
        shown = str(path if path.is_dir() else path.parent)
        _, test_errors = load_tests(discover(path), set(ruleset.rule_ids), shown)
        errors = sorted(errors + test_errors)
    if errors:
        _print_errors(errors)
        raise typer.Exit(1)
    assert ruleset is not None
    s = ruleset.summary()
    typer.echo(
        f"ok: {s['rules']} rules ({s['active']} active, {s['shadow']} shadow, {s['disabled']} disabled), "
        f"{s['lists']} lists, {len(s['companies'])} companies; version {s['version']}"
    )


@rules_app.command()
def reload(
    reason: Annotated[str, typer.Option(help="why, for the workers' logs")] = "",
    redis_url: Annotated[str, typer.Option(envvar="PAYSENTRY_REDIS_URL")] = "redis://localhost:6379/0",
) -> None:
    """Tell every running worker to reload its rules now (through Redis); they all switch together."""
    import redis

    from rules.signal import publish_reload

    try:
        receivers = publish_reload(redis.Redis.from_url(redis_url), reason)
    except (redis.RedisError, ValueError) as exc:  # the message names host and port, never the URL's password
        typer.echo(f"error: cannot send the reload signal through Redis: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"reload signal sent to {receivers} worker(s)")


@rules_app.command("test")
def test_cmd(path: PathArg) -> None:
    """Run the rule unit tests (*.tests.yaml) through the core, like `promtool test rules`."""
    from rules.testing import run_tests

    report = run_tests(path)
    if report.errors:
        _print_errors(report.errors)
        raise typer.Exit(1)
    for result in report.results:
        mark = "[green]PASS[/]" if result.ok else "[bold red]FAIL[/]"
        err.print(f"{mark} {result.test.file}:{result.test.line}: {result.test.name}", highlight=False)
        for failure in result.failures:
            err.print(f"     {failure}", highlight=False, markup=False)
    failed = len(report.failed)
    total = len(report.results)
    if failed:
        typer.echo(f"FAILED: {failed} of {total} tests")
        raise typer.Exit(1)
    typer.echo(f"SUCCESS: {total} tests passed")


@rules_app.command()
def backtest(
    path: PathArg,
    events: Annotated[Path, typer.Option("--events", help="events file (JSON Lines)", exists=True, dir_okay=False)],
    labels: Annotated[Path | None, typer.Option("--labels", help="label.confirmed events (JSON Lines)")] = None,
    baseline: Annotated[Path | None, typer.Option("--baseline", help="rules to compare against")] = None,
    warmup: Annotated[float, typer.Option("--warmup", help="days that only build state")] = 0.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the report as JSON here")] = None,
    output: Annotated[Format, typer.Option("--format", help="what to print on stdout")] = Format.table,
) -> None:
    """Replay history through the core with these rules: hits, hit rate, alerts/day, precision/recall
    (with --labels) and the diff against --baseline."""
    from paysentry.settings import EngineSettings
    from rules.backtest import backtest as run_backtest

    candidate, errors = check_ruleset(path)
    base = None
    if baseline is not None:
        base, base_errors = check_ruleset(baseline)
        errors += base_errors
    if candidate is None or errors:
        _print_errors(errors)
        raise typer.Exit(1)
    with Progress(
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as progress:

        def tracker(name: str) -> Any:
            task = progress.add_task(f"replaying ({name})", total=None)
            return lambda done, total: progress.update(task, completed=done, total=total)

        try:
            report = run_backtest(
                candidate,
                events,
                labels_path=labels,
                baseline=base,
                account_key=EngineSettings().hash_key(),
                warmup_days=warmup,
                progress=tracker,
            )
        except (OSError, ValueError) as exc:  # an unreadable or malformed input file: one line, no traceback
            typer.echo(f"backtest: {exc}", err=True)
            raise typer.Exit(2) from None
    data = orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_bytes(data + b"\n")
    if output is Format.json:
        typer.echo(data.decode())
    else:
        print_report(report, Console(width=None if sys.stdout.isatty() else 150))


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}" if value <= 1 else f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_report(report: dict[str, Any], console: Console) -> None:
    s = report["summary"]
    labelled = "precision" in s
    console.print(
        f"ruleset [bold]{report['version']}[/]: {s['events']:,} events, {s['decisions']:,} decisions, "
        f"{s['payments']:,} payments over {s['days']} days (warm-up {s['warmup_days']} d excluded)"
    )
    rules = Table(title="per rule")
    for column in ("rule", "status", "typology", "hits", "payments", "hit rate", "alerts/day"):
        rules.add_column(column, justify="right" if column not in ("rule", "status", "typology") else "left")
    if labelled:
        rules.add_column("precision", justify="right")
        rules.add_column("recall", justify="right")
    for r in report["rules"]:
        row = [
            r["rule_id"],
            r["status"],
            r["typology"] or "-",
            _fmt(r["hits"]),
            _fmt(r["payments"]),
            f"{r['hit_rate']:.2%}" if r["hit_rate"] is not None else "-",
            f"{r['alerts_per_day']:.2f}",
        ]
        if labelled:
            row += [_fmt(r["precision"]), _fmt(r["recall"])]
        rules.add_row(*row)
    console.print(rules)
    if report["typologies"]:
        typ = Table(title="per typology (labelled payments)")
        for column in ("typology", "labelled", "caught by its rules", "recall", "caught by any rule", "missed"):
            typ.add_column(column, justify="left" if column in ("typology", "missed") else "right")
        for name, t in report["typologies"].items():
            typ.add_row(
                name,
                _fmt(t["labelled"]),
                _fmt(t["caught_by_its_rules"]),
                _fmt(t["recall"]),
                _fmt(t["caught_by_any_rule"]),
                ", ".join(t["missed"][:3]) + (" ..." if len(t["missed"]) > 3 else ""),
            )
        console.print(typ)
    line = f"alerts: {s['alerts']:,} ({s['alerts_per_day']:.2f}/day) on {s['alerted_payments']:,} payments"
    if labelled:
        line += (
            f"; precision {_fmt(s['precision'])}, recall {_fmt(s['recall'])}, false positives "
            f"{s['false_positive_payments']:,} = {_fmt(s['false_positive_rate'])} of unlabelled payments"
        )
    console.print(line)
    if "diff" in report:
        d = report["diff"]
        console.print(
            f"vs baseline {report['baseline']['version']}: [green]+{d['new_alerts']}[/] new alerts, "
            f"[red]-{d['lost_alerts']}[/] lost, {d['unchanged_alerts']} unchanged"
        )
        diff = Table(title="diff by rule")
        for column in ("rule", "new", "lost"):
            diff.add_column(column, justify="left" if column == "rule" else "right")
        for rule_id, counts in d["by_rule"].items():
            diff.add_row(rule_id, f"+{counts['new']}", f"-{counts['lost']}")
        console.print(diff)
        for title, key in (("new", "new_sample"), ("lost", "lost_sample")):
            for item in d[key][:10]:
                console.print(
                    f"  {title}: {item['rule_id']} on {item['payment_id']} ({item['event_id']}): {item['reason']}",
                    highlight=False,
                    markup=False,
                )
