"""`paysentry connect convert` and `paysentry connect watch`: bank and ERP files into contract events.

Neither prints a clear account: the console shows counts and reasons (masked), the events file holds
the events as the contract has them (ingest hashes and masks the payee account when it reads them).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from paysentry.connectors.base import Conversion, Limits, PaymentIndex, SeenKeys, zone
from paysentry.connectors.formats import NAMES, Format, FormatError, detect, parse_format, stream_path
from paysentry.connectors.sinks import FileSink, KafkaSink, Sink
from paysentry.connectors.watch import FileOutcome, FolderBusy, Watcher, WatchOptions
from paysentry.yamlsource import InvalidSource

connect_app = typer.Typer(help="Convert bank and ERP files (pain.001/002, camt.053/054, MT940, CSV) into events.",
                          no_args_is_help=True)  # fmt: skip
console = Console(stderr=True)

FormatOption = Annotated[str, typer.Option("--format", "-f", help=f"one of {', '.join(NAMES)}")]
ZoneOption = Annotated[str, typer.Option("--tz", help="time zone of times written without an offset")]
MaxMiB = Annotated[int, typer.Option("--max-file-mib", min=1, max=4096, help="largest file read")]
MaxRecords = Annotated[int, typer.Option("--max-records", min=1, max=10_000_000, help="most records in one file")]
FAULT_ENV = "PAYSENTRY_CONNECT_FAULT"  # "published:N": killed after the N-th batch is out, before the ledger


def _fail(message: str) -> typer.Exit:
    console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _format(text: str) -> Format:
    try:
        return parse_format(text)
    except (FormatError, InvalidSource) as exc:
        raise _fail(str(exc)) from None


def _zone(name: str) -> Any:
    try:
        return zone(name)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _rank(path: Path, limits: Limits) -> int:
    """pain.001 files first, so the payments they name are known when the answers are read."""
    try:
        with path.open("rb") as handle:
            name = detect(handle.read(4096), path.name)
    except Exception:  # an unreadable or unknown file is reported when it is converted
        return 9
    return {"pain.001": 0, "pain.002": 1, "camt.054": 2, "camt.053": 3}.get(name[:8], 5)


@connect_app.command()
def convert(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="pain/camt XML, MT940 or CSV files")],
    out: Annotated[Path, typer.Option("--out", help="events file (JSON Lines); rejects go to OUT.rejected")],
    format_name: FormatOption = "auto",
    tz: ZoneOption = "UTC",
    max_file_mib: MaxMiB = 64,
    max_records: MaxRecords = 200_000,
) -> None:
    """Convert files into contract events; print counts per event type and per problem."""
    chosen, timezone = _format(format_name), _zone(tz)
    limits = Limits(max_file_bytes=max_file_mib * 1024 * 1024, max_records=max_records)
    rejected_path = out.with_name(out.name + ".rejected")
    for path in (out, rejected_path):
        if path.is_dir() or any(path.resolve() == f.resolve() for f in files):
            raise _fail(f"{path} is a directory or one of the input files: refusing to overwrite it")
    index, seen = PaymentIndex(), SeenKeys()
    conversions: list[Conversion] = []
    repeated = 0
    try:
        with out.open("wb") as events, rejected_path.open("wb") as rejects:
            for path in sorted(files, key=lambda p: _rank(p, limits)):
                conversion, repeats = _write_events(path, events, seen, chosen, timezone, limits, index)
                conversions.append(conversion)
                repeated += repeats
                for rejection in conversion.rejections:
                    rejects.write(orjson.dumps(rejection.to_dict()) + b"\n")
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        seen.close()
    _print_conversions(conversions, repeated)
    console.print(f"events: {out}   rejected: {rejected_path}")
    if any(c.refused for c in conversions):
        raise typer.Exit(1)


def _write_events(
    path: Path, events: BinaryIO, seen: SeenKeys, chosen: Format, timezone: Any, limits: Limits, index: PaymentIndex
) -> tuple[Conversion, int]:
    """Stream one file's events into the events file (each event once across all files). A file refused
    at its end (a control sum that does not add up, a truncation) is taken back out: the events file is
    cut back to where the file began, and its events are forgotten, so it holds only whole files."""
    start = events.tell()
    seen.mark()
    repeated = 0
    conversion, stream = stream_path(path, chosen, tz=timezone, limits=limits, index=index)
    for event in stream:
        if not seen.add(f"{event['type']}\x1f{event['event_id']}"):  # a booking in a camt.054 and the camt.053
            repeated += 1
            continue
        events.write(orjson.dumps(event) + b"\n")
    if conversion.refused is not None:
        events.seek(start)
        events.truncate()
        seen.undo()
        conversion.emitted.clear()
        return conversion, 0
    return conversion, repeated


def _print_conversions(conversions: list[Conversion], repeated: int) -> None:
    files = Table(title="files")
    for column in ("file", "format", "events", "rejected", "skipped", "refused because"):
        files.add_column(column)
    by_type: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    for c in conversions:
        by_type.update(c.counts())
        problems.update(_problem(r.reason) for r in c.rejections)
        converted = sum(c.emitted.values())
        files.add_row(escape(Path(c.source).name), escape(c.format), str(converted), str(len(c.rejections)),
                      str(sum(c.skipped.values())), escape(c.refused or ""))  # fmt: skip
    console.print(files)
    totals = Table(title="events by type")
    totals.add_column("type")
    totals.add_column("events", justify="right")
    for kind, count in sorted(by_type.items()):
        totals.add_row(kind, f"{count:,}")
    if repeated:
        totals.add_row("(written once, found again in another file)", f"{repeated:,}")
    console.print(totals)
    if problems:
        table = Table(title="problems")
        table.add_column("problem")
        table.add_column("records", justify="right")
        for problem, count in problems.most_common(20):
            table.add_row(escape(problem), f"{count:,}")
        console.print(table)


def _problem(reason: str) -> str:
    """A reason without the record's own values, so the same problem counts once: 'schema', 'amount'..."""
    head = reason.split(":", 1)[0]
    return head if len(head) <= 60 else head[:60] + "…"


