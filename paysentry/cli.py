"""The `paysentry` command line: simulate, replay, demo, and the rules / alerts / stream sub-commands."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from paysentry.contract import Decision, Event
from paysentry.core import Engine
from paysentry.ordering import IN_MEMORY_ITEMS
from paysentry.redaction import redact_raw
from paysentry.replay import DecisionCounts, Rejected, Replayer, load_lines, ordered_events
from paysentry.rulebook import load_rulebook
from paysentry.settings import EngineSettings
from paysentry.yamlsource import InvalidSource

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
    config = SimulationConfig(days=days, seed=seed)
    events, labelled = write_simulation(config, out, labels)
    console.print(f"wrote [bold]{events}[/] events to {out} and [bold]{labelled}[/] labels to {labels}")
    console.print(f"replay it as of its end: paysentry replay {out} --now {simulation_end(config).isoformat()}")


class ReplayError(Exception):
    """A replay that cannot start or finish (a bad path, a bad ruleset, a full disk): one line for the user."""


@dataclass
class ReplayRun:
    decisions: list[Decision]  # kept only when collecting (tests); the file has them all
    rejected: list[Rejected]  # likewise
    rate: float  # events per second
    events: int  # non-blank lines read, valid or not
    counts: DecisionCounts = field(default_factory=DecisionCounts)
    rejected_lines: int = 0  # dead-lettered: refused by the contract, or failed in the core
    failed: int = 0  # of those, failed in the core
    timer_failures: int = 0  # timers that failed in the core (dead-lettered too, with no input line)
    redelivered: int = 0  # valid events already applied (same id and type): no decision
    state_only: int = 0  # label.* and vendor.* events: they change state, decide nothing
    decided: int = 0  # events that gave a decision
    timer_decisions: int = 0  # decisions raised by timers, with no input line of their own
    entities: int = 0  # entities held in state at the end

    def __iter__(self) -> Iterator[Any]:
        """Unpacks as (decisions, rejected, rate, events)."""
        return iter((self.decisions, self.rejected, self.rate, self.events))


class _Output:
    """An output file opened without truncating it, so a bad path fails before anything is lost."""

    def __init__(self, path: Path, what: str) -> None:
        self.path, self.what = path, what
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = path.open("ab")
        except OSError as exc:
            raise ReplayError(f"cannot write the {what} file {path}: {exc.strerror or exc}") from None

    def start(self) -> None:
        if self.path.is_file():
            self._guard(lambda: self.handle.truncate(0))

    def write(self, data: bytes) -> None:
        self._guard(lambda: self.handle.write(data + b"\n"))

    def close(self) -> None:
        self._guard(self.handle.close)

    def _guard(self, action: Callable[[], object]) -> None:
        try:
            action()
        except OSError as exc:
            with contextlib.suppress(OSError):  # the first error is the one to report
                self.handle.close()
            raise ReplayError(f"cannot write the {self.what} file {self.path}: {exc.strerror or exc}") from None


def _refuse_overlaps(events_path: Path, out: Path, rejected_path: Path) -> None:
    named = {"input": events_path, "decisions": out, "dead-letter": rejected_path}
    seen: list[tuple[str, Path]] = []
    for what, path in named.items():
        if path.is_dir():
            raise ReplayError(f"the {what} path {path} is a directory")
        for other_what, other in seen:
            if path.resolve() == other.resolve() or (path.exists() and other.exists() and path.samefile(other)):
                raise ReplayError(f"the {what} file {path} is the {other_what} file: refusing to overwrite it")
        seen.append((what, path))


def run_replay(
    events_path: Path,
    out: Path,
    rejected_path: Path,
    rules: Path | None,
    quiet: bool = False,
    *,
    collect: bool = True,
    now: float | None = None,
    in_memory_lines: int = IN_MEMORY_ITEMS,
    engine: Engine | None = None,
) -> ReplayRun:
    """Replay a file through the core, writing decisions and dead letters as they come. Events with
    times implausibly far from `now` (epoch seconds; default: the wall clock) are refused; an event the
    core fails on is dead-lettered with the reason. Raises ReplayError, before truncating any output,
    for unusable paths or rules. `engine` replaces the one built from `rules` (notebooks, tests)."""
    _refuse_overlaps(events_path, out, rejected_path)
    if engine is None:
        try:
            engine = Engine(load_rulebook(rules))
        except InvalidSource as exc:
            raise ReplayError(str(exc)) from None
    try:
        source = events_path.open("rb")
    except OSError as exc:
        raise ReplayError(f"cannot read the events file {events_path}: {exc.strerror or exc}") from None
    sink = _Output(out, "decisions")
    dead_letter = _Output(rejected_path, "dead-letter")
    replayer = Replayer(engine, EngineSettings().hash_key())
    run = ReplayRun([], [], 0.0, 0)
    started = time.perf_counter()

    def reject(item: Rejected) -> None:
        run.rejected_lines += 1
        dead_letter.write(item.to_json())
        if collect:
            run.rejected.append(item)

    def emit(decision: Decision) -> None:
        run.counts.add(decision)
        sink.write(decision.to_json())
        if collect:
            run.decisions.append(decision)

    def report_timer_failures() -> None:
        for payment_id, reason in replayer.timer_failures:
            run.timer_failures += 1
            dead_letter.write(Rejected(f"timer failed: {reason}"[:500], 0, "", f"timer:{payment_id}").to_json())
        replayer.timer_failures.clear()

    with source, _progress(quiet) as progress:
        sink.start()
        dead_letter.start()
        task = progress.add_task("replaying", total=None)
        clock = time.time() if now is None else now
        valid = 0
        current_line: tuple[int, bytes] = (0, b"")  # (number, raw) of the event being decided

        def valid_events() -> Iterator[Event]:
            nonlocal valid, current_line
            for number, raw, event in ordered_events(
                source, replayer.account_key, reject, now=clock, limit=in_memory_lines
            ):
                report_timer_failures()
                valid += 1
                current_line = (number, raw)
                if valid % 500 == 0:
                    progress.update(task, completed=valid)
                yield event

        def dead_letter_failed(event: Event, exc: Exception) -> None:
            report_timer_failures()  # the timers that fired before it come first, as they happened
            run.failed += 1
            reason = f"engine error: {type(exc).__name__}: {exc}"[:500]
            number, raw = current_line
            reject(Rejected(reason, number, redact_raw(raw), event.event_id))

        try:
            # one event's failure must not stop the run: it is dead-lettered
            for decision in replayer.run(valid_events(), on_error=dead_letter_failed):
                emit(decision)
        except OSError as exc:  # reading the input, or sorting it through temporary files
            raise ReplayError(f"cannot read and sort the events file {events_path}: {exc.strerror or exc}") from None
        report_timer_failures()
        sink.close()
        dead_letter.close()
    elapsed = time.perf_counter() - started
    # Every non-blank line is one of: decided, dead-lettered, a redelivery, state-only (`Engine.counts`).
    run.events = valid + run.rejected_lines - run.failed
    run.rate = run.events / elapsed if elapsed else 0.0
    run.redelivered, run.state_only = engine.counts["redelivered"], engine.counts["state_only"]
    run.decided, run.timer_decisions = engine.counts["decided"], engine.counts["timer"]
    run.entities = len(replayer.store)
    return run


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, disable=quiet, transient=True,
    )  # fmt: skip


def _parse_now(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an RFC 3339 time (e.g. 2026-11-27T16:30:00Z)") from None
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{text!r} has no UTC offset (e.g. 2026-11-27T16:30:00Z)")
    return moment.timestamp()


@app.command()
def replay(
    events: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="events file (JSON Lines)")],
    out: Annotated[Path, typer.Option("--out", help="decisions file (JSON Lines)")] = Path("decisions.jsonl"),
    dead_letter: Annotated[Path | None, typer.Option(help="rejected events (default: OUT.rejected)")] = None,
    rules: RulesOption = None,
    now: Annotated[
        str | None, typer.Option("--now", help="RFC 3339 time the event times must be plausible around (default: now)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Run the engine over a file of events in event-time order and write one decision per scored event."""
    dead_letter = dead_letter or out.with_name(out.name + ".rejected")
    try:
        engine = Engine(load_rulebook(rules))
    except InvalidSource as exc:
        console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    # start-up's objects (modules, rules, models) live as long as the run: a full collection need not walk them
    gc.collect()  # no garbage of start-up is kept for good
    gc.freeze()
    run = _run_or_exit(events, out, dead_letter, rules, quiet, collect=False, now=_parse_now(now), engine=engine)
    print_summary(run)
    console.print(f"decisions: {out}   rejected: {dead_letter}")


