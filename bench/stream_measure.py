"""What bench/stream_throughput.py measures besides rates: where a decision's latency goes, how the simulated
stream spreads over the partitions (and a stream with more companies), and a profile of a worker.

- `engine_stamps`: event id -> timestamp of the `engine.events` record that carried it (when the ingest
  stage handed its batch to the producer), so a produce -> decision latency splits into *ingest* (fetch,
  decode, routing, batching) and *decide* (internal hop, event-time ordering wait, the core, output);
- `hold_line`: the worker's own account of the ordering wait (the decision stage logs it on shutdown);
- `companies`: n paying companies made of the simulator's three (CN01, US01, DE01, then CN02, ...), for a
  fair share of the partitions when measuring two workers against one;
- `profiled`/`profile_summary`: the worker under cProfile, and the share of the decision agent's time
  spent in `Engine.process` (what is left of a worker's cost once Faust's is paid per batch).
"""

from __future__ import annotations

import dataclasses
import math
import pstats
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from paysentry.simulation.config import DEFAULT_COMPANIES, SimulatedCompany
from stream.settings import StreamSettings
from stream.topics import ENGINE, partition_for_shard


def quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else math.nan)


def spread(values: list[float]) -> str:
    return f"p50 {quantile(values, 50):,.0f} ms, p99 {quantile(values, 99):,.0f} ms"


# -- the stream's companies and partitions ------------------------------------------------------------------


def companies(count: int) -> tuple[SimulatedCompany, ...]:
    """`count` companies: the simulator's own first, then copies of them under new codes (same habits)."""
    made = []
    for number in range(count):
        base = DEFAULT_COMPANIES[number % len(DEFAULT_COMPANIES)]
        serial = number // len(DEFAULT_COMPANIES) + 1
        made.append(base if serial == 1 else dataclasses.replace(base, code=f"{base.code[:2]}{serial:02d}"))
    return tuple(made)


def partition_shares(lines: list[bytes], partitions: int) -> list[float]:
    """Share of the routed events (payments, platform events, labels) each engine partition gets."""
    first_company: dict[str, str] = {}
    counts: Counter[int] = Counter()
    for line in lines:
        data = orjson.loads(line)
        payment = data.get("payment_id")
        if not payment:
            continue  # vendor events go to every partition
        company = first_company.setdefault(payment, data.get("company_code") or "~unknown")
        counts[partition_for_shard(company, partitions)] += 1
    total = sum(counts.values()) or 1
    return [counts[p] / total for p in range(partitions)]


# -- latency segments ---------------------------------------------------------------------------------------


