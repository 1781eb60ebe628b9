"""Validation thresholds (config/validation.yaml), the gauges, and the alerts: through the real alert path
(routes, dispatcher on Redis, email to the real SMTP server) and from the worker's job, which reads the
inbound topics of a real Kafka broker."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from paysentry.alerts.model import Alert
from paysentry.analytics.metrics import PaymentMetrics, disable, enable
from paysentry.analytics.reconcile import CLASSES, compute_reconcile
from paysentry.analytics.validation import (
    ValidationConfig,
    default_validation_path,
    load_validation_config,
    over_threshold,
    publish_metrics,
    validation_alert,
)
from paysentry.yamlsource import InvalidSource
from stream.settings import StreamSettings
from stream.validation import Period, ValidationJobSettings, run_validation
from tests.analytics.builders import T0
from tests.analytics.test_reconcile import CLEAR_ACCOUNT, known_stream
from tests.harness.alert_fixtures import AlertEnv, decision

ROUTES = """
global: {alert_ttl: 24h}
route:
  receiver: ap
  group_by: [company, class]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 4h
  routes:
    - matchers: ['kind="data_validation"']
      receiver: data-quality
receivers:
  - name: ap
    email: {to: [ap@example.com]}
  - name: data-quality
    email: {to: [data@example.com]}
