"""Bounded state: entities idle past their horizon read as absent, sweeps only delete those (so when a
sweep runs never changes a decision), and the embedded store holds entities packed."""

from __future__ import annotations

from paysentry.core import Engine
from paysentry.replay import MemoryStateStore, Replayer
from paysentry.state import (
    PROFILE_MEMORY,
    PaymentRecord,
    VendorMaster,
    VendorProfile,
    decode_entity,
    encode_entity,
    pack_entity,
    unpack_entity,
)
from paysentry.windows import DAY, HOUR
from tests.builders import KEY, at, parse, raw, release, settle, vendor
from tests.test_core import Capturing


def _replay(events: list[dict], sweep_interval: int | None = DAY) -> tuple[Replayer, list[bytes]]:
    replayer = Replayer(Engine(Capturing()), KEY, sweep_interval=sweep_interval)
    decisions = []
    for data in events:
        decisions += [d.to_json() for d in replayer.feed(parse(data))]
    return replayer, decisions


def _long_story() -> list[dict]:
    """Vendors and payments that go quiet past their horizons and come back, in event-time order."""
    settled = release("P1", at(0), event_id="rel-P1")
    events = [
        vendor("V9", at(days=-1), "999900001111"),
        settled,
        settle("P1", at(1)),
        raw(
            "payment.created",
            at(2),
            payment_id="C1",
            vendor_id="V2",
            amount="50.00",
            currency="USD",
            company_code="US01",
        ),  # fmt: skip
        settle("GHOST", at(3), amount="77.00"),
        raw("label.confirmed", at(4), payment_id="NOBODY", verdict="fraud", typology="test"),
        release("P2", at(days=3), vendor="V2"),
        settled | {"event_time": at(days=40)},  # the same release again, after P1 is forgotten
        release("P3", at(days=41)),  # V1 was idle 41 days: a new vendor to the profiles
        settle("GHOST", at(days=41), amount="77.00"),  # a platform event for a forgotten id
        raw(
            "payment.released",
            at(days=42),
            payment_id="C1",
            vendor_id="V2",
            amount="50.00",
            currency="USD",
            company_code="DE01",
            channel="ach",
        ),  # fmt: skip
        release("P4", at(days=43), vendor="V9", payee_account="999900001111"),
    ]
    return sorted(events, key=lambda e: parse(e).event_time)


def test_decisions_are_the_same_whether_sweeps_run_daily_hourly_or_never() -> None:
    story = _long_story()
    daily, by_day = _replay(story, DAY)
    _, by_hour = _replay(story, HOUR)
    never, unswept = _replay(story, None)
    assert by_day == by_hour == unswept
    assert len(daily.store) < len(never.store)  # the sweeps did delete something


def test_an_idle_vendor_profile_reads_as_absent_then_is_swept() -> None:
    rules = Capturing()
    replayer = Replayer(Engine(rules), KEY)
    replayer.feed(parse(release("P1", at(0))))
    replayer.feed(parse(release("P2", at(days=30))))
    assert rules.last["days_since_last_payment"] == 30  # still remembered within the horizon
    # Last read by P2's settlement-SLA timer (48 h after day 30), then idle 36 days: past its horizon.
    replayer.feed(parse(release("P3", at(days=32 + 36))))
    assert rules.last["days_since_last_payment"] is None  # reads as a vendor never paid
    assert rules.last["account_new_for_vendor"] is True
    replayer.feed(parse(release("P4", at(days=68 + 2 + 36), vendor="V2")))  # P3 and its timer, then idle
    assert "US01/v:V1" not in replayer.store


def test_forgotten_payments_created_unmatched_and_labelled_are_gone_after_their_horizon() -> None:
    events = [
        raw(
            "payment.created",
            at(0),
            payment_id="C1",
            vendor_id="V2",
            amount="50.00",
            currency="USD",
            company_code="US01",
        ),  # fmt: skip
        settle("GHOST", at(0), amount="77.00"),
        raw("label.confirmed", at(0), payment_id="NOBODY", verdict="fraud"),
        release("OPEN", at(0)),  # released, never settled: forgotten after its SLA timer
    ]
    replayer, _ = _replay([*events, release("LATER", at(days=30))])
    kept = {key.split(":", 1)[1] for key in replayer.store if "/p:" in key}
    assert {"C1", "GHOST", "NOBODY", "OPEN"} <= kept
    replayer.feed(parse(release("MUCH-LATER", at(days=40))))
    kept = {key.split(":", 1)[1] for key in replayer.store if "/p:" in key}
    assert kept == {"LATER", "MUCH-LATER"}
    # the routes go weeks later than the records they lead to (tests/test_routes.py)
    assert set(replayer.routes) == {"C1", "GHOST", "NOBODY", "OPEN", "LATER", "MUCH-LATER"}


