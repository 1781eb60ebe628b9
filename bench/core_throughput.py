"""Benchmark of the pure core (no Kafka): events per second, per-event latency and state size.

    .venv/bin/python bench/core_throughput.py [--days 30] [--vendors 80]
    .venv/bin/python bench/core_throughput.py --compare /tmp/core-base [--rounds 3]

Simulates a stream, replays it through the engine with the default rulebook, and prints figures.
With `--compare TREE` the same events are decided by this tree and by another checkout of the
project (e.g. a `git worktree` of an earlier commit), each in a subprocess, alternating for
`--rounds` rounds; it prints both decide rates (the median of the rounds), their ratio, and checks
that both trees wrote byte-identical decisions (a SHA-256 digest over every decision's JSON). A
digest mismatch exits with status 1, unless `--decisions-may-differ` says the other tree is known to
decide differently (e.g. a commit from before a rule or check was added): then it is only reported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]


def _import_tree(tree: Path) -> None:
    """Import the core from `tree` (this checkout by default), ahead of anything else on the path."""
    sys.path.insert(0, str(tree))


def decide_file(events_path: Path) -> dict[str, Any]:
    """Parse and decide every event of the file; figures and the decisions' digest."""
    from collections.abc import Iterator

    from paysentry.contract import Event
    from paysentry.core import Engine
    from paysentry.replay import Rejected, Replayer, event_order, load_lines, read_events
    from paysentry.rulebook import load_rulebook
    from paysentry.state import encode_entity

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

    cpu_started = time.process_time()
    decisions = list(replayer.run(timed(items)))
    done = time.perf_counter()
    cpu = time.process_time() - cpu_started
    latencies = [end - start for start, end in zip(pulled, [*pulled[1:], done], strict=True)]
    digest = hashlib.sha256()
    for decision in decisions:
        digest.update(decision.to_json())
        digest.update(b"\n")
    state_bytes = sum(len(encode_entity(entity)) for entity in replayer.store.values())
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "core": str(Path(sys.modules["paysentry.core"].__file__ or "").resolve().parents[1]),
        "events": len(items),
        "decisions": len(decisions),
        "parse_rate": len(items) / (parsed - started),
        "decide_rate": len(latencies) / (done - parsed),
        "decide_cpu_rate": len(latencies) / cpu if cpu else 0.0,
        "end_to_end_rate": len(items) / (done - started),
        "p50_us": quantiles[49] * 1e6,
        "p99_us": quantiles[98] * 1e6,
        "entities": len(replayer.store),
        "state_bytes": state_bytes,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "digest": digest.hexdigest(),
    }


def _print_figures(figures: dict[str, Any]) -> None:
    entities = max(figures["entities"], 1)
    print(f"machine          {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(f"events           {figures['events']:,} ({figures['decisions']:,} decisions)")
    print(f"parse            {figures['parse_rate']:,.0f} events/s")
    cpu_rate = f"{figures['decide_cpu_rate']:,.0f} per CPU second"
    print(f"decide           {figures['decide_rate']:,.0f} events/s (core only; {cpu_rate})")
    print(f"end to end       {figures['end_to_end_rate']:,.0f} events/s (parse + decide)")
    print(f"latency p50/p99  {figures['p50_us']:,.0f} us / {figures['p99_us']:,.0f} us per event")
    print(f"state            {figures['entities']:,} entities, {figures['state_bytes'] / 1e6:,.1f} MB encoded "
          f"({figures['state_bytes'] / entities:,.0f} bytes each)")  # fmt: skip
    print(f"peak RSS         {figures['peak_rss_mb']:,.0f} MB")
    print(f"decisions digest {figures['digest']}")


def _run_child(tree: Path, events_path: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PAYSENTRY_MODEL_REGISTRY")}
    env["PYTHONPATH"] = str(tree)
    command = [sys.executable, str(Path(__file__).resolve()), "--tree", str(tree), "--events", str(events_path)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=3600)
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(figures["core"]) != tree.resolve():
        raise SystemExit(f"the subprocess for {tree} imported the core from {figures['core']}")
    return figures


def compare(base: Path, events_path: Path, rounds: int, may_differ: bool = False) -> int:
    runs: dict[str, list[dict[str, Any]]] = {"this tree": [], "base": []}
    for number in range(rounds):
        # alternate which tree goes first, so a change in the machine's load hits both alike
        order = [("this tree", _ROOT), ("base", base)]
        for name, tree in order if number % 2 == 0 else reversed(order):
            runs[name].append(_run_child(tree, events_path))
    rates = {name: statistics.median(r["decide_rate"] for r in results) for name, results in runs.items()}
    cpu_rates = {name: statistics.median(r["decide_cpu_rate"] for r in results) for name, results in runs.items()}
    ends = {name: statistics.median(r["end_to_end_rate"] for r in results) for name, results in runs.items()}
    _print_figures(runs["this tree"][-1])
    print(f"compared with    {base} ({rounds} rounds, medians)")
    for name in runs:
        print(f"  {name:<14} decide {rates[name]:,.0f} events/s, {cpu_rates[name]:,.0f} per CPU second, "
              f"end to end {ends[name]:,.0f} events/s")  # fmt: skip
    print(f"decide ratio     {rates['this tree'] / rates['base']:.2f}x "
          f"(per CPU second {cpu_rates['this tree'] / cpu_rates['base']:.2f}x, "
          f"end to end {ends['this tree'] / ends['base']:.2f}x)")  # fmt: skip
    digests = {r["digest"] for results in runs.values() for r in results}
    if len(digests) != 1:
        if may_differ:
            print(f"decisions        differ between the trees, as expected (--decisions-may-differ): {sorted(digests)}")
            return 0
        print(f"decisions        DIFFER between the trees: {sorted(digests)}")
        return 1
    print(f"decisions        identical in both trees ({runs['base'][0]['decisions']:,}, sha256 {digests.pop()[:16]})")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--vendors", type=int, default=80)
    parser.add_argument("--compare", type=Path, help="another checkout of the project to decide the same events")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tree with --compare")
    parser.add_argument(
        "--decisions-may-differ",
        action="store_true",
        help="with --compare: report differing decisions instead of failing (the other tree decides differently)",
    )
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)  # a subprocess of --compare
    parser.add_argument("--events", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.events is not None:
        _import_tree(args.tree or _ROOT)
        print(json.dumps(decide_file(args.events)))
        return
    _import_tree(_ROOT)
    from paysentry.simulate import SimulationConfig, write_simulation

    with tempfile.TemporaryDirectory() as tmp:
        events_path = Path(tmp) / "events.jsonl"
        write_simulation(SimulationConfig(days=args.days, vendors=args.vendors), events_path, Path(tmp) / "l.jsonl")
        if args.compare is not None:
            sys.exit(compare(args.compare, events_path, args.rounds, args.decisions_may_differ))
        _print_figures(decide_file(events_path))


if __name__ == "__main__":
    main()
