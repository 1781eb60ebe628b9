"""Benchmark of the live stream: one `paysentry worker` on a Kafka broker, end to end.

    .venv/bin/python bench/stream_throughput.py [--days 10 | --events N] [--partitions 4] [--rate 500]
                                                [--orderings exact,bounded] [--companies N] [--scale]
                                                [--profile] [--bootstrap HOST:PORT]

Starts a local broker (devservices/kafka.py) unless --bootstrap is given, simulates a labelled stream,
then makes three measurements, each on topics of its own (prefix `bench-<id>-<run>.`):

1. steady: a worker is up; the stream is produced at --rate events/s, each record stamped with its
   produce time (the Kafka record timestamp). A decision record's timestamp is when the worker emitted
   it, so latency = decision timestamp - produce timestamp of the same event id (timer decisions, whose
   event has no inbound record, are left out). Throughput = events / (last decision - first produce).
   One steady run per ordering mode (--orderings); each prints its p99, split into ingest and decide
   (bench/stream_measure.py), and the decision stage's own ordering wait.
2. backlog: the whole stream is on the broker before a fresh worker starts: events / (last decision -
   first decision), and from the worker's start (startup, group join and table recovery included).
3. faust minimal: right before the backlog run, the same records on a topic of their own, read by a
   minimal Faust agent (bench/faust_minimal.py: parse, one table write, one send per event): the
   yardstick of Faust's own per-event cost on this broker and this machine, at this moment; with
   --rounds N the pair (minimal, backlog) runs N times and the median ratio is printed, since one pair
   on a shared machine can be off by a factor of two;
4. raw client: one aiokafka consumer reads the backlog run's inbound topics and decodes every record
   with `parse_event`, no Faust: the ceiling of the same client and decoding.

With --scale, the backlog run is repeated with two workers in one group (and the ratio printed); with
--companies N the simulated stream has N paying companies (default: the simulator's 3), so that the
partitions get a fairer share; the share each partition gets is printed. --profile runs the one-worker
backlog worker under cProfile and prints where its main thread's time went.

Every worker and the broker it started are stopped at the end (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

from bench.stream_kafka import collect_decisions, produce, raw_client  # noqa: E402
from bench.stream_measure import (  # noqa: E402
    companies,
    engine_stamps,
    hold_line,
    partition_shares,
    profile_summary,
    profiled,
    quantile,
    segments,
    spread,
    timeline,
)
from paysentry.cli import run_replay  # noqa: E402
from paysentry.simulate import SimulationConfig, write_simulation  # noqa: E402
from stream.settings import StreamSettings  # noqa: E402
from stream.sinks import ensure_topics  # noqa: E402
from stream.topics import key_for_record  # noqa: E402

HASH_KEY = "bench-key"
# Faust's recovery logs this once the partitions are assigned, the tables recovered and fetching resumed
# (its "[^Worker]: Ready" comes earlier, before the consumer group has even been joined).
READY = b"Worker ready"
WARM_UP_MS = 2000
EVENTS_PER_DAY = 400  # about what the simulator makes per day with its default vendors (a lower bound)


# -- the stream -------------------------------------------------------------------------------------------


def simulate(workdir: Path, days: int | None, events: int | None, seed: int, company_count: int | None) -> list[bytes]:
    """A simulated labelled stream in event-time order (cut to `events` lines if given)."""
    if days is None:
        assert events is not None
        days = max(2, math.ceil(events / EVENTS_PER_DAY) + 1)
    out, labels = workdir / "events.jsonl", workdir / "labels.jsonl"
    config = SimulationConfig(days=days, seed=seed)
    if company_count is not None:
        config = SimulationConfig(days=days, seed=seed, companies=companies(company_count))
    write_simulation(config, out, labels)
    rows = [line for path in (out, labels) for line in path.read_bytes().splitlines() if line.strip()]
    rows.sort(key=lambda line: datetime.fromisoformat(orjson.loads(line)["event_time"]))
    return rows[:events] if events is not None else rows


def expected_decisions(lines: list[bytes], workdir: Path) -> int:
    """How many events `paysentry replay` decides in this stream (what the worker must emit)."""
    path = workdir / "stream.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    decisions, _, _, _ = run_replay(path, workdir / "replay.jsonl", workdir / "replay.rejected", None, quiet=True)
    return len({d.event_id for d in decisions})


# -- processes --------------------------------------------------------------------------------------------


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log_path: Path
    started: float  # wall clock (time.time())

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.tail()}")
            if READY in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout:.0f}s:\n{self.tail()}")

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def worker_env(
    bootstrap: str, prefix: str, partitions: int, data_dir: Path, idle: float | None, extra: list[str] | None = None
) -> dict[str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PAYSENTRY_")},
        "PAYSENTRY_KAFKA_BROKERS": bootstrap,
        "PAYSENTRY_TOPIC_PREFIX": prefix,
        "PAYSENTRY_ACCOUNT_HASH_KEY": HASH_KEY,
        "PAYSENTRY_PARTITIONS": str(partitions),
        "PAYSENTRY_STORE": "memory",
        "PAYSENTRY_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
    }
    if idle is not None:
        env["PAYSENTRY_IDLE_SECONDS"] = str(idle)
    for item in extra or ():  # --env NAME=VALUE: one setting at a time, to measure it
        name, _, value = item.partition("=")
        env[name] = value
    return env


@contextlib.contextmanager
def running_worker(args: argparse.Namespace, bootstrap: str, prefix: str, workdir: Path, name: str = "worker",
                   extra: tuple[str, ...] = (), profile: Path | None = None) -> Iterator[Worker]:  # fmt: skip
    log_path = workdir / f"{prefix.strip('.')}-{name}.log"
    env = worker_env(bootstrap, prefix, args.partitions, workdir / prefix / name, args.idle_seconds,
                     [*args.env, *extra])  # fmt: skip
    argv = ["worker", "--loglevel", "info"]
    command = profiled(profile, argv) if profile else ["-c", "from paysentry.cli import app; app()", *argv]
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, *command], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    worker = Worker(proc, log_path, time.time())
    try:
        yield worker
    finally:
        worker.stop()


# -- runs ---------------------------------------------------------------------------------------------------


def steady_run(args: argparse.Namespace, bootstrap: str, prefix: str, lines: list[bytes], expect: int,
               workdir: Path, ordering: str) -> None:  # fmt: skip
    settings = settings_for(bootstrap, prefix, args.partitions)
    asyncio.run(ensure_topics(settings))
    with running_worker(args, bootstrap, prefix, workdir, extra=(f"PAYSENTRY_ORDERING={ordering}",)) as worker:
        worker.wait_ready()
        decided: dict[str, int] = {}

        async def both() -> dict[str, int]:
            collector = asyncio.create_task(collect_decisions(settings, expect, args.timeout, decided, worker.check))
            stamps = await produce(settings, lines, args.rate)
            await collector
            return stamps

        stamps = asyncio.run(both())
        routed = asyncio.run(engine_stamps(settings))
    latencies = [float(decided[e] - stamps[e]) for e in decided if e in stamps]
    first, last = min(stamps.values()), max(decided.values(), default=0)
    produced_for = (max(stamps.values()) - first) / 1000
    print(f"steady {ordering:<9} {len(lines):,} events produced at {args.rate:,.0f}/s (took {produced_for:,.1f}s), "
          f"{len(decided):,}/{expect:,} decisions")  # fmt: skip
    print(f"  end to end     {len(lines) / max((last - first) / 1000, 1e-9):,.0f} events/s "
          f"(first produce -> last decision {(last - first) / 1000:,.1f}s)")  # fmt: skip
    print(f"  load           {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    print(
        f"  latency        p50 {quantile(latencies, 50):,.0f} ms, p99 {quantile(latencies, 99):,.0f} ms, "
        f"max {max(latencies, default=math.nan):,.0f} ms (produce -> decision record, {len(latencies):,} events)"
    )
    print(f"  p99 at {args.rate:,.0f}/s  {quantile(latencies, 99):,.0f} ms ({ordering} ordering)")
    # a worker's first second pays one-off costs (a fresh model builds its trees on its first payment, the
    # vendor master data fans out to every partition's first checkpoint): steady state is the rest
    warm = [float(decided[e] - stamps[e]) for e in decided if e in stamps and stamps[e] >= first + WARM_UP_MS]
    print(f"  after warm-up  {spread(warm)} (events produced {WARM_UP_MS / 1000:.0f} s after the first on)")
    for line in segments(stamps, routed, decided):
        print(line)
    if args.timeline:
        for line in timeline(stamps, routed, decided):
            print(line)
    hold = hold_line(worker.tail(20_000))
    print(f"  ordering wait  {hold or 'not reported'} (inside the decision stage)")


def backlog_run(args: argparse.Namespace, bootstrap: str, prefix: str, lines: list[bytes], expect: int,
                workdir: Path, workers: int = 1) -> tuple[StreamSettings, float]:  # fmt: skip
    settings = settings_for(bootstrap, prefix, args.partitions)
    asyncio.run(ensure_topics(settings))
    asyncio.run(produce(settings, lines, 0.0))
    profile = workdir / "worker.prof" if args.profile and workers == 1 else None
    with contextlib.ExitStack() as stack:
        started = [stack.enter_context(running_worker(args, bootstrap, prefix, workdir, f"w{n}", profile=profile))
                   for n in range(workers)]  # fmt: skip
        decided: dict[str, int] = {}
        asyncio.run(collect_decisions(settings, expect, args.timeout, decided, started[0].check))
    first, last = min(decided.values(), default=0), max(decided.values(), default=0)
    rate = len(lines) / max((last - first) / 1000, 1e-9)
    label = "  worker" if workers == 1 else f"  {workers} workers"
    print(f"backlog          {len(lines):,} events on the broker before {workers} worker(s) start, "
          f"{len(decided):,}/{expect:,} decisions")  # fmt: skip
    print(f"{label:<16} {rate:,.0f} events/s (first -> last decision {(last - first) / 1000:,.1f}s)")
    print(f"  with startup   {len(lines) / max(last / 1000 - started[0].started, 1e-9):,.0f} events/s "
          f"(worker start -> last decision {last / 1000 - started[0].started:,.1f}s)")  # fmt: skip
    if profile is not None:
        for line in profile_summary(profile):
            print(line)
        if args.profile_out and profile.exists():
            shutil.copyfile(profile, args.profile_out)
    return settings, rate


def minimal_run(args: argparse.Namespace, bootstrap: str, prefix: str, lines: list[bytes], workdir: Path) -> float:
    """The minimal Faust agent (bench/faust_minimal.py) over the same records, as a backlog."""
    settings = settings_for(bootstrap, prefix, args.partitions)

    async def setup() -> None:
        admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs(), request_timeout_ms=15000)
        await admin.start()
        try:
            topics = [NewTopic(f"{prefix}{name}", args.partitions, 1) for name in ("in", "out")]
            await admin.create_topics(topics, timeout_ms=15000)
        finally:
            await admin.close()
        producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), acks="all", linger_ms=5)
        await producer.start()
        try:
            for line in lines:
                data = orjson.loads(line)
                await producer.send(f"{prefix}in", line, key=key_for_record(data) or b"-")
            await producer.flush()
        finally:
            await producer.stop()

    async def collect(proc: subprocess.Popen[bytes]) -> list[int]:
        consumer = AIOKafkaConsumer(f"{prefix}out", **settings.aiokafka_kwargs(), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
        await consumer.start()
        stamps: list[int] = []
        deadline = time.monotonic() + args.timeout
        try:
            while len(stamps) < len(lines) and time.monotonic() < deadline and proc.poll() is None:
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    stamps += [message.timestamp for message in messages]
        finally:
            await consumer.stop()
        return stamps

    asyncio.run(setup())
    env = {**os.environ, "BENCH_BROKER": bootstrap, "BENCH_PREFIX": prefix, "BENCH_PARTITIONS": str(args.partitions),
           "BENCH_DATA_DIR": str(workdir / prefix)}  # fmt: skip
    with (workdir / "faust-minimal.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "faust_minimal.py")], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        stamps = asyncio.run(collect(proc))
    finally:
        Worker(proc, workdir / "faust-minimal.log", 0.0).stop()
    if len(stamps) < len(lines):
        log_text = (workdir / "faust-minimal.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"faust minimal: {len(stamps):,}/{len(lines):,} records:\n{log_text}")
    seconds = (max(stamps) - min(stamps)) / 1000
    rate = len(lines) / max(seconds, 1e-9)
    print(f"faust minimal    {rate:,.0f} events/s (one table write + one send per event, "
          f"{len(stamps):,}/{len(lines):,} records, first -> last output {seconds:,.1f}s)")  # fmt: skip
    return rate


def settings_for(bootstrap: str, prefix: str, partitions: int) -> StreamSettings:
    return StreamSettings(kafka_brokers=bootstrap, topic_prefix=prefix, partitions=partitions,
                          account_hash_key=HASH_KEY)  # type: ignore[arg-type]  # fmt: skip


@contextlib.contextmanager
def broker(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    if args.bootstrap:
        yield args.bootstrap
        return
    from devservices.kafka import start_kafka

    with start_kafka(workdir) as started:
        yield started.bootstrap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--days", type=int, help="simulated days (default 10)")
    size.add_argument("--events", type=int, help="the first N events of a long enough simulation")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rate", type=float, default=500.0, help="steady run: events per second")
    parser.add_argument("--orderings", default="exact,bounded", help="steady runs: PAYSENTRY_ORDERING of each")
    parser.add_argument("--companies", type=int, help="paying companies in the simulated stream (default 3)")
    parser.add_argument("--profile", action="store_true", help="profile the one-worker backlog run (cProfile)")
    parser.add_argument("--profile-out", type=Path, help="with --profile: keep the worker's pstats file here")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--idle-seconds", type=float, help="PAYSENTRY_IDLE_SECONDS of the workers (default: theirs)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600.0, help="per run: give up waiting for decisions")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every worker (repeatable), e.g. PAYSENTRY_ORDERING=bounded",
    )
    parser.add_argument("--timeline", action="store_true", help="steady runs: latency second by second")
    parser.add_argument("--skip-steady", action="store_true", help="only the backlog runs")
    parser.add_argument("--scale", action="store_true", help="also a backlog run with two workers")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the minimal agent + backlog pair; print the median ratio (a shared machine); 0: steady runs only",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # aiokafka's retries right after topic creation are noise here
    if args.days is None and args.events is None:
        args.days = 10

    with tempfile.TemporaryDirectory(prefix="paysentry-bench-") as tmp:
        workdir = Path(tmp)
        lines = simulate(workdir, args.days, args.events, args.seed, args.companies)
        expect = expected_decisions(lines, workdir)
        print(f"machine          {os.cpu_count()} cores, {platform.machine()}, python {platform.python_version()}, "
              f"{platform.system()} {platform.release()}")  # fmt: skip
        print(f"stream           {len(lines):,} events ({args.days or '-'} days, seed {args.seed}), "
              f"{expect:,} decisions in replay, {args.partitions} partitions")  # fmt: skip
        shares = partition_shares(lines, args.partitions)
        print(f"  share          {args.companies or 3} companies; routed events per partition: "
              f"{', '.join(f'{share:.0%}' for share in shares)}")  # fmt: skip
        run_id = uuid.uuid4().hex[:8]
        with broker(args, workdir) as bootstrap:
            if not args.skip_steady:
                for ordering in filter(None, args.orderings.split(",")):
                    steady_run(args, bootstrap, f"bench-{run_id}-steady-{ordering}.", lines, expect, workdir, ordering)
            if not args.rounds:
                return  # --rounds 0: the steady runs only
            ratios = []
            for round_number in range(args.rounds):
                run = f"{run_id}-{round_number}" if round_number else run_id
                minimal = minimal_run(args, bootstrap, f"bench-{run}-minimal.", lines, workdir)
                settings, one = backlog_run(args, bootstrap, f"bench-{run}-backlog.", lines, expect, workdir)
                ratios.append(one / minimal)
                print(f"  ratio          worker / faust minimal = {one / minimal:.2f}")
            if args.rounds > 1:
                print(f"  ratio median   {statistics.median(ratios):.2f} over {args.rounds} rounds "
                      f"({', '.join(f'{ratio:.2f}' for ratio in ratios)})")  # fmt: skip
            if args.scale:
                _, two = backlog_run(args, bootstrap, f"bench-{run_id}-scale.", lines, expect, workdir, workers=2)
                print(f"  ratio          two workers / one = {two / one:.2f}")
            seen, bad, seconds = asyncio.run(raw_client(settings, len(lines)))
            print(f"raw aiokafka     {seen / seconds:,.0f} events/s consumed + parse_event, no Faust "
                  f"({seen:,} records, {bad} refused, {seconds:,.2f}s)")  # fmt: skip


if __name__ == "__main__":
    main()