def test_a_payment_with_a_pending_timer_never_expires() -> None:
    engine = Engine()
    record = PaymentRecord(payment_id="P", released_at=0, status="released", touched_at=0)
    assert engine.due_at(record) is not None
    assert not engine.expired(record, PROFILE_MEMORY * 10)
    record.sla_flagged = True
    assert engine.expired(record, PROFILE_MEMORY * 10)


def test_state_written_before_touched_at_existed_decodes_and_expires_by_its_own_times() -> None:
    data = encode_entity(PaymentRecord(payment_id="OLD", status="settled", released_at=1_000, settled_at=2_000))
    legacy = data.replace(b'"touched_at":null,', b"")
    assert b"touched_at" not in legacy
    entity = decode_entity(legacy)
    assert isinstance(entity, PaymentRecord) and entity.touched_at is None
    assert not Engine().expired(entity, 2_000 + PROFILE_MEMORY)
    assert Engine().expired(entity, 2_001 + PROFILE_MEMORY)


def test_the_embedded_store_round_trips_packed_entities_and_reads_fresh_copies() -> None:
    replayer, _ = _replay([release(f"P{i}", at(hours=i), invoice_id=f"INV-{i}") for i in range(40)])
    for key in replayer.store:
        entity = replayer.store[key]
        assert encode_entity(unpack_entity(pack_entity(entity))) == encode_entity(entity)
    profile = replayer.store["US01/v:V1"]
    assert isinstance(profile, VendorProfile)
    assert len(pack_entity(profile)) < len(encode_entity(profile))
    store = MemoryStateStore(live=1)
    store["a"], store["b"] = profile, PaymentRecord(payment_id="X")  # "a" leaves the live set: packed
    assert len(store) == 2 and set(store) == {"a", "b"}
    first = store["a"]
    assert first is not profile and encode_entity(first) == encode_entity(profile)
    assert store["b"] is not None and "a" in store and "b" in store
    del store["a"]
    assert "a" not in store and len(store) == 1


def test_a_stream_partition_sweep_deletes_every_kind_of_idle_entity_and_only_those() -> None:
    from stream.decide import DecisionStage, PartitionState

    now = 1_800_000_000
    old, recent = now - PROFILE_MEMORY - 1, now - DAY
    table = {
        "CN01/v:IDLE": encode_entity(VendorProfile(touched_at=old)),
        "CN01/v:RECENT": encode_entity(VendorProfile(touched_at=recent)),
        "CN01/p:CREATED": encode_entity(PaymentRecord(payment_id="CREATED", created_at=old, touched_at=old)),
        "CN01/p:WAITING": encode_entity(  # its settlement-SLA timer has not fired: kept
            PaymentRecord(payment_id="WAITING", released_at=old, status="released", touched_at=old)
        ),
        "#0/vm:V1": encode_entity(VendorMaster(created_at=old, touched_at=old)),  # master data: kept
    }

    # only what a sweep uses: the constructor's broker plumbing is beside the point here
    stage = DecisionStage.__new__(DecisionStage)
    stage.engine, stage.table, stage.partition_of = Engine(), table, lambda shard: 0
    state = PartitionState(0, table)
    stage._sweep(state, now)
    assert state.dirty == {"CN01/v:IDLE": None, "CN01/p:CREATED": None}


def test_a_field_an_older_version_stored_is_ignored_when_decoding() -> None:
    data = encode_entity(PaymentRecord(payment_id="OLD", status="released"))
    legacy = data.replace(b'"payment_id":', b'"last_event_time":"2026-01-01T00:00:00+00:00","payment_id":')
    entity = decode_entity(legacy)
    assert isinstance(entity, PaymentRecord) and entity.payment_id == "OLD"


def test_the_embedded_store_never_reads_a_stale_packed_copy_nor_counts_a_key_twice() -> None:
    store = MemoryStateStore(live=1)
    store["a"] = PaymentRecord(payment_id="A", status="created")
    store["b"] = PaymentRecord(payment_id="B")  # "a" leaves the live set: packed as created
    record = store["a"]  # live again; its packed copy is now stale
    assert isinstance(record, PaymentRecord)
    record.status = "released"
    store["a"] = record
    assert len(store) == 2 and sorted(store) == ["a", "b"]
    store["c"] = PaymentRecord(payment_id="C")  # "a" leaves again: packed afresh
    again = store["a"]
    assert isinstance(again, PaymentRecord) and again.status == "released"
    assert len(store) == 3 and sorted(store) == ["a", "b", "c"]