async def engine_stamps(settings: StreamSettings) -> dict[str, int]:
    """Event id -> timestamp (ms) of the first `engine.events` record carrying it, up to the end offsets
    as of now (the worker keeps writing ticks)."""
    consumer = AIOKafkaConsumer(**settings.aiokafka_kwargs(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    stamps: dict[str, int] = {}
    try:
        tps = [TopicPartition(settings.topic(ENGINE), p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                for message in messages:
                    data = orjson.loads(message.value)
                    items = data.get("items", []) if data.get("k") == "b" else [data] if data.get("k") == "e" else []
                    for item in items:
                        stamps.setdefault(item["ev"]["event_id"], message.timestamp)
        return stamps
    finally:
        await consumer.stop()


def segments(produced: dict[str, int], routed: dict[str, int], decided: dict[str, int]) -> list[str]:
    """produce -> engine record (ingest) and engine record -> decision (hop, ordering wait, core)."""
    ingest = [float(routed[e] - produced[e]) for e in decided if e in routed and e in produced]
    decide = [float(decided[e] - routed[e]) for e in decided if e in routed]
    return [
        f"  ingest         {spread(ingest)} (produce -> engine.events record: fetch, decode, route, batch)",
        f"  decide         {spread(decide)} (engine.events record -> decision: hop, ordering wait, core)",
    ]


def timeline(produced: dict[str, int], routed: dict[str, int], decided: dict[str, int]) -> list[str]:
    """Latency second by second of produce time (p99 and max, whole and ingest part), so a stall at start
    (group join, first fetch) can be told from one that recurs (checkpoints, commits, sweeps)."""
    first = min(produced.values(), default=0)
    whole: dict[int, list[float]] = {}
    ingest: dict[int, list[float]] = {}
    for event_id, decided_at in decided.items():
        if event_id not in produced:
            continue
        second = (produced[event_id] - first) // 1000
        whole.setdefault(second, []).append(float(decided_at - produced[event_id]))
        if event_id in routed:
            ingest.setdefault(second, []).append(float(routed[event_id] - produced[event_id]))
    out = ["  by second      produce second: p99 / max ms (ingest p99 / max)"]
    for second in sorted(whole):
        part = ingest.get(second, [math.nan])
        out.append(f"    {second:>4}s        {quantile(whole[second], 99):6,.0f} / {max(whole[second]):6,.0f}"
                   f"   ({quantile(part, 99):6,.0f} / {max(part):6,.0f})  {len(whole[second]):,} events")  # fmt: skip
    return out


def hold_line(log_text: str) -> str | None:
    """The decision stage's last report of how long events waited for event-time order."""
    lines = [line for line in log_text.splitlines() if "ordering wait" in line]
    return lines[-1].split("ordering wait", 1)[1].strip(" :") if lines else None


# -- profile ------------------------------------------------------------------------------------------------

PROFILED = (
    "import atexit, cProfile, sys; from paysentry.cli import app; profile = cProfile.Profile(); "
    "atexit.register(lambda: profile.dump_stats({path!r})); profile.enable(); sys.argv[1:] = {argv!r}; app()"
)


def profiled(path: Path, argv: list[str]) -> list[str]:
    """`python -c` arguments that run `paysentry <argv>` under cProfile, dumping to `path` at exit."""
    return ["-c", PROFILED.format(path=str(path), argv=argv)]


def profile_summary(path: Path) -> list[str]:
    """Own-loop time of the stages and of the core, from a worker's profile (cumulative seconds)."""
    if not path.exists():
        return ["  profile        none written (the worker did not exit cleanly)"]
    stats: Any = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    wanted = {
        ("stream/decide.py", "handle"): "decision agent (DecisionStage.handle)",
        ("paysentry/core.py", "process"): "  Engine.process",
        ("stream/decide.py", "_begin_checkpoint"): "  checkpoints begun",
        ("stream/decide.py", "_emit"): "  outputs (_emit)",
        ("stream/decide.py", "_sweep"): "  sweeps of finished payments",
        ("stream/decide.py", "_advance"): "  timers (_advance)",
        ("stream/topics.py", "decode_envelope"): "  envelopes (signature, JSON)",
        ("paysentry/contract.py", "from_checked_dict"): "  events rebuilt (from_checked_dict)",
        ("stream/ingest.py", "handle"): "ingest agent (IngestStage.handle)",
        ("paysentry/contract.py", "parse_event"): "  parse_event",
        ("paysentry/contract.py", "to_dict"): "  Event.to_dict",
        ("stream/ingest.py", "send_batches"): "  micro-batches sent",
    }
    found: dict[str, float] = {}
    for (filename, _, name), (_, _, _, cumulative, _) in stats.items():
        for (suffix, function), label in wanted.items():
            if filename.endswith(suffix) and name == function:
                found[label] = found.get(label, 0.0) + cumulative
    total = sum(tt for (_, _, tt, _, _) in stats.values())
    out = [f"  profile        {total:,.1f} s of CPU in the worker's main thread"]
    parent = ("", 0.0)
    for label in wanted.values():
        seconds = found.get(label, 0.0)
        if not label.startswith(" "):
            parent = (label.split(" (")[0], seconds)
        share = f" ({seconds / parent[1]:.0%} of the {parent[0]})" if label.startswith(" ") and parent[1] else ""
        out.append(f"    {label:<40} {seconds:7.2f} s{share}")
    return out