"""
NOW = datetime(2026, 10, 7, 6, 0, tzinfo=UTC)


def _config(text: str, tmp_path: Path) -> ValidationConfig:
    path = tmp_path / "validation.yaml"
    path.write_text(text)
    return load_validation_config(path)


def test_shipped_thresholds_load() -> None:
    config = load_validation_config(default_validation_path())
    assert set(config.thresholds) <= set(CLASSES)
    assert config.severity_of("orphan_settlement") == "critical"


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("default_threshold: 0\nthresholds: {amount_mismach: 1}\n", ":2:", "amount_mismach"),
        ("thresholds:\n  amount_mismatch: -1\n", ":2:", "greater than or equal to 0"),
        ("severity: {orphan_settlement: urgent}\n", ":1:", "urgent"),
        ("sla_hours: 0\n", ":1:", "sla_hours"),
        ("runbook_url: javascript:alert(1)\n", ":1:", "http"),
        ("colour: red\n", ":1:1:", "colour"),
        ("- 1\n- 2\n", ":1:1:", "expected a mapping"),
        (
            "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
            "d: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
            ":",
            "alias",
        ),
    ],
)
def test_bad_thresholds_are_refused_with_their_place(tmp_path: Path, text: str, where: str, what: str) -> None:
    with pytest.raises(InvalidSource) as refused:
        _config(text, tmp_path)
    message = str(refused.value)
    assert message.startswith(str(tmp_path / "validation.yaml") + where), message
    assert what in message.lower() or what in message, message


def test_an_empty_thresholds_file_is_the_defaults(tmp_path: Path) -> None:
    assert _config("# every class alerts from its first finding\n", tmp_path) == ValidationConfig()


def test_gauges_show_the_last_run(tmp_path: Path) -> None:
    registry_metrics = enable(PaymentMetrics())
    try:
        result = compute_reconcile(
            known_stream().write(tmp_path / "events.jsonl"), sla_hours=48, end=T0 + timedelta(days=3)
        )
        publish_metrics(result)
        registry = registry_metrics.registry
        for name in CLASSES:
            assert registry.get_sample_value("paysentry_validation_findings", {"class": name}) == result["counts"][name]
        labels = {"class": "amount_mismatch", "company": "DE01"}
        assert registry.get_sample_value("paysentry_validation_findings_by_company", labels) == 1
        publish_metrics({**result, "classes": {n: {"by_company": {}} for n in CLASSES},
                         "counts": dict.fromkeys(CLASSES, 0)})  # fmt: skip
        assert registry.get_sample_value("paysentry_validation_findings_by_company", labels) is None
        assert registry.get_sample_value("paysentry_validation_findings", {"class": "amount_mismatch"}) == 0
        assert (registry.get_sample_value("paysentry_validation_run_timestamp_seconds") or 0) > 0
    finally:
        disable()


def test_only_classes_above_their_threshold_alert(tmp_path: Path) -> None:
    result = compute_reconcile(
        known_stream().write(tmp_path / "events.jsonl"), sla_hours=48, end=T0 + timedelta(days=3)
    )
    config = ValidationConfig(default_threshold=1, thresholds={"amount_mismatch": 0})
    assert [(e.name, e.company, e.count, e.examples) for e in over_threshold(result, config)] == [
        ("amount_mismatch", "DE01", 1, ("P-LESS",))
    ]
    assert over_threshold(result, ValidationConfig(default_threshold=1)) == []


async def test_alert_reaches_the_data_team_by_email_once(
    alert_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYSENTRY_DESK_BASE_URL", "https://desk.example.com")
    env: AlertEnv = await alert_env(ROUTES)
    result = compute_reconcile(
        known_stream().write(tmp_path / "events.jsonl"), sla_hours=48, end=T0 + timedelta(days=3)
    )
    config = ValidationConfig(
        default_threshold=5,
        thresholds={"orphan_settlement": 0},
        severity={"orphan_settlement": "critical"},
        runbook_url="https://wiki.example.com/dv",
    )
    (exceeded,) = over_threshold(result, config)
    alert = validation_alert(exceeded, result, config, NOW.isoformat())
    assert alert.labels["kind"] == "data_validation"
    assert (alert.labels["class"], alert.labels["company"], alert.labels["count"]) == ("orphan_settlement", "DE01", "1")
    assert await env.dispatcher.submit(alert, NOW)
    await env.tick(NOW + timedelta(seconds=1))
    (mail,) = env.emails("data@example.com")
    assert "data_validation.orphan_settlement" in mail.subject
    body = mail.part("text/plain")
    assert "1 platform payments the ERP never announced for company DE01" in body
    assert "P-GHOST" in body and "https://wiki.example.com/dv" in body
    assert CLEAR_ACCOUNT not in body and "0532013000" not in body
    assert "by-payment" not in mail.raw.decode(errors="replace")  # about many payments: no case to link
    assert not env.emails("ap@example.com")
    # the same period validated again (a new leader, a restart): same alert id, no second email
    again = validation_alert(exceeded, result, config, (NOW + timedelta(hours=1)).isoformat())
    assert again.alert_id == alert.alert_id
    assert not await env.dispatcher.submit(again, NOW + timedelta(hours=1))
    await env.tick(NOW + timedelta(hours=1, seconds=1))
    assert len(env.emails("data@example.com")) == 1


def test_periods_are_aligned_on_the_interval() -> None:
    now = datetime(2026, 10, 7, 13, 45, tzinfo=UTC).timestamp()
    period = Period.before(now, 86_400)
    assert datetime.fromtimestamp(period.start, UTC) == datetime(2026, 10, 6, tzinfo=UTC)
    assert datetime.fromtimestamp(period.end, UTC) == datetime(2026, 10, 7, tzinfo=UTC)
    assert Period.before(now + 3600, 86_400) == period


@pytest.mark.kafka
async def test_worker_job_validates_yesterday_from_the_inbound_topics(
    kafka_topics: Any, kafka_bootstrap: str, alert_env: Any, tmp_path: Path
) -> None:
    env: AlertEnv = await alert_env(ROUTES)
    erp, psp = await kafka_topics.create("erp.payments", 2), await kafka_topics.create("psp.events", 2)
    now = time.time()
    yesterday = Period.before(now, 86_400)
    shift = datetime.fromtimestamp(yesterday.start, UTC) + timedelta(hours=8) - T0
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for event in _shifted(known_stream().events, shift):
            topic = psp if event["type"].startswith("psp.") else erp
            await producer.send_and_wait(topic, orjson.dumps(event), key=event["payment_id"].encode())
        await producer.send_and_wait(erp, b'{"type": "payment.released", "event_id": "broken"}')
    finally:
        await producer.stop()
    settings = StreamSettings(kafka_brokers=kafka_bootstrap, topic_prefix=kafka_topics.prefix)
    config = ValidationConfig(sla_hours=12, default_threshold=0, thresholds={"redelivered_event": 5})
    submitted: list[Alert] = []

    async def submit(alert: Alert) -> bool:
        submitted.append(alert)
        return await env.dispatcher.submit(alert, NOW)

    result, alerts = await run_validation(settings, ValidationJobSettings(), config, submit, now=now, workdir=tmp_path)
    assert result["period"]["from"] == datetime.fromtimestamp(yesterday.start, UTC).isoformat()
    counts = result["counts"]
    expected = {"released_not_submitted": 1, "unsettled_past_sla": 1, "amount_mismatch": 1, "orphan_settlement": 1,
                "duplicate_payment": 1, "redelivered_event": 1, "missing_fields": 1, "invalid_event": 0}  # fmt: skip
    assert counts == expected
    assert sorted(a.labels["class"] for a in alerts) == sorted(
        c for c, n in expected.items() if n and c != "redelivered_event"
    )
    assert submitted == alerts
    await env.tick(NOW + timedelta(seconds=1))
    subjects = " ".join(m.subject for m in env.emails("data@example.com"))
    assert "data_validation.amount_mismatch" in subjects and "data_validation.missing_fields" in subjects
    assert not list(tmp_path.iterdir())  # the spooled records are gone


def _shifted(events: list[dict[str, Any]], shift: timedelta) -> list[dict[str, Any]]:
    moved = []
    for event in events:
        moment = datetime.fromisoformat(event["event_time"]) + shift
        moved.append({**event, "event_time": moment.isoformat()})
    return moved


async def test_alert_outcomes_are_counted_by_receiver_and_channel(alert_env: Any) -> None:
    metrics = enable(PaymentMetrics())
    try:
        env: AlertEnv = await alert_env()
        await env.submit(decision("P-9", vendor="V-9", severity="critical", rule_id="new_bank_account"), NOW)
        await env.tick(NOW + timedelta(seconds=10))
        assert env.emails("oncall@example.com") and env.sms()
        sent = {
            channel: metrics.registry.get_sample_value(
                "paysentry_alert_notifications_total", {"receiver": "oncall", "channel": channel, "status": "sent"}
            )
            for channel in ("email", "sms")
        }
        assert sent == {"email": 1.0, "sms": 1.0}
    finally:
        disable()
