"""Throughput and memory of `paysentry connect convert` on large bank and ERP files.

    .venv/bin/python bench/connectors_throughput.py [--transactions 100000] [--only pain.001,camt.054,mt940,csv]

Writes a pain.001.001.03 payment run of `--transactions` credit transfers (and the camt.054 and the MT940
statements that book them, and the ERP's CSV payment list) to a temporary folder, converts each with
`connect convert` in a child process (schema validation, IBAN/BIC checks, the ingest check of every event,
the events file written), and prints transactions per second and the child's peak RSS above its baseline (imports
done, schema loaded). Conversion streams, so the peak should not depend on the file's size: compare
`--transactions 10000` with the default.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paysentry.connectors import synthetic  # noqa: E402

CHILD = """
import json, resource, sys, time
from paysentry.connectors.cli import connect_app
from paysentry.connectors.xmlsafe import shipped_schema
shipped_schema("pain.001.001.03")  # warm: imports and the schema are the baseline
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
source, out, fmt, records = sys.argv[1:5]
started = time.perf_counter()
try:
    connect_app(["convert", source, "--out", out, "--format", fmt, "--max-records", records,
                 "--max-file-mib", "4096"], standalone_mode=False)
finally:
    seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(out, "rb") as events:
    written = sum(1 for _ in events)
print(json.dumps({"seconds": seconds, "events": written, "baseline_kib": baseline, "peak_kib": peak}))
"""

FORMATS = {
    "pain.001": ("payments.xml", synthetic.write_pain001, "auto"),
    "camt.054": ("bookings.xml", synthetic.write_camt054, "auto"),
    "mt940": ("statements.sta", synthetic.write_mt940, "auto"),
    "csv": ("zahlungen.csv", synthetic.write_ap_csv, f"csv:{ROOT / 'config' / 'connectors' / 'generic-ap.yaml'}"),
}


def run(kind: str, transactions: int, folder: Path) -> dict[str, float]:
    name, write, fmt = FORMATS[kind]
    source = folder / name
    size = write(source, transactions)
    out = folder / f"{name}.jsonl"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(out), fmt, str(transactions + 1)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if child.returncode != 0:
        raise SystemExit(f"{kind}: conversion failed:\n{child.stderr[-2000:]}")
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    if figures["events"] != transactions:
        raise SystemExit(f"{kind}: {figures['events']} events for {transactions} transactions")
    source.unlink()
    out.unlink()
    return {
        "mib": size / 2**20,
        "seconds": figures["seconds"],
        "rate": transactions / figures["seconds"],
        "growth_mib": (figures["peak_kib"] - figures["baseline_kib"]) / 1024,
        "peak_mib": figures["peak_kib"] / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--only", default=",".join(FORMATS), help="comma-separated: " + ", ".join(FORMATS))
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.only.split(",") if kind.strip()]
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start")  # fmt: skip
    columns = ("transactions", 12), ("file MiB", 9), ("seconds", 8), ("tx/s", 8), ("RSS +MiB", 9), ("peak MiB", 9)
    print(f"{'format':<10}" + "".join(f" {name:>{width}}" for name, width in columns))
    with tempfile.TemporaryDirectory(prefix="paysentry-connectors-") as tmp:
        for kind in kinds:
            started = time.perf_counter()
            figures = run(kind, args.transactions, Path(tmp))
            print(
                f"{kind:<10} {args.transactions:>12,} {figures['mib']:>9.1f} {figures['seconds']:>8.1f} "
                f"{figures['rate']:>8,.0f} {figures['growth_mib']:>9.1f} {figures['peak_mib']:>9.1f}"
                f"   (with writing the file: {time.perf_counter() - started:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