def _run_or_exit(*args: Any, **kwargs: Any) -> ReplayRun:
    try:
        return run_replay(*args, **kwargs)
    except ReplayError as exc:
        console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def print_summary(run: ReplayRun) -> None:
    table = Table(title="replay summary", show_header=False)
    table.add_row("events", f"{run.events:,}")
    table.add_row("decisions", f"{run.counts.total:,}")
    for action in ("allow", "review", "hold", "block"):
        table.add_row(f"  {action}", f"{run.counts.by_action.get(action, 0):,}")
    table.add_row("  from timers (no input line)", f"{run.timer_decisions:,}")
    if run.timer_failures:
        table.add_row("  timers failed in the engine", f"{run.timer_failures:,}")
    table.add_row("rejected events", f"{run.rejected_lines:,}")
    table.add_row("  failed in the engine", f"{run.failed:,}")
    table.add_row("duplicate events (redeliveries)", f"{run.redelivered:,}")
    table.add_row("state-only events (label, vendor)", f"{run.state_only:,}")
    table.add_row("events / second", f"{run.rate:,.0f}")
    console.print(table)
    top = run.counts.top_rules()
    if top:
        rules_table = Table(title="top rules")
        rules_table.add_column("rule")
        rules_table.add_column("hits", justify="right")
        for rule_id, hits in list(top.items())[:10]:
            rules_table.add_row(rule_id, f"{hits:,}")
        console.print(rules_table)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="where the demo writes its files")] = Path("out/demo"),
    days: Annotated[int, typer.Option(min=1, max=365)] = 30,
    seed: int = 7,
    rules: RulesOption = None,
    desk: Annotated[bool, typer.Option(help="import the flagged payments into the review desk's database")] = True,
) -> None:
    """Simulate a month of payments, replay it, show what it caught and its KPIs, and fill the review desk."""
    from paysentry.demo_report import print_alert_summary, print_demo_report, read_decisions, report_kpis
    from paysentry.simulate import SimulationConfig, write_simulation

    workdir.mkdir(parents=True, exist_ok=True)
    events_path, labels_path = workdir / "events.jsonl", workdir / "labels.jsonl"
    config = SimulationConfig(days=days, seed=seed)
    n_events, n_labels = write_simulation(config, events_path, labels_path)
    console.print(f"simulated {n_events:,} events over {days} days ({n_labels} labelled anomalies)")
    out = workdir / "decisions.jsonl"
    # The simulated month has fixed dates: replay it as of its own end, whatever today's date is.
    end = simulation_end(config).timestamp()
    run = _run_or_exit(events_path, out, workdir / "decisions.jsonl.rejected", rules, collect=False, now=end)
    print_summary(run)
    labels = [orjson.loads(line) for line in load_lines(labels_path) if line.strip()]
    # The report's tables read badly when folded into 80 columns (pipes, CI logs): give them room.
    report = Console(width=max(Console().width, 140))
    print_demo_report(read_decisions(out), labels, report)
    print_alert_summary(read_decisions(out), report)
    kpis_json = report_kpis(events_path, labels_path, out, workdir / "kpis", report)
    console.print(f"files in {workdir}/: events.jsonl, labels.jsonl, decisions.jsonl, kpis/")
    if desk:
        _demo_into_desk(out, kpis_json, report)


