"""The decision stage forgets finished payments past the longest window, through its checkpoints,
so a worker's tables stay bounded as replay's state does (no broker needed: a dict plays the table)."""

from __future__ import annotations

import asyncio

from paysentry.core import Engine
from paysentry.state import PaymentRecord, encode_entity
from paysentry.windows import DAY
from stream.decide import DecisionStage, PartitionState, TableView

NOW = 1_800_000_000


def _record(payment_id: str, status: str, at: int) -> bytes:
    return encode_entity(PaymentRecord(payment_id=payment_id, status=status, released_at=at, settled_at=at))


async def _no_flush() -> None:
    return None


async def _no_send(**kwargs: object) -> None:
    return None


def _stage(table: dict) -> DecisionStage:
    async def read_back(topic: str, partition: int, offset: int) -> set[str]:
        return set()

    return DecisionStage(
        engine=Engine(), table=table, partitions=2, partition_of=lambda shard: 0 if shard == "CN01" else 1,
        alert_action="review", send=lambda *a, **k: None, flush=_no_flush, read_back=read_back,
        checkpoint_events=100, checkpoint_seconds=60, max_buffer=1000, internal_key=b"k" * 32,
        send_deadletter=_no_send,
    )  # fmt: skip


def test_finished_old_payments_are_deleted_at_the_next_checkpoint() -> None:
    table = {
        "CN01/p:OLD": _record("OLD", "settled", NOW - 40 * DAY),
        "CN01/p:OPEN": _record("OPEN", "released", NOW - 40 * DAY),  # still waiting for its settlement
        "CN01/p:RECENT": _record("RECENT", "settled", NOW - 2 * DAY),
        "US01/p:OTHER": _record("OTHER", "settled", NOW - 40 * DAY),  # another partition's shard
    }
    stage = _stage(table)
    state = PartitionState(0, table)
    stage._sweep(state, NOW)
    assert state.dirty == {"CN01/p:OLD": None}
    assert TableView(table, state.dirty).get("CN01/p:OLD") is None  # reads see the deletion at once
    assert state.next_sweep == NOW + DAY

    asyncio.run(stage.checkpoint(state))
    assert "CN01/p:OLD" not in table
    assert {"CN01/p:OPEN", "CN01/p:RECENT", "US01/p:OTHER"} <= set(table)


def test_a_new_owner_finishes_a_deletion_cut_short() -> None:
    table = {"CN01/p:OLD": _record("OLD", "settled", NOW - 40 * DAY)}
    stage = _stage(table)
    state = PartitionState(0, table)
    stage._sweep(state, NOW)
    asyncio.run(stage.checkpoint(state))
    table["CN01/p:OLD"] = _record("OLD", "settled", NOW - 40 * DAY)  # as if the tombstone never landed
    asyncio.run(_stage(table)._recover(0))
    assert "CN01/p:OLD" not in table


class _CountingTable(dict):
    """A table that counts the entities read from it (each read is a decode)."""

    reads = 0

    def get(self, key, default=None):  # type: ignore[no-untyped-def, override]
        self.reads += 1
        return super().get(key, default)


def test_a_sweep_decodes_only_entities_that_may_have_gone_idle_and_deletes_them_when_they_have() -> None:
    table = _CountingTable({f"CN01/p:P{n}": _record(f"P{n}", "settled", NOW - 2 * DAY - n * DAY) for n in range(40)})
    stage = _stage(table)
    state = PartitionState(0, table)
    stage._sweep(state, NOW)  # the first sweep reads every entity of the partition once
    assert table.reads == 40
    first = set(state.dirty)
    assert first and len(first) < 40  # the oldest have gone idle, the recent have not

    table.reads = 0
    stage._sweep(state, NOW)  # nothing new is idle yet: nothing is read again
    assert table.reads == 0 and set(state.dirty) == first

    later = NOW + 10 * DAY  # ten more days: exactly the payments idle by then go, as a sweep that reads all finds
    expected = {key for key, value in table.items() if key not in first and Engine().expired(_decode(value), later)}
    assert expected
    stage._sweep(state, later)
    assert set(state.dirty) == first | expected
    assert len(expected) <= table.reads < 40 - len(first)  # not the ones still surely busy ten days on


def test_an_entity_written_again_is_swept_by_its_new_horizon() -> None:
    table: dict[str, bytes] = {"CN01/p:P": _record("P", "settled", NOW - 2 * DAY)}
    stage = _stage(table)
    state = PartitionState(0, table)
    stage._sweep(state, NOW)
    assert not state.dirty
    state.dirty["CN01/p:P"] = _decode(_record("P", "settled", NOW + 5 * DAY))  # touched again, later
    asyncio.run(stage.checkpoint(state))
    far = NOW + 200 * DAY
    stage._sweep(state, far)
    assert state.dirty == {"CN01/p:P": None}


def _decode(raw: bytes):  # type: ignore[no-untyped-def]
    from paysentry.state import decode_entity

    return decode_entity(raw)


def test_after_the_first_sweep_only_the_partitions_own_keys_are_visited_new_ones_included() -> None:
    table: dict[str, bytes] = {"CN01/p:OLD": _record("OLD", "settled", NOW - 2 * DAY),
                               "US01/p:OTHER": _record("OTHER", "settled", NOW - 40 * DAY)}  # fmt: skip
    stage = _stage(table)
    state = PartitionState(0, table)
    stage._sweep(state, NOW)
    assert set(state.expiry_hints) == {"CN01/p:OLD"}  # the other partition's keys are not this owner's
    state.dirty["CN01/p:NEW"] = _decode(_record("NEW", "settled", NOW + DAY))  # first written after that sweep
    asyncio.run(stage.checkpoint(state))
    stage._sweep(state, NOW + 200 * DAY)
    assert state.dirty == {"CN01/p:OLD": None, "CN01/p:NEW": None}
