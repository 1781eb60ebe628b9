"""A real Prometheus server scrapes a running `paysentry worker` (real Kafka) and its figures agree with
what the worker decided and with the events produced."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from devservices.prometheus import PrometheusServer, free_port
from tests.stream.conftest import Simulated, StreamRig

pytestmark = pytest.mark.kafka


def _value(prom: PrometheusServer, expression: str, expected: float, timeout: float = 60.0) -> float | None:
    """The expression's value once it reaches `expected` (scrapes run every second), else the last seen."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        result = prom.query(expression)
        if result:
            value = float(result[0]["value"][1])
            if value == expected:
                break
        time.sleep(0.5)
    return value


def test_prometheus_scrapes_a_running_worker(
    stream_rig: StreamRig, simulated: Simulated, start_prometheus: Any
) -> None:
    rows = [orjson.loads(line) for line in simulated.path.read_bytes().splitlines() if line.strip()]
    released = {row["payment_id"] for row in rows if row["type"] == "payment.released"}
    port = free_port()
    prom = start_prometheus([f"127.0.0.1:{port}"])
    stream_rig.produce(simulated.path)
    stream_rig.worker("w1", PAYSENTRY_METRICS_PORT=str(port))
    decisions = stream_rig.read("decisions", expect=len(simulated.decisions))
    assert len(decisions) == len(simulated.decisions)
    assert _value(prom, "sum(paysentry_decisions_total)", len(decisions)) == len(decisions)
    assert _value(prom, "sum(paysentry_payments_total)", len(released)) == len(released)
    assert _value(prom, "sum(paysentry_events_total)", len(rows)) == len(rows)
    assert _value(prom, "paysentry_model_warm", 1) == 1
    latency = prom.query("paysentry_decision_latency_seconds_count")
    assert latency and float(latency[0]["value"][1]) > 0
    checkpoints = prom.query("paysentry_checkpoint_seconds_count")
    assert checkpoints and float(checkpoints[0]["value"][1]) > 0
    assert [t["health"] for t in prom.api("targets")["activeTargets"]] == ["up"]
    stream_rig.stop_all()
