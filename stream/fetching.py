"""How the worker's own Kafka client fetches, once the tables are restored (a Faust 0.15.3 workaround).

Faust runs one aiokafka client per worker and sends at most one fetch at a time to a broker. Two of its
choices cost latency and throughput here, both measured (stream/README.md, "One fetch at a time"):

- It keeps fetching the tables' changelog partitions, which nothing reads once they are restored (the
  checkpoints write the local store themselves, and a worker keeps no standbys), while Faust takes
  records only from the partitions its streams read. aiokafka then holds records nobody takes, and
  while a partition's records wait to be taken it sends no fetch to that broker for 100 ms (its
  prefetch backoff): each changelog partition's first write stalled every inbound record that long.
  So they are paused in the client. A new assignment starts unpaused, so a takeover still restores
  from them first.
- It fixes the broker's hold of a fetch that finds no new records at 1,500 ms. A fetch sent for quiet
  partitions (the inbound ones were still buffered when it left) then blocked the next fetch of inbound
  records for up to that long, decisions stopping for about a second. The changelogs' own writes used
  to end that hold early; with them paused, the hold is `PAYSENTRY_CONSUMER_FETCH_WAIT_MS` instead.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import TopicPartition

log = logging.getLogger(__name__)


async def tune_fetching(app: Any, fetch_wait_ms: int) -> None:
    """Pause the restored changelog partitions and shorten the broker's hold of an empty fetch, in the
    consumer's own client; logs what the client then reports."""
    changelogs = app.tables.changelog_topics
    tps = [TopicPartition(tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in changelogs]
    thread = getattr(app.consumer, "_thread", None)  # the thread that owns Faust's aiokafka consumer
    if thread is None:
        return

    # in the client's own thread: pausing makes a future on its loop
    async def tune() -> tuple[int, set[TopicPartition]]:
        client = thread._ensure_consumer()
        client._fetcher._fetch_max_wait_ms = fetch_wait_ms  # read as each fetch request is built
        if tps:
            client.pause(*tps)
        return client._fetcher._fetch_max_wait_ms, {tp for tp in client.paused() if tp.topic in changelogs}

    wait_ms, paused = await thread.call_thread(tune)
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(paused):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    paused_text = " ".join(f"{topic}{parts}" for topic, parts in by_topic.items()) or "none"
    log.info("fetching tuned in the client: empty fetches held %d ms; changelog partitions paused: %s",
             wait_ms, paused_text)  # fmt: skip