def _fault_from_env() -> Any:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    point, _, count = spec.partition(":")
    after = int(count or 1)

    def crash(at: str, batch: int) -> None:
        if at == point and batch >= after:
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind: what a crash leaves is the test

    return crash


@connect_app.command()
def watch(
    directory: Annotated[Path, typer.Argument(file_okay=False, help="the drop folder")],
    kafka: Annotated[str | None, typer.Option("--kafka", help="publish to the inbound topics at BOOTSTRAP")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="append to this events file instead")] = None,
    once: Annotated[bool, typer.Option("--once", help="convert what is there, then stop")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="seconds between looks at the folder")] = 2.0,
    settle: Annotated[float, typer.Option(min=0, help="a file unchanged this long is complete")] = 2.0,
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="events published per recorded batch")] = 500,
    format_name: Annotated[
        str, typer.Option("--format", "-f", help="auto, or csv:MAPPING for the folder's *.csv files (others: auto)")
    ] = "auto",
    tz: ZoneOption = "UTC",
    max_file_mib: MaxMiB = 64,
    max_records: MaxRecords = 200_000,
) -> None:
    """Convert files dropped in DIR, publish their events once, move them to done/ (or failed/)."""
    if (kafka is None) == (out is None):
        raise _fail("give exactly one of --kafka BOOTSTRAP and --out EVENTS.jsonl")
    if not directory.is_dir():
        raise _fail(f"{directory} is not a directory")
    sink: Sink
    if kafka is not None:
        from stream.settings import StreamSettings, settings_error

        try:
            sink = KafkaSink(StreamSettings(kafka_brokers=kafka))
        except ValueError as exc:
            raise _fail(settings_error(exc)) from None
    else:
        assert out is not None
        sink = FileSink(out)
    limits = Limits(max_file_bytes=max_file_mib * 1024 * 1024, max_records=max_records)
    options = WatchOptions(directory, _format(format_name), _zone(tz), limits, batch=batch, settle=settle)
    try:
        published = asyncio.run(_watch(Watcher(options, sink, _fault_from_env()), once, interval))
    except FolderBusy as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        console.print("stopped")
        return
    except Exception as exc:  # the sink cannot start (broker unreachable, events file not writable)
        raise _fail(f"cannot start: {type(exc).__name__}: {exc}") from None
    if not published:
        raise typer.Exit(1)


async def _watch(watcher: Watcher, once: bool, interval: float) -> bool:
    """Watch until stopped (or one look with `once`); False if a file could not be published."""
    async with watcher:
        while True:
            outcomes = await watcher.scan()
            for outcome in outcomes:
                _print_outcome(outcome)
            if once:
                return all(outcome.status != "error" for outcome in outcomes)
            await asyncio.sleep(interval)


def _print_outcome(outcome: FileOutcome) -> None:
    # A file's name is whatever the sender chose: shown as text, never read as console markup.
    name, reason = escape(outcome.name), escape(outcome.reason or "")
    if outcome.status == "error":
        line = f"[red]error[/] {name}: {reason}; left in place"
    elif outcome.status == "failed":
        line = f"[red]failed[/] {name}: {reason}"
    elif outcome.status == "duplicate":
        line = f"[yellow]duplicate[/] {name}: {reason}, nothing published"
    else:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(outcome.counts.items())) or "no events"
        line = (
            f"[green]done[/] {name}: published {outcome.published} ({kinds}), "
            f"{outcome.already} already out, {outcome.rejected} rejected"
        )
    console.print(line, highlight=False, soft_wrap=True)
