"""The `paysentry` command line: simulate, replay, demo, and the rules / alerts / stream sub-commands."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, NamedTuple

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from paysentry.contract import Decision, Event
from paysentry.core import Engine
from paysentry.replay import Rejected, Replayer, event_order, load_lines, read_events, summary_counts
from paysentry.rulebook import load_rulebook
from paysentry.settings import EngineSettings

app = typer.Typer(help="Streaming anomaly detection for ERP payments.", no_args_is_help=True)
console = Console(stderr=True)

RulesOption = Annotated[Path | None, typer.Option("--rules", help="rules directory (default: the built-in rulebook)")]


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="events file (JSON Lines)")] = Path("events.jsonl"),
    labels: Annotated[Path | None, typer.Option(help="labels file (default: next to --out)")] = None,
    days: Annotated[int, typer.Option(min=1, max=3650)] = 30,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Write a realistic synthetic ERP payment stream with labelled, injected anomalies."""
    from paysentry.simulate import SimulationConfig, write_simulation

    labels = labels or out.with_name(out.stem + ".labels.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    events, labelled = write_simulation(SimulationConfig(days=days, seed=seed), out, labels)
    console.print(f"wrote [bold]{events}[/] events to {out} and [bold]{labelled}[/] labels to {labels}")


class ReplayRun(NamedTuple):
    decisions: list[Decision]
    rejected: list[Rejected]
    rate: float  # events per second
    events: int  # lines read, valid or not


def run_replay(events_path: Path, out: Path, rejected_path: Path, rules: Path | None, quiet: bool = False) -> ReplayRun:
    """Replay a file through the core: its decisions, the rejected lines, events/second, events read."""
    settings = EngineSettings()
    ruleset = load_rulebook(rules)
    engine = Engine(ruleset)
    replayer = Replayer(engine, settings.hash_key())
    items = event_order(list(read_events(load_lines(events_path), replayer.account_key)))
    decisions: list[Decision] = []
    rejected: list[Rejected] = []
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as sink, rejected_path.open("wb") as dead_letter, _progress(quiet) as progress:
        task = progress.add_task("replaying", total=len(items))
        for index, item in enumerate(items):
            if isinstance(item, Rejected):
                rejected.append(item)
                dead_letter.write(item.to_json() + b"\n")
            else:
                for decision in replayer.feed(item):
                    decisions.append(decision)
                    sink.write(decision.to_json() + b"\n")
            if index % 500 == 0:
                progress.update(task, completed=index)
        last = max((i.event_time for i in items if isinstance(i, Event)), default=None)
        if last is not None:
            for decision in replayer.advance(int(last.timestamp())):
                decisions.append(decision)
                sink.write(decision.to_json() + b"\n")
        progress.update(task, completed=len(items))
    elapsed = time.perf_counter() - started
    return ReplayRun(decisions, rejected, len(items) / elapsed if elapsed else 0.0, len(items))


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, disable=quiet, transient=True,
    )  # fmt: skip


@app.command()
def replay(
    events: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="events file (JSON Lines)")],
    out: Annotated[Path, typer.Option("--out", help="decisions file (JSON Lines)")] = Path("decisions.jsonl"),
    dead_letter: Annotated[Path | None, typer.Option(help="rejected events (default: OUT.rejected)")] = None,
    rules: RulesOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Run the engine over a file of events in event-time order and write one decision per scored event."""
    dead_letter = dead_letter or out.with_name(out.name + ".rejected")
    run = run_replay(events, out, dead_letter, rules, quiet)
    print_summary(*run)
    console.print(f"decisions: {out}   rejected: {dead_letter}")


def print_summary(decisions: list[Decision], rejected: list[Rejected], rate: float, events: int) -> None:
    counts = summary_counts(decisions)
    table = Table(title="replay summary", show_header=False)
    table.add_row("events", f"{events:,}")
    table.add_row("decisions", f"{len(decisions):,}")
    for action in ("allow", "review", "hold", "block"):
        table.add_row(f"  {action}", f"{counts['by_action'].get(action, 0):,}")
    table.add_row("rejected events", f"{len(rejected):,}")
    table.add_row("events / second", f"{rate:,.0f}")
    console.print(table)
    if counts["by_rule"]:
        rules_table = Table(title="top rules")
        rules_table.add_column("rule")
        rules_table.add_column("hits", justify="right")
        for rule_id, hits in list(counts["by_rule"].items())[:10]:
            rules_table.add_row(rule_id, f"{hits:,}")
        console.print(rules_table)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="where the demo writes its files")] = Path("out/demo"),
    days: Annotated[int, typer.Option(min=1, max=365)] = 30,
    seed: int = 7,
    rules: RulesOption = None,
) -> None:
    """Simulate a month of payments, replay it through the engine, and show what it caught."""
    from paysentry.demo_report import print_alert_summary, print_demo_report
    from paysentry.simulate import SimulationConfig, write_simulation

    workdir.mkdir(parents=True, exist_ok=True)
    events_path, labels_path = workdir / "events.jsonl", workdir / "labels.jsonl"
    n_events, n_labels = write_simulation(SimulationConfig(days=days, seed=seed), events_path, labels_path)
    console.print(f"simulated {n_events:,} events over {days} days ({n_labels} labelled anomalies)")
    out = workdir / "decisions.jsonl"
    run = run_replay(events_path, out, workdir / "decisions.jsonl.rejected", rules)
    print_summary(*run)
    decisions = run.decisions
    labels = [orjson.loads(line) for line in load_lines(labels_path) if line.strip()]
    # The report's tables read badly when folded into 80 columns (pipes, CI logs): give them room.
    report = Console(width=max(Console().width, 140))
    print_demo_report(decisions, labels, report)
    print_alert_summary(decisions, report)
    console.print(f"files in {workdir}/: events.jsonl, labels.jsonl, decisions.jsonl")


def _mount_sub_apps() -> None:
    from paysentry.alerts.cli import alerts_app
    from rules.cli import rules_app

    app.add_typer(rules_app, name="rules", help="Check, test and backtest YAML rules.")
    app.add_typer(alerts_app, name="alerts", help="Route, silence, acknowledge and test alerts.")
    try:
        from stream.cli import register_stream_commands
    except ImportError:  # pragma: no cover - the stream package is optional for the embedded run
        return
    register_stream_commands(app)


_mount_sub_apps()
