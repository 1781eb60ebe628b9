"""Prometheus metrics: the payment KPIs as counters and histograms, and the engine's health.

A worker (or any shell running the engine) calls the module-level hooks where events come in and
decisions go out:

    observe_event(event)                  # every valid inbound event, as it arrives (ingest)
    observe_payment_event(event)          # payment.* / psp.* in event-time order (decision stage)
    observe_decision(decision)            # every decision emitted (timers' included)
    observe_decision_latency(seconds)     # wall time of one Engine.process call
    observe_dead_letter(stage)            # a record refused ("ingest") or failed ("decide")
    observe_checkpoint(seconds)           # one state checkpoint
    publish_validation(counts, by_company)  # the findings of a data validation run (gauges)
    observe_alert_outcome(receiver, channel, status)  # an alert notification's outcome (called by alerts)
    start_metrics_server(host, port)      # /metrics; enables the hooks

The hooks do nothing until `start_metrics_server` (or `enable`) is called, so an engine without metrics
pays one attribute check per call. Labels have bounded cardinality: at most `LABEL_CAP` distinct values
per label (companies, channels, currencies, rules, alert receivers), later ones are counted as "other". The per-payment
state behind the stage histograms is a bounded `PaymentTracker` (see tracker.py).

The metric names are in `METRIC_NAMES`; the Grafana dashboard in config/grafana/ uses only these
(tests/test_compose.py checks).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from paysentry.alerts.delivery import OUTCOME_OBSERVERS
from paysentry.alerts.notification import Outcome
from paysentry.analytics.sketch import CappedLabels
from paysentry.analytics.tracker import PaymentTracker, Track
from paysentry.contract import Decision, Event

LABEL_CAP = 50
DEDUPE_MEMORY = 50_000
MAX_TRACKED = 50_000
STAGE_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86_400, 2 * 86_400, 4 * 86_400, 7 * 86_400)
LATENCY_BUCKETS = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.5, 1.0)
CHECKPOINT_BUCKETS = (1e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STAGES = (
    ("created_to_approved", "created_at", "approved_at"),
    ("approved_to_released", "approved_at", "released_at"),
    ("released_to_settled", "released_at", "settled_at"),
    ("created_to_settled", "created_at", "settled_at"),
)

METRIC_NAMES = (
    "paysentry_events_total",
    "paysentry_payments_total",
    "paysentry_payment_amount_total",
    "paysentry_payment_outcomes_total",
    "paysentry_fees_total",
    "paysentry_processing_seconds",
    "paysentry_reconciliation_total",
    "paysentry_decisions_total",
    "paysentry_rule_hits_total",
    "paysentry_decision_latency_seconds",
    "paysentry_dead_letters_total",
    "paysentry_checkpoint_seconds",
    "paysentry_model_warm",
    "paysentry_decisions_without_model_total",
    "paysentry_event_lag_seconds",
    "paysentry_tracked_payments",
    "paysentry_validation_findings",
    "paysentry_validation_findings_by_company",
    "paysentry_validation_run_timestamp_seconds",
    "paysentry_alert_notifications_total",
)
"""Every metric family exported (counters without their `_total` suffix in the registry's own listing)."""


class PaymentMetrics:
    """The metric families on one registry, fed by `observe_*`. Thread-safe for the hooks' use (one lock)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._lock = threading.Lock()
        self._caps = {name: CappedLabels(LABEL_CAP) for name in ("company", "channel", "currency", "rule", "receiver")}
        r = self.registry
        self.events = Counter("paysentry_events", "Valid inbound events, by type", ["type"], registry=r)
        self.payments = Counter("paysentry_payments", "Payments released", ["company", "channel"], registry=r)
        self.amount = Counter(
            "paysentry_payment_amount",
            "Amount released (in its currency)",
            ["company", "channel", "currency"],
            registry=r,
        )
        self.outcomes = Counter(
            "paysentry_payment_outcomes",
            "Platform outcomes: settled, failed, returned",
            ["company", "channel", "outcome"],
            registry=r,
        )
        self.fees = Counter(
            "paysentry_fees", "Fees charged by the platform", ["company", "channel", "currency"], registry=r
        )
        self.stages = Histogram(
            "paysentry_processing_seconds",
            "Time a payment spends in each stage",
            ["stage", "channel"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.reconciliation = Counter(
            "paysentry_reconciliation", "Reconciliation findings", ["state", "company"], registry=r
        )
        self.decisions = Counter("paysentry_decisions", "Decisions by action", ["action", "company"], registry=r)
        self.rule_hits = Counter("paysentry_rule_hits", "Rule hits", ["rule", "severity"], registry=r)
        self.latency = Histogram(
            "paysentry_decision_latency_seconds",
            "Wall time of one engine decision",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter("paysentry_dead_letters", "Records dead-lettered, by stage", ["stage"], registry=r)
        self.checkpoints = Histogram(
            "paysentry_checkpoint_seconds", "Wall time of one state checkpoint", buckets=CHECKPOINT_BUCKETS, registry=r
        )
        self.model_warm = Gauge(
            "paysentry_model_warm", "1 once the model scores payments, 0 while warming up", registry=r
        )
        self.cold = Counter(
            "paysentry_decisions_without_model", "Payment decisions made while the model warmed up", registry=r
        )
        self.lag = Gauge("paysentry_event_lag_seconds", "Wall clock minus the latest inbound event's time", registry=r)
        self.tracked = Gauge("paysentry_tracked_payments", "Payments followed for the stage histograms", registry=r)
        self.validation = Gauge(
            "paysentry_validation_findings", "Findings of the last data validation run, by class", ["class"], registry=r
        )
        self.validation_by_company = Gauge(
            "paysentry_validation_findings_by_company",
            "Findings of the last data validation run, by class and company",
            ["class", "company"],
            registry=r,
        )
        self.validation_run = Gauge(
            "paysentry_validation_run_timestamp_seconds", "When the last data validation run finished", registry=r
        )
        self.alert_notifications = Counter(
            "paysentry_alert_notifications",
            "Alert notifications by receiver, channel (email, sms, or - before one is chosen) and outcome",
            ["receiver", "channel", "status"],
            registry=r,
        )
        self.tracker = PaymentTracker(self._closed, max_tracked=MAX_TRACKED, on_sla=self._sla, on_orphan=self._orphan)
        self._latest_event: float | None = None
        # computed when scraped, not per event
        self.lag.set_function(lambda: 0.0 if self._latest_event is None else max(0.0, time.time() - self._latest_event))
        self.tracked.set_function(lambda: float(len(self.tracker.open)))
        self._children: dict[tuple[Any, ...], Any] = {}  # (metric, labels...) -> child: `.labels()` is slow
        self._recent: OrderedDict[str, None] = OrderedDict()

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _label(self, kind: str, value: str | None) -> str:
        return self._caps[kind](value)

    def observe_event(self, event: Event) -> None:
        """An event as it comes in (the ingest stage, arrival order): counted by type, and the lag."""
        with self._lock:
            self._child(self.events, event.type).inc()
            at = event.event_time.timestamp()
            if self._latest_event is None or at > self._latest_event:
                self._latest_event = at

    def observe_payment_event(self, event: Event) -> None:
        """A payment.* / psp.* event in event-time order (the decision stage): the payment KPIs. A
        redelivery (same type and id as one of the last DEDUPE_MEMORY events) changes nothing."""
        if event.family not in ("payment", "psp"):
            return
        with self._lock:
            key = f"{event.type}|{event.event_id}"
            if key in self._recent:
                return
            self._recent[key] = None
            if len(self._recent) > DEDUPE_MEMORY:
                self._recent.popitem(last=False)
            at = event.event_time.timestamp()
            info = self.tracker.observe(event)
            if not isinstance(info, Track):
                company, channel = (info[0], info[1]) if info is not None else (event.company_code, event.channel)
            else:
                company, channel = info.company, info.channel
            company, channel = self._label("company", company), self._label("channel", channel)
            if event.type == "payment.released" and isinstance(info, Track) and info.released_at == at:
                self._child(self.payments, company, channel).inc()
                if event.amount is not None:
                    currency = self._label("currency", event.currency)
                    self._child(self.amount, company, channel, currency).inc(float(event.amount))
            if event.type in ("psp.settled", "psp.failed", "psp.returned"):
                self._child(self.outcomes, company, channel, event.type.split(".", 1)[1]).inc()
            if event.fee:
                currency = self._label("currency", event.fee_currency or event.currency)
                self._child(self.fees, company, channel, currency).inc(float(event.fee))

    def _closed(self, track: Track, reason: str) -> None:
        channel = self._label("channel", track.channel)
        for name, begin_attr, end_attr in STAGES:
            begin, end = getattr(track, begin_attr), getattr(track, end_attr)
            if begin is not None and end is not None and end >= begin:
                self._child(self.stages, name, channel).observe(end - begin)
        if track.outcome == "settled" and track.erp_seen and track.released_amount is not None:
            state = "matched" if track.settled_amount == track.released_amount else "amount_mismatch"
            self._child(self.reconciliation, state, self._label("company", track.company)).inc()

    def _sla(self, track: Track) -> None:
        self._child(self.reconciliation, "unsettled_past_sla", self._label("company", track.company)).inc()

    def _orphan(self, track: Track) -> None:
        self._child(self.reconciliation, "orphan_platform_payment", self._label("company", track.company)).inc()

    def observe_decision(self, decision: Decision) -> None:
        with self._lock:
            company = self._label("company", decision.company_code)
            self._child(self.decisions, decision.action, company).inc()
            for hit in decision.rule_hits:
                self._child(self.rule_hits, self._label("rule", hit.rule_id), hit.severity).inc()
            if (
                decision.event_type
                and decision.event_type.startswith("payment.")
                and decision.event_type != "payment.cancelled"
            ):
                self.model_warm.set(0 if decision.model_score is None else 1)
                if decision.model_score is None:
                    self.cold.inc()

    def observe_decision_latency(self, seconds: float) -> None:
        self.latency.observe(seconds)

    def observe_dead_letter(self, stage: str) -> None:
        self.dead_letters.labels(stage if stage in ("ingest", "decide", "timer") else "other").inc()

    def observe_checkpoint(self, seconds: float) -> None:
        self.checkpoints.observe(seconds)

    def publish_validation(self, counts: dict[str, int], by_company: dict[str, dict[str, int]]) -> None:
        """The last validation run's findings (paysentry/analytics/reconcile.py): every class, zero
        included; per company only where there are findings (a company gone since the last run drops)."""
        with self._lock:
            for name, count in counts.items():
                self.validation.labels(name).set(count)
            self.validation_by_company.clear()
            caps = CappedLabels(LABEL_CAP)
            for name, companies in by_company.items():
                for company, count in companies.items():
                    self.validation_by_company.labels(name, caps(company)).inc(count)
            self.validation_run.set_to_current_time()

    def observe_alert_outcome(self, receiver: str | None, channel: str | None, status: str) -> None:
        with self._lock:
            labels = (self._label("receiver", receiver or "-"), channel if channel in ("email", "sms") else "-", status)
            self._child(self.alert_notifications, *labels).inc()


# -- the process-wide hooks ------------------------------------------------------------------------
_active: PaymentMetrics | None = None


def enable(metrics: PaymentMetrics | None = None) -> PaymentMetrics:
    """Make the hooks record into `metrics` (a new set on its own registry by default)."""
    global _active
    _active = metrics if metrics is not None else PaymentMetrics()
    if _alert_outcome not in OUTCOME_OBSERVERS:
        OUTCOME_OBSERVERS.append(_alert_outcome)
    return _active


def disable() -> None:
    global _active
    _active = None
    if _alert_outcome in OUTCOME_OBSERVERS:
        OUTCOME_OBSERVERS.remove(_alert_outcome)


def _alert_outcome(outcome: Outcome) -> None:
    observe_alert_outcome(outcome.receiver, outcome.channel, outcome.status)


def active() -> PaymentMetrics | None:
    return _active


def observe_event(event: Event) -> None:
    if _active is not None:
        _active.observe_event(event)


def observe_payment_event(event: Event) -> None:
    if _active is not None:
        _active.observe_payment_event(event)


def observe_events(events: Iterable[Event]) -> None:
    """Both hooks, for an embedded run that reads events in event-time order (replay, notebooks)."""
    for event in events:
        observe_event(event)
        observe_payment_event(event)


def observe_decision(decision: Decision) -> None:
    if _active is not None:
        _active.observe_decision(decision)


def observe_decision_latency(seconds: float) -> None:
    if _active is not None:
        _active.observe_decision_latency(seconds)


def observe_alert_outcome(receiver: str | None, channel: str | None, status: str) -> None:
    if _active is not None:
        _active.observe_alert_outcome(receiver, channel, status)


def observe_dead_letter(stage: str) -> None:
    if _active is not None:
        _active.observe_dead_letter(stage)


def observe_checkpoint(seconds: float) -> None:
    if _active is not None:
        _active.observe_checkpoint(seconds)


def publish_validation(counts: dict[str, int], by_company: dict[str, dict[str, int]]) -> None:
    if _active is not None:
        _active.publish_validation(counts, by_company)


@dataclass
class MetricsServer:
    host: str
    port: int
    metrics: PaymentMetrics
    _server: Any

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


_servers: list[MetricsServer] = []


def start_metrics_server(
    host: str = "127.0.0.1", port: int = 0, metrics: PaymentMetrics | None = None
) -> MetricsServer:
    """Serve /metrics on host:port (port 0: a free one) from a daemon thread, and enable the hooks.
    Loopback unless told otherwise: metrics name companies and rules."""
    chosen = enable(metrics if metrics is not None else _active)
    server, _thread = start_http_server(port, addr=host, registry=chosen.registry)
    handle = MetricsServer(host, int(server.server_port), chosen, server)
    _servers.append(handle)
    return handle


def running_servers() -> list[MetricsServer]:
    """The servers this process started and has not stopped."""
    return list(_servers)


def stop_metrics_servers() -> None:
    """Stop every server this process started and disable the hooks."""
    while _servers:
        _servers.pop().close()
    disable()
