"""The checkpoint protocol on a plain dict table, and the fault hook production runs with (no broker)."""

from __future__ import annotations

import orjson
import pytest

from stream.checkpoint import CHUNK_BYTES, Recovered, recover, write_checkpoint
from stream.cli import _faults_from
from stream.faults import NO_FAULTS

ENTITIES = {"CN01/p:P1": b'{"payment_id":"P1"}', "CN01/v:V1": b'{"touched_at":1}', "#0/vm:V1": b'{"created_at":0}'}
OUT = {"decisions": 12, "alerts": 3}


def test_a_written_checkpoint_recovers_the_partition() -> None:
    table: dict[str, bytes] = {"CN01/p:GONE": b'{"payment_id":"GONE"}'}
    write_checkpoint(table, 0, 1, {**ENTITIES, "CN01/p:GONE": b""}, OUT)
    assert recover(table, 0) == Recovered(1, OUT)
    assert {key: table[key] for key in ENTITIES} == ENTITIES
    assert "CN01/p:GONE" not in table  # an empty value is a deletion


def test_the_table_layout_is_the_one_every_worker_reads() -> None:
    table: dict[str, bytes] = {}
    write_checkpoint(table, 3, 7, {"CN01/p:P1": b'{"a":1}'}, OUT)
    assert table == {
        "~ckpt/3/1/0": orjson.dumps({"gen": 7, "entities": {"CN01/p:P1": '{"a":1}'}}),
        "~ckpt/3": orjson.dumps({"gen": 7, "chunks": 1, "out": OUT}),
    }


def test_a_large_checkpoint_spans_chunks_and_a_new_one_keeps_the_last_one_intact() -> None:
    big = {f"CN01/p:P{i}": b"x" * (CHUNK_BYTES // 3) for i in range(7)}
    table: dict[str, bytes] = {}
    write_checkpoint(table, 0, 1, big, OUT)
    assert orjson.loads(table["~ckpt/0"])["chunks"] > 1
    previous = {key: value for key, value in table.items() if key.startswith("~ckpt/0/1/")}
    write_checkpoint(table, 0, 2, {"CN01/p:P0": b"y"}, {})
    assert all(table[key] == value for key, value in previous.items())
    assert recover(table, 0) == Recovered(2, {})
    assert table["CN01/p:P0"] == b"y"


def test_recovery_without_a_checkpoint_starts_from_nothing() -> None:
    table = {"CN01/p:P1": b"{}"}
    assert recover(table, 0) == Recovered()
    assert table == {"CN01/p:P1": b"{}"}


@pytest.mark.parametrize("point", ["emitted", "state", "redo"])
def test_production_faults_are_armed_nowhere_and_do_nothing(point: str) -> None:
    assert _faults_from(None) is NO_FAULTS and _faults_from("") is NO_FAULTS
    assert not any(NO_FAULTS.armed(point, checkpoint) for checkpoint in range(1, 50))  # type: ignore[arg-type]
    NO_FAULTS.crash(point)  # type: ignore[arg-type]


def test_the_crash_tests_fault_is_armed_from_its_checkpoint_on_at_its_point_only() -> None:
    faults = _faults_from("state:2")
    assert [faults.armed("state", n) for n in (1, 2, 3)] == [False, True, True]
    assert not faults.armed("redo", 2) and not faults.armed("emitted", 2)
