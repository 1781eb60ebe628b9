"""The progress clock: signed nudges telling each ingest group how far its inbound partitions reach.

One of the workarounds for faust-streaming 0.15.3 (stream/README.md), with the delivery guard
(stream/delivery.py): the ingest stage learns from the nudges when a group is idle (stream/ingest.py)."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import faust
import orjson
from aiokafka import TopicPartition

from stream.ingest import NUDGE
from stream.settings import StreamSettings
from stream.sinks import BrokerOffsets
from stream.topics import INBOUND, SIGNATURE_HEADER, envelope_signature, sign_envelope

log = logging.getLogger(__name__)


class ProgressClock:
    """Every tick, tell each owned ingest group how far its inbound partitions reach (high-water marks)
    and where this owner started in them (the committed offsets): a group is idle when it has processed
    up to the high-water mark of every inbound partition. The nudge goes through the ingest agent's own
    input, so the agent handles it between records, in the context of the group's partition. (Offsets
    are asked with a client of its own: Faust's consumer thread answers only between two fetches.)

    Each nudge carries the consumer-group generation it was computed in. After a rebalance the owner of a
    group reads `ingest.ticks` again from its committed offset, so the first nudges it meets are the
    previous assignment's, whose start offsets are where *that* owner started: adopted, they would make a
    group whose inbound partitions were already consumed wait forever for records it will never be given
    (its position would stay below the high-water mark), and with it the watermark of every decision
    partition. `stale` recognises them; a tick that a rebalance overtakes is not sent."""

    def __init__(self, app: faust.App, settings: StreamSettings, nudges: Any, key: bytes) -> None:
        self.app, self.settings, self.nudges, self.key = app, settings, nudges, key
        self.starts: dict[TopicPartition, int] = {}
        self.generation = -1  # the consumer-group generation `starts` belong to
        self.offsets = BrokerOffsets(settings)

    def forget(self, revoked: set[Any]) -> None:
        for tp in revoked:
            self.starts.pop(TopicPartition(tp.topic, tp.partition), None)

    def genuine(self, event: Any) -> bool:
        """A nudge this deployment's clock wrote: signed, and a JSON object."""
        value, signature = event.value, envelope_signature(event.message.headers)
        if not isinstance(value, bytes) or signature is None:
            return False
        if not hmac.compare_digest(signature, sign_envelope(self.key, value)):
            return False
        try:
            return isinstance(orjson.loads(value), dict)
        except orjson.JSONDecodeError:
            return False

    def stale(self, value: Any) -> bool:
        """A nudge computed before this worker's current assignment."""
        data = orjson.loads(value) if isinstance(value, bytes | str) else value
        return int(data.get("generation", -1)) < self.app.consumer_generation_id

    def _overtaken(self, generation: int) -> bool:
        return bool(self.app.rebalancing) or self.app.consumer_generation_id != generation

    async def tick(self) -> None:
        try:
            await self._tick()
        except Exception as exc:  # the clock must keep ticking through a rebalance or a broker hiccup
            log.info("progress tick skipped: %r", exc)

    async def close(self) -> None:
        await self.offsets.close()

    async def warm(self) -> None:
        """Start the offset clients and load the inbound topics' metadata ahead of the first tick, which
        the first records wait for (measured: a cold client's first high-water query took 0.4 s)."""
        await self.offsets.warm()
        tps = self._inbound_partitions()
        if tps:
            await self.offsets.end(tps)

    def _inbound_partitions(self) -> list[TopicPartition]:
        """The inbound partitions of the ingest groups this worker owns."""
        nudge_topic = self.settings.topic(NUDGE)
        groups = sorted({tp.partition for tp in self.app.consumer.assignment() if tp.topic == nudge_topic})
        return [TopicPartition(self.settings.topic(t), g) for g in groups for t in INBOUND]

    async def _tick(self) -> None:
        generation = self.app.consumer_generation_id
        if self.app.rebalancing:
            return
        if generation != self.generation:  # committed offsets read in an earlier generation are outdated
            self.starts.clear()
            self.generation = generation
        tps = self._inbound_partitions()
        if not tps:
            return
        groups = sorted({tp.partition for tp in tps})
        highwaters = await self.offsets.end(tps)
        missing = [tp for tp in tps if tp not in self.starts]
        if missing:
            starts = await self.offsets.resume_points(missing)
            if self._overtaken(generation):
                return
            self.starts.update(starts)
        for group in groups:
            if self._overtaken(generation):
                return  # the rest is for the next owners, with their own start offsets
            record: dict[str, Any] = {"generation": generation, "highwater": {}, "start": {}}
            for topic in INBOUND:
                tp = TopicPartition(self.settings.topic(topic), group)
                if tp in highwaters:
                    record["highwater"][topic] = highwaters[tp]
                if tp in self.starts:
                    record["start"][topic] = self.starts[tp]
            value = orjson.dumps(record)
            await self.nudges.send(key=None, value=value, partition=group,
                                   headers=[(SIGNATURE_HEADER, sign_envelope(self.key, value))])  # fmt: skip
