"""How much memory converting a file takes, measured in a child process of its own (so that what earlier
tests allocated does not count), for the tests that show conversion streams: the peak of Python
allocations and the growth of the peak RSS, which also sees libxml2's tree."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]

# Converts the file named on the command line as `connect convert` and the drop folder do (events
# streamed to a consumer that keeps nothing) and prints the figures as one JSON line.
MEASURE = """
import json, resource, sys, tracemalloc
from datetime import UTC
from pathlib import Path
from paysentry.connectors.base import Limits, PaymentIndex
from paysentry.connectors.formats import parse_format, stream_path
from paysentry.connectors.xmlsafe import shipped_schema
shipped_schema("pain.001.001.03")
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
conversion, events = stream_path(Path(sys.argv[1]), parse_format("auto"), tz=UTC,
                                 limits=Limits(max_records=10**6), index=PaymentIndex())
count = sum(1 for _ in events)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline
print(json.dumps({"events": count, "refused": conversion.refused, "peak": peak, "rss_kib": rss}))
"""


def measure_conversion(write: Callable[[Path, int], int], records: int, path: Path) -> dict[str, Any]:
    """Write a file of `records` payments with `write` (one of paysentry.connectors.synthetic's writers,
    which returns the size) and convert it: its size, the events, and the memory figures. The file must
    convert in full."""
    size = write(path, records)
    child = subprocess.run([sys.executable, "-c", MEASURE, str(path)], cwd=ROOT, capture_output=True, text=True,
                           timeout=900, check=False)  # fmt: skip
    assert child.returncode == 0, child.stderr[-2000:]
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    assert (figures["events"], figures["refused"]) == (records, None)
    return {**figures, "size": size}


def assert_memory_flat(small: dict[str, Any], large: dict[str, Any]) -> None:
    """A file ten times larger converts in about the same memory (slack for allocator noise, not for
    growth): held whole, the larger one's events or tree would take tens of MB more."""
    assert large["size"] > 9 * small["size"]
    assert large["peak"] < 2 * small["peak"] + 2 * 2**20, (small, large)
    assert large["rss_kib"] < small["rss_kib"] + 24 * 1024, (small, large)
