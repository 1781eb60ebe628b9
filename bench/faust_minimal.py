"""The yardstick of bench/stream_throughput.py: a minimal Faust agent on the same broker, doing per event
what a stateful stream job can hardly do less of with Faust: parse the record, one table write (a
per-vendor count, changelogged) and one send.

    BENCH_BROKER=host:port BENCH_PREFIX=bench-x. BENCH_PARTITIONS=4 python bench/faust_minimal.py

It reads `<prefix>in` and writes `<prefix>out` (one record per input record); the benchmark measures the
rate of the `out` records' timestamps. Faust's settings are its defaults, as a first Faust app has them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

import faust
import orjson

BROKER = os.environ.get("BENCH_BROKER", "localhost:9092")
PREFIX = os.environ.get("BENCH_PREFIX", "bench-minimal.")
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "4"))

app = faust.App(
    f"{PREFIX}minimal",
    broker=f"kafka://{BROKER}",
    store="memory://",
    datadir=os.environ.get("BENCH_DATA_DIR", tempfile.mkdtemp(prefix="faust-minimal-")),
    topic_partitions=PARTITIONS,
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
    key_serializer="raw",
    value_serializer="raw",
)
inbound = app.topic(f"{PREFIX}in", key_type=bytes, value_type=bytes, partitions=PARTITIONS)
outbound = app.topic(f"{PREFIX}out", key_type=bytes, value_type=bytes, partitions=PARTITIONS)
counts = app.Table("counts", key_type=str, value_type=bytes, partitions=PARTITIONS)


@app.agent(inbound)
async def count(stream: Any) -> None:
    async for event in stream.events():
        data = orjson.loads(event.value)
        key = str(data.get("payment_id") or data.get("vendor_id") or "")
        counts[key] = str(int(counts.get(key) or b"0") + 1).encode()  # one table write
        await outbound.send(key=event.key, value=event.value, partition=event.message.partition)  # one send


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()
