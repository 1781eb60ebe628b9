"""What the Prometheus metrics hooks cost per event, against the core's and a worker's per-event cost.

    .venv/bin/python bench/metrics_overhead.py [--days 30] [--rounds 7] [--worker-rate 500]

Simulates a stream, decides it once with the default rulebook (keeping the decisions), then times in
alternating rounds:

- core:      deciding every event on a fresh engine (the core's per-event cost);
- disabled:  the hooks a worker calls, metrics off (what a worker without PAYSENTRY_METRICS_PORT pays);
- enabled:   the same hooks, metrics on (a fresh PaymentMetrics on its own registry each round).

The hooks are those of the worker's stages: observe_event (ingest), observe_payment_event and
observe_decision_latency per event, observe_decision per decision (timers' included). Timing the hooks
on their own, rather than as the difference of two runs of the whole loop, keeps the figure steady on
a machine busy with other work; each way's best round counts. The overhead is shown against the core
alone and against a worker's per-event cost at `--worker-rate` events/s (the stream benchmark's figure).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paysentry.analytics import metrics  # noqa: E402
from paysentry.contract import Decision, Event  # noqa: E402
from paysentry.core import Engine  # noqa: E402
from paysentry.event_time import epoch  # noqa: E402
from paysentry.replay import Replayer, event_order, load_lines, read_events  # noqa: E402
from paysentry.rulebook import load_rulebook  # noqa: E402
from paysentry.simulate import SimulationConfig, write_simulation  # noqa: E402


def decide_all(events: list[Event]) -> tuple[float, list[list[Decision]]]:
    """Seconds to decide every event on a fresh engine, and the decisions made before and for each."""
    replayer = Replayer(Engine(load_rulebook(None)), b"bench")
    made: list[list[Decision]] = []
    started = time.perf_counter()
    for event in events:
        decisions = replayer.advance(epoch(event.event_time))
        decision = replayer.decide(event)
        made.append(decisions if decision is None else [*decisions, decision])
    return time.perf_counter() - started, made


def run_hooks(events: list[Event], made: list[list[Decision]]) -> float:
    """Seconds for the hooks a worker calls for these events and decisions."""
    started = time.perf_counter()
    for event, decisions in zip(events, made, strict=True):
        metrics.observe_event(event)
        metrics.observe_decision_latency(2e-4)
        metrics.observe_payment_event(event)
        for decision in decisions:
            metrics.observe_decision(decision)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--vendors", type=int, default=80)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--worker-rate", type=float, default=500.0, help="a worker's events/s (stream bench)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        events_path = Path(tmp) / "events.jsonl"
        write_simulation(SimulationConfig(days=args.days, vendors=args.vendors), events_path, Path(tmp) / "l.jsonl")
        lines = load_lines(events_path)
    events = [item for item in event_order(list(read_events(lines, b"bench"))) if isinstance(item, Event)]
    best = {"core": float("inf"), "disabled": float("inf"), "enabled": float("inf")}
    made: list[list[Decision]] = []
    for _ in range(args.rounds):
        seconds, made = decide_all(events)
        best["core"] = min(best["core"], seconds)
        metrics.disable()
        best["disabled"] = min(best["disabled"], run_hooks(events, made))
        metrics.enable()
        best["enabled"] = min(best["enabled"], run_hooks(events, made))
    metrics.disable()
    per_event = {way: seconds / len(events) for way, seconds in best.items()}
    hooks_cost, core_cost, worker_cost = per_event["enabled"], per_event["core"], 1.0 / args.worker_rate
    print(f"machine          {platform.machine()} python {platform.python_version()}")
    print(f"events           {len(events):,} ({sum(map(len, made)):,} decisions), best of {args.rounds} rounds")
    print(f"core             {1 / core_cost:,.0f} events/s ({core_cost * 1e6:,.1f} us per event)")
    print(f"core + hooks     {1 / (core_cost + hooks_cost):,.0f} events/s with metrics enabled")
    print(f"hooks, disabled  {per_event['disabled'] * 1e6:,.1f} us per event")
    print(f"hooks, enabled   {hooks_cost * 1e6:,.1f} us per event")
    share_core, share_worker = 100 * hooks_cost / core_cost, 100 * hooks_cost / worker_cost
    print(f"overhead         {share_core:.1f} % of the core alone, {share_worker:.1f} % of a worker's "
          f"per-event cost at {args.worker_rate:,.0f} events/s")  # fmt: skip


if __name__ == "__main__":
    main()
