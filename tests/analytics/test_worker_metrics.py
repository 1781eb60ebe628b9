"""The worker serves /metrics when PAYSENTRY_METRICS_PORT is set, on loopback unless told otherwise, and
its hooks feed it. (No broker needed: the app is built, not started.)"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from devservices.prometheus import free_port
from paysentry.analytics import metrics
from paysentry.contract import parse_event
from paysentry.core import Engine
from stream.app import create_app
from stream.settings import StreamSettings


def test_metrics_are_off_by_default() -> None:
    assert StreamSettings(account_hash_key="k").metrics_port is None


def test_metrics_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSENTRY_METRICS_PORT", "9108")
    settings = StreamSettings(account_hash_key="k")
    assert (settings.metrics_port, settings.metrics_bind) == (9108, "127.0.0.1")
    monkeypatch.setenv("PAYSENTRY_METRICS_PORT", "70000")
    with pytest.raises(ValueError, match="metrics_port"):
        StreamSettings(account_hash_key="k")


def test_the_worker_serves_metrics_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    settings = StreamSettings(account_hash_key="k", data_dir=tmp_path, metrics_port=port)
    try:
        create_app(settings, engine=Engine())
        [server] = metrics.running_servers()
        assert (server.host, server.port) == ("127.0.0.1", port)
        event = parse_event(
            {
                "type": "payment.released",
                "event_id": "e1",
                "event_time": "2026-10-05T08:00:00Z",
                "payment_id": "P1",
                "vendor_id": "V1",
                "amount": "12.50",
                "currency": "EUR",
                "company_code": "DE01",
                "channel": "sepa",
            },
            account_key=os.urandom(32),
        )
        metrics.observe_event(event)  # what the ingest stage calls for each valid record
        metrics.observe_payment_event(event)  # and the decision stage, in event-time order
        metrics.observe_payment_event(event)  # (a redelivery counts once)
        metrics.observe_dead_letter("decide")
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'paysentry_payments_total{channel="sepa",company="DE01"} 1.0' in body
        assert 'paysentry_payment_amount_total{channel="sepa",company="DE01",currency="EUR"} 12.5' in body
        assert 'paysentry_dead_letters_total{stage="decide"} 1.0' in body
    finally:
        metrics.stop_metrics_servers()
    assert metrics.active() is None


def test_label_values_are_capped() -> None:
    collected = metrics.PaymentMetrics()
    key = os.urandom(32)
    for index in range(metrics.LABEL_CAP + 20):
        collected.observe_payment_event(
            parse_event(
                {
                    "type": "payment.released",
                    "event_id": f"e{index}",
                    "event_time": "2026-10-05T08:00:00Z",
                    "payment_id": f"P{index}",
                    "vendor_id": "V1",
                    "amount": "1",
                    "currency": "EUR",
                    "company_code": f"C{index}",
                    "channel": "sepa",
                },
                account_key=key,
            )
        )
    companies = {
        sample.labels["company"]
        for family in collected.registry.collect()
        if family.name == "paysentry_payments"
        for sample in family.samples
        if sample.name == "paysentry_payments_total"
    }
    assert len(companies) == metrics.LABEL_CAP + 1 and "other" in companies
