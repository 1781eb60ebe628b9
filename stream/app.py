"""The Faust app: topics, tables, the two agents, the progress clock (stream/progress.py) and the rebalance hooks.

    inbound topics ──► ingest agent ──► engine.events (by shard) ──► decision agent ──► decisions, alerts
         │                  │                                           │
         └─ deadletter ◄────┘ routes table (payment -> shard)           └─ shard-state table

`create_app(settings)` builds everything for one worker; `paysentry worker` runs it. Alert handling
(routing, grouping, notifications) reads the `alerts` topic (stream/alerts_agent.py); the online model is
restored from and saved to Redis snapshots (stream/model_snapshots.py).

The internal topics (`engine.events`, `ingest.ticks`) carry an HMAC of each value (`ps-sig` header, key
`StreamSettings.internal_key`); a record without a valid one is dead-lettered, never acted on. The web
server (when `PAYSENTRY_WEB_PORT` is set) listens on `PAYSENTRY_WEB_BIND`, loopback unless told otherwise.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import faust
import orjson

from paysentry.core import Engine
from rules.loader import DEFAULT_RULES_DIR
from rules.reload import RulesHolder
from rules.signal import ReloadListener
from stream.alerts_agent import register_alerts
from stream.cases_agent import register_cases
from stream.decide import DecisionStage
from stream.delivery import DeliveryGuard, records_queued
from stream.faults import NO_FAULTS, FaultHook
from stream.fetching import tune_fetching
from stream.ingest import NUDGE, IngestStage
from stream.model_snapshots import register_model_snapshots, snapshot_signing_key
from stream.model_switch import served_models
from stream.progress import ProgressClock
from stream.routes import RouteTable
from stream.settings import StreamSettings
from stream.sinks import OutputReader
from stream.topics import DEADLETTER, DECISIONS, ENGINE, INBOUND, SIGNATURE_HEADER, sign_envelope
from stream.validation import register_validation

log = logging.getLogger(__name__)


@dataclass
class StreamApp:
    app: faust.App
    settings: StreamSettings
    ingest: IngestStage
    decide: DecisionStage
    guard: DeliveryGuard


def _raw_topic(app: faust.App, settings: StreamSettings, *names: str, **options: Any) -> Any:
    return app.topic(
        *(settings.topic(n) for n in names),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        **options,
    )


def live_rules(settings: StreamSettings) -> RulesHolder:
    """The worker's rules: reloaded when the files change (polled), or at once when `paysentry rules
    reload` publishes the signal on Redis, so every worker switches together. A ruleset that fails
    `check` is refused and the last good one keeps running; every load is in the audit log."""
    holder = RulesHolder(settings.rules_path or DEFAULT_RULES_DIR, audit_log=settings.data_dir / "rules-audit.jsonl")
    holder.start()
    if settings.redis_url is not None:
        import redis

        ReloadListener(redis.Redis.from_url(settings.redis_url.get_secret_value()), holder).start()
    return holder


def create_app(settings: StreamSettings, *, faults: FaultHook = NO_FAULTS, engine: Engine | None = None) -> StreamApp:
    # keys first: a worker with a missing or weak one stops here, before it starts anything
    account_key, internal_key = settings.require_hash_key(), settings.internal_key()
    snapshot_signing_key(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.metrics_port is not None:
        from paysentry.analytics.metrics import start_metrics_server

        start_metrics_server(settings.metrics_bind, settings.metrics_port)
    app = faust.App(
        settings.group_id,
        broker=[f"kafka://{b}" for b in settings.brokers],
        broker_credentials=settings.faust_credentials(),
        store=settings.store_url(),
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        processing_guarantee="at_least_once",
        stream_wait_empty=False,  # the decision stage holds records unacknowledged on purpose
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 4),
        producer_acks=-1,
        producer_linger=settings.producer_linger_seconds,  # measured: fewer produce requests, each larger
        producer_max_batch_size=settings.producer_batch_bytes,
        consumer_max_fetch_size=settings.consumer_fetch_bytes,  # measured: fewer fetches on a backlog
        key_serializer="raw",  # every record is bytes or text the app encodes itself (tables included)
        value_serializer="raw",
        web_enabled=settings.web_port is not None,
        web_port=settings.web_port or 6066,
        web_bind=settings.web_bind,
    )
    inbound = _raw_topic(app, settings, *INBOUND, NUDGE)
    nudges = _raw_topic(app, settings, NUDGE)
    engine_topic = _raw_topic(app, settings, ENGINE)
    outputs = {name: _raw_topic(app, settings, name) for name in ("decisions", "alerts")}
    deadletter = _raw_topic(app, settings, DEADLETTER)
    routes = app.Table("routes", key_type=str, value_type=str, partitions=settings.partitions)
    state_table = app.Table("shard-state", key_type=str, value_type=bytes, partitions=settings.partitions)
    prefix = settings.topic_prefix

    def signed(value: bytes) -> list[tuple[str, bytes]]:
        return [(SIGNATURE_HEADER, sign_envelope(internal_key, value))]

    # Records are bytes the stages encode themselves: they go straight to the producer, past Faust's
    # per-send machinery (codecs, sensors, callbacks), which costs as much again as the send itself.
    async def send_engine(*, key: bytes, value: bytes, partition: int) -> Any:
        return await app.producer.send(engine_topic.get_topic_name(), key, value, partition, None, signed(value))

    async def send_deadletter(**kwargs: Any) -> Any:
        return await deadletter.send(**kwargs)

    async def send_output(name: str, *, key: bytes, value: bytes, partition: int, headers: Any) -> Any:
        return await app.producer.send(outputs[name].get_topic_name(), key, value, partition, None, headers)

    async def flush() -> None:
        await app.producer.flush()

    async def send_changelog(topic: str, key: bytes, value: bytes | None, partition: int, headers: Any) -> Any:
        return await app.producer.send(topic, key, value, partition, None, headers)

    reader = OutputReader(settings)
    route_table = RouteTable(routes, send_changelog)
    partition_of = functools.lru_cache(maxsize=4096)(settings.partition_for_shard)  # asked once per routed event
    ingest = IngestStage(
        account_key=account_key, partitions=settings.partitions,
        partition_of=partition_of, routes=route_table, send_routes=route_table.send,
        short_name=lambda topic: topic.removeprefix(prefix), send_engine=send_engine, send_deadletter=send_deadletter,
        idle_after=settings.idle_after(), time_window=settings.time_window(), linger=settings.batch_linger_seconds,
    )  # fmt: skip
    decide = DecisionStage(
        engine=engine or Engine(live_rules(settings), models=served_models(settings)), table=state_table,
        partitions=settings.partitions, partition_of=partition_of,
        alert_action=settings.alert_action, send=send_output, flush=flush,
        read_back=reader.event_ids, checkpoint_events=settings.checkpoint_events,
        checkpoint_seconds=settings.checkpoint_seconds, max_buffer=settings.max_buffer, internal_key=internal_key,
        send_deadletter=send_deadletter, faults=faults, lateness=settings.lateness_micros(),
        send_changelog=send_changelog,
    )  # fmt: skip

    clock = ProgressClock(app, settings, nudges, internal_key)
    # `decisions` too: the desk's cases agent (stream/cases_agent.py) reads it through the same guard
    guard = DeliveryGuard(app, settings, {settings.topic(n) for n in (*INBOUND, NUDGE, ENGINE, DECISIONS)})
    nudge_topic = settings.topic(NUDGE)

    @app.agent(inbound, name="ingest")
    async def ingest_agent(stream: Any) -> None:
        async for event in stream.noack().events():
            if not await guard.admit(event):
                continue
            if event.message.topic == nudge_topic and not clock.genuine(event):
                await send_deadletter(key=NUDGE.encode(), value=orjson.dumps({
                    "reason": "progress nudge without a valid signature: not written by this deployment",
                    "topic": event.message.topic, "partition": event.message.partition,
                    "offset": event.message.offset}))  # fmt: skip
                event.ack()
                continue
            if event.message.topic == nudge_topic and clock.stale(event.value):
                event.ack()  # a nudge of an earlier assignment: its start offsets are not this owner's
                continue
            await ingest.handle(event, more=records_queued(stream))

    @app.agent(engine_topic, name="decide")
    async def decide_agent(stream: Any) -> None:
        async for event in stream.noack().events():
            if await guard.admit(event):
                await decide.handle(event)

    app.timer(interval=settings.tick_seconds, name="progress")(clock.tick)
    app.timer(interval=1.0, name="delivery-watch")(guard.watch)

    @app.timer(interval=10.0, name="status")
    async def _status() -> None:
        log.info("ingest groups: %s", ingest.status())
        log.info("decision partitions: %s", decide.status())
        log.info("ordering wait: %s", decide.ordering_wait())
        # since this worker started: decided, timer decisions, redelivered and state-only events
        log.info("engine counts: %s", dict(sorted(decide.engine.counts.items())))

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _shutdown(sender: Any, **kwargs: Any) -> None:
        log.info("ordering wait: %s", decide.ordering_wait())
        await clock.close()
        await guard.close()
        await reader.close()

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _tables_recovered(sender: Any, **kwargs: Any) -> None:
        # Faust sends this once the tables are restored, before fetching resumes.
        engine_name = engine_topic.get_topic_name()
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == engine_name}
        try:
            await guard.prepare()
            await decide.prepare(owned)
            await clock.warm()
        except Exception as exc:  # each partition's first record does it instead
            log.warning("partitions not prepared ahead of their records: %r", exc)
        try:
            await tune_fetching(app, settings.consumer_fetch_wait_ms)
        except Exception as exc:  # Faust's own fetching costs latency, not correctness
            log.warning("fetching not tuned: %r", exc)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        guard.install()
        by_topic = _partitions_by_topic(assigned, prefix)
        ingest.assigned(by_topic.get(NUDGE, set()))
        decide.assigned(by_topic.get(ENGINE, set()))
        log.info("deciding for engine partitions %s", sorted(by_topic.get(ENGINE, ())))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        by_topic = _partitions_by_topic(revoked, prefix)
        clock.forget(revoked)
        guard.forget(revoked)
        await ingest.forget(by_topic.get(NUDGE, set()))
        await decide.forget(by_topic.get(ENGINE, set()))
        await flush()  # what the stages wrote for the revoked partitions is on the broker for the next owner

    result = StreamApp(app, settings, ingest, decide, guard)
    register_alerts(result)
    register_cases(result)
    register_validation(result)
    register_model_snapshots(result, settings.redis_url.get_secret_value() if settings.redis_url else None)
    return result


def _partitions_by_topic(tps: set[Any], prefix: str) -> dict[str, set[int]]:
    result: dict[str, set[int]] = {}
    for tp in tps:
        result.setdefault(tp.topic.removeprefix(prefix), set()).add(tp.partition)
    return result
