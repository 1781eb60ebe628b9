"""Benchmark of the pure core (no Kafka): events per second, per-event latency and state size.

    .venv/bin/python bench/core_throughput.py [--days 30] [--vendors 80]

Simulates a stream, replays it through the engine with the default rulebook, and prints figures.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paysentry.contract import Event  # noqa: E402
from paysentry.core import Engine  # noqa: E402
from paysentry.replay import Rejected, Replayer, event_order, load_lines, read_events  # noqa: E402
from paysentry.rulebook import load_rulebook  # noqa: E402
from paysentry.simulate import SimulationConfig, write_simulation  # noqa: E402
from paysentry.state import encode_entity  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--vendors", type=int, default=80)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        events_path = Path(tmp) / "events.jsonl"
        write_simulation(SimulationConfig(days=args.days, vendors=args.vendors), events_path, Path(tmp) / "l.jsonl")
        lines = load_lines(events_path)
    replayer = Replayer(Engine(load_rulebook(None)), b"bench")
    started = time.perf_counter()
    items = event_order(list(read_events(lines, replayer.account_key)))
    parsed = time.perf_counter()
    pulled: list[float] = []  # when the run took each event: the previous one was decided by then

    def timed(items: list[Event | Rejected]) -> Iterator[Event]:
        for item in items:
            if isinstance(item, Event):
                pulled.append(time.perf_counter())
                yield item

    decisions = sum(1 for _ in replayer.run(timed(items)))
    done = time.perf_counter()
    latencies = [end - start for start, end in zip(pulled, [*pulled[1:], done], strict=True)]
    state_bytes = sum(len(encode_entity(entity)) for entity in replayer.store.values())
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"machine          {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(f"events           {len(items):,} ({decisions:,} decisions)")
    print(f"parse            {len(items) / (parsed - started):,.0f} events/s")
    print(f"decide           {len(latencies) / (done - parsed):,.0f} events/s (core only)")
    print(f"end to end       {len(items) / (done - started):,.0f} events/s (parse + decide)")
    print(f"latency p50/p99  {quantiles[49] * 1e6:,.0f} us / {quantiles[98] * 1e6:,.0f} us per event")
    print(f"state            {len(replayer.store):,} entities, {state_bytes / 1e6:,.1f} MB encoded "
          f"({state_bytes / max(len(replayer.store), 1):,.0f} bytes each)")  # fmt: skip
    print(f"peak RSS         {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
