"""Memory of `paysentry replay` on a long card-like stream: peak RSS, bytes per entity, events/second.

    .venv/bin/python bench/replay_memory.py [--events 2000000] [--days 60] [--vendors 100000]

Writes a stream of `payment.released` events (one per payment, never settled, many distinct vendors and
payee accounts, time-ordered over `--days`) to a temporary file, replays it with the default rulebook
in a child process, and prints the child's peak RSS, the state it holds at the end, the RSS growth per
retained entity, and the replay rate.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 9, 1, tzinfo=UTC)
COMPANIES = ("US01", "DE01", "CN01", "GB01")
CURRENCY = {"US01": "USD", "DE01": "EUR", "CN01": "CNY", "GB01": "GBP"}

CHILD = """
import json, resource, sys
from pathlib import Path
from paysentry.cli import run_replay
from paysentry.rulebook import load_rulebook
load_rulebook(None)  # warm: imports and the rulebook are the baseline, not state
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
events, out, now = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
run = run_replay(events, out, out.with_name("rejected.jsonl"), None, quiet=True, collect=False, now=now)
print(json.dumps({"baseline_kib": baseline, "events": run.events, "decisions": run.counts.total,
                  "rejected": run.rejected_lines, "entities": run.entities, "rate": run.rate}))
"""


def write_stream(path: Path, events: int, days: int, vendors: int, seed: int = 11) -> datetime:
    """Time-ordered `payment.released` events; returns the last event time."""
    rng = random.Random(seed)
    step = timedelta(days=days) / events
    moment = START
    with path.open("w") as handle:
        for number in range(events):
            moment = START + step * number
            vendor = rng.randrange(vendors)
            company = COMPANIES[vendor % len(COMPANIES)]
            account = f"{4000_0000_0000 + vendor * 10 + (rng.random() < 0.1):016d}"  # a few vendors have two
            event = {
                "type": "payment.released", "event_id": f"e-{number}", "event_time": moment.isoformat(),
                "payment_id": f"PAY-{number:08d}", "vendor_id": f"V{vendor:07d}", "company_code": company,
                "amount": f"{rng.lognormvariate(4, 1.2):.2f}", "currency": CURRENCY[company], "channel": "card",
                "created_by": f"u-{rng.randrange(200)}", "approved_by": [f"u-{rng.randrange(200)}"],
                "payee_account": account,
            }  # fmt: skip
            handle.write(json.dumps(event) + "\n")
    return moment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--vendors", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        events_path = Path(tmp) / "events.jsonl"
        last = write_stream(events_path, args.events, args.days, args.vendors)
        size = events_path.stat().st_size
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(events_path), str(Path(tmp) / "decisions.jsonl"), str(last.timestamp())],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
    if child.returncode != 0:
        sys.exit(f"replay failed:\n{child.stderr}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    growth = (peak_kib - result["baseline_kib"]) * 1024
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"input                {result['events']:,} events, {size / 2**20:,.0f} MiB, {args.days} days, "
          f"{args.vendors:,} vendors")  # fmt: skip
    print(f"decisions            {result['decisions']:,} (rejected {result['rejected']:,})")
    print(f"peak RSS             {peak_kib / 2**20:,.2f} GiB (baseline {result['baseline_kib'] / 1024:,.0f} MiB)")
    print(f"entities at the end  {result['entities']:,}")
    print(f"bytes per entity     {growth / max(result['entities'], 1):,.0f} (RSS growth / entities held)")
    print(f"replay rate          {result['rate']:,.0f} events/s ({elapsed:,.0f} s in all)")


if __name__ == "__main__":
    main()
