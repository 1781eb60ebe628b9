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