def _demo_into_desk(decisions: Path, kpis_json: Path, report: Console) -> None:
    """Import the demo's flagged payments into the desk (PAYSENTRY_DATABASE_URL, SQLite by default) and
    say how to open it. A desk that cannot be reached does not fail the demo: it says why."""
    from sqlalchemy.exc import SQLAlchemyError

    from paysentry.demo_report import import_flagged_into_desk, print_desk_howto
    from paysentry.desk.approvals import ApprovalsError
    from paysentry.desk.settings import DeskSettings

    settings = DeskSettings()
    try:
        imported, known, cases = import_flagged_into_desk(decisions, settings.database_url, settings.approvals_path)
    except (ApprovalsError, SQLAlchemyError, OSError) as exc:
        console.print(f"[yellow]review desk not filled[/]: {str(exc).splitlines()[0][:300]}")
        return
    print_desk_howto(settings.database_url, kpis_json, imported, known, cases, report)


def simulation_end(config: Any) -> datetime:
    """A clock for replaying a simulation (its times are fixed, not relative to today): its last day plus
    a week, since settlements and late platform events run past the last day of payments."""
    return datetime.combine(config.start + timedelta(days=config.days + 7), datetime.min.time(), tzinfo=UTC)


def _mount_sub_apps() -> None:
    from models.cli import model_app
    from paysentry.alerts.cli import alerts_app
    from paysentry.analytics.cli import report_app
    from paysentry.connectors.cli import connect_app
    from paysentry.desk.cli import register_desk_commands
    from paysentry.evaluation_cli import evaluation_app
    from rules.cli import rules_app

    app.add_typer(rules_app, name="rules", help="Check, test and backtest YAML rules.")
    app.add_typer(alerts_app, name="alerts", help="Route, silence, acknowledge and test alerts.")
    app.add_typer(report_app, name="report", help="Payment KPIs, the payment-strategy report and data validation.")
    app.add_typer(connect_app, name="connect", help="Convert bank and ERP files into events; watch a drop folder.")
    app.add_typer(model_app, name="model", help="Train, compare, shadow, promote and roll back supervised models.")
    app.add_typer(evaluation_app)  # top-level `evaluate` and `simulate-card`
    register_desk_commands(app)
    try:
        from stream.cli import register_stream_commands
    except ImportError:  # pragma: no cover - the stream package is optional for the embedded run
        return
    register_stream_commands(app)


_mount_sub_apps()
