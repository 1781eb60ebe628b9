"""A real Prometheus server scrapes the metrics endpoint fed by the embedded engine and answers queries
with the figures the events imply."""

from __future__ import annotations

import os
import time
import urllib.request
from collections import Counter

import orjson

from paysentry.analytics import metrics
from paysentry.analytics.metrics import METRIC_NAMES, PaymentMetrics, start_metrics_server
from paysentry.contract import parse_event
from paysentry.core import Engine
from paysentry.replay import Replayer
from paysentry.rulebook import load_rulebook
from tests.analytics.conftest import SimFiles


def _wait_for_value(prom, expression: str, expected: float, timeout: float = 60.0) -> float:  # type: ignore[no-untyped-def]
    """The expression's value once Prometheus has scraped the final figures (scrapes run every second)."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        result = prom.query(expression)
        if result:
            value = float(result[0]["value"][1])
            if value == expected:
                return value
        time.sleep(0.25)
    return float("nan") if value is None else value


def _wait_for_channels(prom, expected: dict[str, float], timeout: float = 60.0) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Failures by channel once a scrape holds them all (a query may still see the scrape before)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        rows = prom.query("sum by (channel) (paysentry_payment_outcomes_total{outcome=~'failed|returned'})")
        seen = {r["metric"]["channel"]: float(r["value"][1]) for r in rows}
        if seen == expected:
            break
        time.sleep(0.25)
    return seen


def test_prometheus_scrapes_the_engine(start_prometheus, sim_files: SimFiles) -> None:  # type: ignore[no-untyped-def]
    key = os.urandom(32)
    raw_events = [orjson.loads(line) for line in sim_files.events.read_bytes().splitlines() if line.strip()]
    events = [parse_event(raw, account_key=key) for raw in raw_events]
    released = {e.payment_id for e in events if e.type == "payment.released"}
    failures = Counter(e.channel for e in events if e.type in ("psp.failed", "psp.returned"))

    server = start_metrics_server("127.0.0.1", 0, PaymentMetrics())
    try:
        prom = start_prometheus([f"127.0.0.1:{server.port}"])
        replayer = Replayer(Engine(load_rulebook(None)), account_key=key)
        decisions = 0
        for event in events:
            metrics.observe_events([event])
            started = time.perf_counter()
            for decision in replayer.feed(event):
                metrics.observe_decision(decision)
                decisions += 1
            metrics.observe_decision_latency(time.perf_counter() - started)
        metrics.observe_dead_letter("ingest")

        assert _wait_for_value(prom, "sum(paysentry_payments_total)", len(released)) == len(released)
        assert _wait_for_value(prom, "sum(paysentry_decisions_total)", decisions) == decisions
        expected = {channel: float(count) for channel, count in failures.items()}
        assert _wait_for_channels(prom, expected) == expected
        assert _wait_for_value(prom, "sum(paysentry_dead_letters_total)", 1) == 1
        latency = prom.query("paysentry_decision_latency_seconds_count")
        assert float(latency[0]["value"][1]) == len(events)
        assert prom.query("sum(paysentry_processing_seconds_count{stage='released_to_settled'})")
        targets = prom.api("targets")["activeTargets"]
        assert [t["health"] for t in targets] == ["up"]
        body = urllib.request.urlopen(server.url, timeout=5).read().decode()
        for name in METRIC_NAMES:
            assert f"# TYPE {name} " in body, name
    finally:
        metrics.stop_metrics_servers()
