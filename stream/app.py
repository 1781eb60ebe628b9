"""The Faust app: topics, tables, the two agents, the progress clock and the rebalance hooks.

    inbound topics ──► ingest agent ──► engine.events (by shard) ──► decision agent ──► decisions, alerts
         │                  │                                           │
         └─ deadletter ◄────┘ routes table (payment -> shard)           └─ shard-state table

`create_app(settings)` builds everything for one worker; `paysentry worker` runs it. Alert handling
(routing, grouping, notifications) reads the `alerts` topic; a module `stream/alerts_agent.py` with a
`register_alerts(stream_app)` function is attached to the same app when it exists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from paysentry.core import Engine
from paysentry.rulebook import load_rulebook
from stream.decide import DecisionStage
from stream.ingest import NUDGE, IngestStage
from stream.settings import StreamSettings
from stream.sinks import OutputReader
from stream.topics import DEADLETTER, ENGINE, INBOUND

log = logging.getLogger(__name__)


@dataclass
class StreamApp:
    app: faust.App
    settings: StreamSettings
    ingest: IngestStage
    decide: DecisionStage


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


def create_app(settings: StreamSettings, *, fault: str | None = None, engine: Engine | None = None) -> StreamApp:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
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
        key_serializer="raw",  # every record is bytes or text the app encodes itself (tables included)
        value_serializer="raw",
        web_enabled=settings.web_port is not None,
        web_port=settings.web_port or 6066,
    )
    inbound = _raw_topic(app, settings, *INBOUND, NUDGE)
    nudges = _raw_topic(app, settings, NUDGE)
    engine_topic = _raw_topic(app, settings, ENGINE)
    outputs = {name: _raw_topic(app, settings, name) for name in ("decisions", "alerts")}
    deadletter = _raw_topic(app, settings, DEADLETTER)
    routes = app.Table("routes", key_type=str, value_type=str, partitions=settings.partitions)
    state_table = app.Table("shard-state", key_type=str, value_type=bytes, partitions=settings.partitions)
    prefix = settings.topic_prefix

    async def send_engine(**kwargs: Any) -> Any:
        return await engine_topic.send(**kwargs)

    async def send_deadletter(**kwargs: Any) -> Any:
        return await deadletter.send(**kwargs)

    async def send_output(name: str, **kwargs: Any) -> Any:
        return await outputs[name].send(**kwargs)

    async def flush() -> None:
        await app.producer.flush()

    reader = OutputReader(settings)
    ingest = IngestStage(
        account_key=settings.require_hash_key(), partitions=settings.partitions,
        partition_of=settings.partition_for_shard, routes=_RouteView(routes),
        short_name=lambda topic: topic.removeprefix(prefix), send_engine=send_engine, send_deadletter=send_deadletter,
        idle_after=settings.idle_seconds,
    )  # fmt: skip
    decide = DecisionStage(
        engine=engine or Engine(load_rulebook(settings.rules_path)), table=state_table,
        partitions=settings.partitions, partition_of=settings.partition_for_shard,
        alert_action=settings.alert_action, send=send_output, flush=flush,
        read_back=reader.event_ids, checkpoint_events=settings.checkpoint_events,
        checkpoint_seconds=settings.checkpoint_seconds, max_buffer=settings.max_buffer, fault=fault,
    )  # fmt: skip

    @app.agent(inbound, name="ingest")
    async def ingest_agent(stream: Any) -> None:
        async for event in stream.noack().events():
            await ingest.handle(event)

    @app.agent(engine_topic, name="decide")
    async def decide_agent(stream: Any) -> None:
        async for event in stream.noack().events():
            await decide.handle(event)

    clock = _ProgressClock(app, settings, nudges)
    app.timer(interval=settings.tick_seconds, name="progress")(clock.tick)

    @app.timer(interval=10.0, name="status")
    async def _status() -> None:
        log.info("ingest groups: %s", ingest.status())
        log.info("decision partitions: %s", decide.status())

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _shutdown(sender: Any, **kwargs: Any) -> None:
        await clock.close()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        by_topic = _partitions_by_topic(assigned, prefix)
        ingest.assigned(by_topic.get(NUDGE, set()))
        decide.assigned(by_topic.get(ENGINE, set()))
        log.info("deciding for engine partitions %s", sorted(by_topic.get(ENGINE, ())))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        by_topic = _partitions_by_topic(revoked, prefix)
        clock.forget(revoked)
        await ingest.forget(by_topic.get(NUDGE, set()))
        await decide.forget(by_topic.get(ENGINE, set()))
        await flush()  # what the stages wrote for the revoked partitions is on the broker for the next owner

    result = StreamApp(app, settings, ingest, decide)
    try:
        from stream.alerts_agent import register_alerts
    except ImportError:
        pass
    else:
        register_alerts(result)
    return result


class _RouteView:
    """`routes` as the plain mapping `shard_for` expects."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def __contains__(self, key: object) -> bool:
        return key in self.table

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self.table.get(key)
        return default if value is None else value

    def __setitem__(self, key: str, value: str) -> None:
        self.table[key] = value


