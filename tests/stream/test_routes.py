"""The `routes` table stays bounded: each ingest group deletes its own expired routes (tombstones on the
changelog), and a payment whose route expired is routed afresh, as replay routes it
(paysentry/sharding.py has the rule, tests/test_routes.py its properties)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import orjson
import pytest

from paysentry.sharding import ROUTE_MEMORY_WEEKS, Route
from stream.routes import UNSTAMPED, RouteTable, decode_route, encode_route
from stream.sinks import read_topic
from tests.builders import at, release, settle
from tests.stream.conftest import StreamRig, assert_same_decisions, replay_file


def _table() -> Any:
    app = faust.App("routes-test", broker="kafka://127.0.0.1:9", store="memory://", key_serializer="raw",
                    value_serializer="raw")  # fmt: skip
    return app.Table("routes", key_type=str, value_type=str, partitions=4)


async def _no_send(*args: Any) -> None:
    return None


def test_a_route_value_holds_its_stamp_partition_and_shard() -> None:
    route = Route("CN:01", 2900)  # a shard may hold the separator
    assert decode_route(encode_route(route, 3)) == (route, 3)
    assert decode_route("CN01") == (Route("CN01", UNSTAMPED), None)  # written before routes were stamped


def test_a_group_deletes_only_its_own_expired_routes() -> None:
    table = _table()
    now = 3000
    old, fresh = now - ROUTE_MEMORY_WEEKS - 1, now - ROUTE_MEMORY_WEEKS
    table.data.update({"OLD": encode_route(Route("CN01", old), 0), "FRESH": encode_route(Route("CN01", fresh), 0),
                       "OTHERS": encode_route(Route("CN01", old), 1), "LEGACY": "CN01"})  # fmt: skip
    routes = RouteTable(table, _no_send)
    routes.write(0, "RESTAMPED", Route("US01", old))
    routes.write(0, "RESTAMPED", Route("US01", now))  # its payment came back: the old stamp no longer holds
    assert routes.sweep(0, now) == 1
    assert set(table.data) == {"FRESH", "OTHERS", "LEGACY", "RESTAMPED"}
    assert routes.batches[0].pending[-1] == ("OLD", None)  # a tombstone, sent with the next batch
    assert routes.sweep(0, now) == 0  # once a week
    assert routes.sweep(0, now + 1) == 1 and "FRESH" not in table.data
    assert routes.sweep(1, now) == 1 and set(table.data) == {"LEGACY", "RESTAMPED"}
    routes.forget({0})  # revoked: a next owner indexes the store again
    assert routes.sweep(0, now + 100) == 1 and set(table.data) == {"LEGACY"}


@pytest.mark.kafka
def test_the_stream_sweeps_expired_routes_and_routes_a_returning_payment_afresh(
    stream_rig: StreamRig, tmp_path: Path
) -> None:
    start = -200  # days before the builders' T0, so that the whole story is in the worker's past
    events = [release(name, at(days=start), company_code="CN01") for name in ("GONE", "BACK")]
    events += [release(f"F{n}", at(days=start + 2 * n), company_code="CN01") for n in range(60)]
    events.append(settle("BACK", at(days=start + 100)))  # its route expired: a platform event of an unknown payment
    path = tmp_path / "story.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    expected = replay_file(path, tmp_path)

    stream_rig.produce(path)
    stream_rig.worker("w1")
    decisions = stream_rig.read("decisions", expect=len(expected.decisions))
    assert_same_decisions(decisions, expected.decisions)
    gone = orjson.dumps("GONE")  # the table's keys are JSON text on its changelog
    changelog = asyncio.run(_records(stream_rig, "paysentry-routes-changelog", stop_at=gone))
    assert (gone, None) in changelog  # swept
    partitions = asyncio.run(_decision_partitions(stream_rig, len(expected.decisions)))
    back = [e["event_id"] for e in events if e["payment_id"] == "BACK"]
    assert [partitions[event_id] for event_id in back] == [0, 3]  # CN01, then the unknown shard
    stream_rig.stop_all()


async def _records(rig: StreamRig, name: str, stop_at: bytes) -> list[tuple[bytes, bytes | None]]:
    """The topic's records until a tombstone of `stop_at` (or 60 s)."""
    found: list[tuple[bytes, bytes | None]] = []

    async def collect() -> None:
        async for message in read_topic(rig.settings, name):
            found.append((message.key, message.value))
            if message.key == stop_at and message.value is None:
                return

    await asyncio.wait_for(collect(), 60)
    return found


async def _decision_partitions(rig: StreamRig, expect: int) -> dict[str, int]:
    found: dict[str, int] = {}
    async for message in read_topic(rig.settings, "decisions", idle_timeout=5):
        found[orjson.loads(message.value)["event_id"]] = message.partition
        if len(found) >= expect:
            break
    return found
