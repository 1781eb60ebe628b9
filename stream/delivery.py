"""The delivery guard in front of both agents: each input partition reaches the stages exactly once and in
offset order, whatever Faust does around a rebalance (see stream/README.md, "What Faust delivers around a
rebalance")."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import faust
from aiokafka import TopicPartition
from intervaltree import IntervalTree

from stream.settings import StreamSettings
from stream.sinks import BrokerOffsets

log = logging.getLogger(__name__)


class _NoGaps(defaultdict[Any, IntervalTree]):
    """Faust's consumer counts offsets it skipped over as acknowledged ("gaps": transaction markers,
    compacted records). The agents' topics have neither: there a skip is Faust delivering a record from
    before a seek, and counting the skipped records as acknowledged would let a commit pass records the
    stages still hold. For those topics the gaps Faust notes are forgotten."""

    def __init__(self, topics: set[str], existing: dict[Any, IntervalTree]) -> None:
        super().__init__(IntervalTree, {tp: tree for tp, tree in existing.items() if tp.topic not in topics})
        self.topics = topics

    def __missing__(self, tp: Any) -> IntervalTree:
        if tp.topic in self.topics:
            return IntervalTree()  # not stored: what Faust adds to it is dropped
        return super().__missing__(tp)


class DeliveryGuard:
    """Hands each input partition to the stages exactly once and in offset order, from where the group
    resumes it (the committed offset), in every generation of the consumer group.

    faust-streaming 0.15.3 does not quite: around a rebalance it can deliver records from before its seek
    to the committed offsets (below them: already covered by a checkpoint), deliver records twice, or skip
    some (a stale read offset, set by a fetch that straddled the rebalance, makes its consumer drop them
    as already read). A record below the next offset due is dropped (the stage has it, or a checkpoint
    covers it); a record past it makes the guard seek the partition back to the next offset due through
    Faust's consumer, which also resets Faust's read offset; a partition with records waiting and none
    delivered for `stall_seconds` is sought back the same way. Dropped records are not acknowledged, so
    nothing is committed past a record the stages have not seen."""

    def __init__(self, app: faust.App, settings: StreamSettings, topics: set[str]) -> None:
        self.app, self.topics, self.stall = app, topics, settings.stall_seconds
        self.offsets = BrokerOffsets(settings)
        self.next: dict[TopicPartition, int] = {}
        self.moved: dict[TopicPartition, float] = {}  # when a record was last handed over
        self.sought: dict[TopicPartition, float] = {}  # when the partition was last sought back
        self.epoch = 0  # bumped on revocation: a lookup begun before it is void

    def install(self) -> None:
        consumer: Any = self.app.consumer
        if not isinstance(consumer._gap, _NoGaps):
            consumer._gap = _NoGaps(self.topics, consumer._gap)

    def forget(self, revoked: set[Any]) -> None:
        self.epoch += 1
        for tp in revoked:
            key = TopicPartition(tp.topic, tp.partition)
            self.next.pop(key, None)
            self.moved.pop(key, None)
            self.sought.pop(key, None)

    async def close(self) -> None:
        await self.offsets.close()

    async def admit(self, event: Any) -> bool:
        message = event.message
        tp = TopicPartition(message.topic, message.partition)
        expected = self.next.get(tp)
        if expected is None:
            await self._start([tp])
            expected = self.next.get(tp)
            if expected is None:
                return False  # not (or no longer) assigned here
        if message.offset == expected:
            self.next[tp] = expected + 1
            self.moved[tp] = time.monotonic()
            return True
        if message.offset > expected and time.monotonic() - self.sought.get(tp, float("-inf")) >= 1.0:
            log.warning("%s-%s: offset %s delivered, %s due: seeking back", tp.topic, tp.partition,
                        message.offset, expected)  # fmt: skip
            await self._seek(tp, expected)
        return False

    async def prepare(self) -> None:
        """Where each assigned partition resumes, in one round trip once the group has settled (the tables
        are restored, fetching not yet resumed), instead of one per partition on its first record."""
        await self._start([tp for tp in self._assigned() if tp not in self.next])

    def _assigned(self) -> list[TopicPartition]:
        consumer: Any = self.app.consumer
        return [TopicPartition(tp.topic, tp.partition) for tp in consumer.assignment() if tp.topic in self.topics]

    async def watch(self) -> None:
        """Seek back a partition that has records waiting and delivers none."""
        try:
            if self.app.rebalancing:
                return
            tps = self._assigned()
            await self._start([tp for tp in tps if tp not in self.next])
            now = time.monotonic()
            quiet = [tp for tp in tps if tp in self.next and now - max(self.moved.get(tp, now),
                     self.sought.get(tp, float("-inf"))) >= self.stall]  # fmt: skip
            if not quiet:
                return
            ends = await self.offsets.end(quiet)
            for tp in quiet:
                expected = self.next.get(tp)
                if expected is not None and ends.get(tp, 0) > expected and not self.app.rebalancing:
                    log.warning("%s-%s: %s records waiting from offset %s, none delivered for %.0fs: seeking back",
                                tp.topic, tp.partition, ends[tp] - expected, expected, self.stall)  # fmt: skip
                    await self._seek(tp, expected)
        except Exception as exc:  # a rebalance or a broker hiccup: the next round tries again
            log.info("delivery watch skipped: %r", exc)

    async def _start(self, tps: list[TopicPartition]) -> None:
        """The next offset due of partitions new in this generation: where the group resumes them."""
        if not tps:
            return
        epoch = self.epoch
        points = await self.offsets.resume_points(tps)
        assigned = {TopicPartition(tp.topic, tp.partition) for tp in self.app.consumer.assignment()}
        if epoch != self.epoch:
            return  # revoked meanwhile
        now = time.monotonic()
        for tp in tps:
            if tp in points and tp in assigned and tp not in self.next:
                self.next[tp] = points[tp]
                self.moved[tp] = now

    async def _seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought[tp] = time.monotonic()
        try:
            await self.app.consumer.seek_wait({tp: offset})
        except Exception as exc:  # revoked meanwhile: the next owner starts from the committed offset
            log.info("seek %s-%s -> %s failed: %r", tp.topic, tp.partition, offset, exc)


def records_queued(stream: Any) -> bool:
    """Whether the agent's input queue holds further records already fetched (then a stage may batch
    what it sends rather than send per record); False when Faust does not say."""
    try:
        return not stream.channel.queue.empty()
    except AttributeError:
        return False