def _partitions_by_topic(tps: set[Any], prefix: str) -> dict[str, set[int]]:
    result: dict[str, set[int]] = {}
    for tp in tps:
        result.setdefault(tp.topic.removeprefix(prefix), set()).add(tp.partition)
    return result


class _ProgressClock:
    """Every tick, tell each owned ingest group how far its inbound partitions reach (high-water marks)
    and where this owner started in them (the committed offsets): a group is idle when it has processed
    up to the high-water mark of every inbound partition. The nudge goes through the ingest agent's own
    input, so the agent handles it between records, in the context of the group's partition. (Offsets
    are asked with a client of its own: Faust's consumer thread answers only between two fetches.)"""

    def __init__(self, app: faust.App, settings: StreamSettings, nudges: Any) -> None:
        self.app, self.settings, self.nudges = app, settings, nudges
        self.starts: dict[TopicPartition, int] = {}
        self.probe: AIOKafkaConsumer | None = None
        self.admin: AIOKafkaAdminClient | None = None

    def forget(self, revoked: set[Any]) -> None:
        for tp in revoked:
            self.starts.pop(TopicPartition(tp.topic, tp.partition), None)

    async def tick(self) -> None:
        try:
            await self._tick()
        except Exception as exc:  # the clock must keep ticking through a rebalance or a broker hiccup
            log.info("progress tick skipped: %r", exc)

    async def close(self) -> None:
        if self.probe is not None:
            await self.probe.stop()
        if self.admin is not None:
            await self.admin.close()

    async def _tick(self) -> None:
        if self.app.rebalancing:
            return
        if self.probe is None:
            probe = AIOKafkaConsumer(**self.settings.aiokafka_kwargs(), group_id=None, enable_auto_commit=False)
            await probe.start()
            self.probe = probe
        nudge_topic = self.settings.topic(NUDGE)
        groups = sorted({tp.partition for tp in self.app.consumer.assignment() if tp.topic == nudge_topic})
        if not groups:
            return
        tps = [TopicPartition(self.settings.topic(t), g) for g in groups for t in INBOUND]
        highwaters = await self.probe.end_offsets(tps)
        missing = [tp for tp in tps if tp not in self.starts]
        if missing:
            await self._load_starts(missing)
        for group in groups:
            record: dict[str, dict[str, int]] = {"highwater": {}, "start": {}}
            for topic in INBOUND:
                tp = TopicPartition(self.settings.topic(topic), group)
                if tp in highwaters:
                    record["highwater"][topic] = highwaters[tp]
                if tp in self.starts:
                    record["start"][topic] = self.starts[tp]
            await self.nudges.send(key=None, value=orjson.dumps(record), partition=group)

    async def _load_starts(self, tps: list[TopicPartition]) -> None:
        assert self.probe is not None
        if self.admin is None:
            admin = AIOKafkaAdminClient(**self.settings.aiokafka_kwargs())
            await admin.start()
            self.admin = admin
        committed = await self.admin.list_consumer_group_offsets(self.settings.group_id, partitions=tps)
        earliest = await self.probe.beginning_offsets(tps)
        for tp in tps:
            meta = committed.get(tp)
            offset = meta.offset if meta is not None and meta.offset >= 0 else earliest.get(tp)
            if offset is not None:
                self.starts[tp] = offset
