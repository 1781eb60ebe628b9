"""The timer queue, and `Replayer.run`: the one event-time driver of replay, backtests, rule tests and training."""

from __future__ import annotations

import pytest

from paysentry.contract import Decision, Event
from paysentry.core import EmptyRuleset, Engine, StateStore
from paysentry.params import CompanyParams
from paysentry.replay import Replayer
from paysentry.timers import TimerQueue
from tests.builders import KEY, at, parse, release, settle


def test_due_checks_come_out_by_due_time_then_payment_id_and_later_ones_wait() -> None:
    timers = TimerQueue()
    timers.schedule("B", 20, "S1")
    timers.schedule("C", 10, "S2")
    timers.schedule("A", 20, "S1")
    timers.schedule("LATER", 31, "S1")
    assert list(timers.pop_due(30)) == [(10, "C", "S2"), (20, "A", "S1"), (20, "B", "S1")]
    assert len(timers) == 1 and "LATER" in timers
    assert list(timers.pop_due(31)) == [(31, "LATER", "S1")] and len(timers) == 0


def test_a_reschedule_supersedes_the_earlier_check_and_none_or_forget_cancel_it() -> None:
    timers = TimerQueue()
    timers.schedule("MOVED", 10, "S1")
    timers.schedule("MOVED", 25, "S1")
    timers.schedule("DONE", 12, "S1")
    timers.schedule("DONE", None, "S1")
    timers.schedule("SWEPT", 14, "S1")
    timers.forget("SWEPT")
    assert list(timers.pop_due(20)) == []
    assert list(timers.pop_due(25)) == [(25, "MOVED", "S1")]


def test_the_same_due_time_again_keeps_the_pending_check_and_its_shard() -> None:
    timers = TimerQueue()
    timers.schedule("P1", 10, "S1")
    timers.schedule("P1", 10, "S2")
    assert list(timers.pop_due(10)) == [(10, "P1", "S1")]


def test_a_check_scheduled_while_firing_fires_in_the_same_pass_when_it_is_due() -> None:
    timers = TimerQueue()
    timers.schedule("P1", 10, "S1")
    fired = []
    for due, payment_id, shard in timers.pop_due(30):
        fired.append((due, payment_id))
        if due == 10:  # a fired payment is rescheduled after its check ran
            timers.schedule(payment_id, 20, shard)
            timers.schedule("P2", 40, shard)
    assert fired == [(10, "P1"), (20, "P1")] and len(timers) == 1


class ShortSla(EmptyRuleset):
    def company(self, company_code: str | None) -> CompanyParams:
        return CompanyParams(settlement_sla_hours=24)


EVENTS = [parse(e) for e in (release("LATE", at(0)), release("ON-TIME", at(1)), settle("ON-TIME", at(3)),
                             release("OPEN", at(days=2)))]  # fmt: skip


def test_run_decides_as_feeding_each_event_then_advancing_to_the_last_one() -> None:
    fed = Replayer(Engine(ShortSla()), KEY)
    expected = [d for event in EVENTS for d in fed.feed(event)]
    expected += fed.advance(int(EVENTS[-1].event_time.timestamp()))
    decisions = list(Replayer(Engine(ShortSla()), KEY).run(EVENTS))
    assert [d.to_json() for d in decisions] == [d.to_json() for d in expected]
    assert [d.event_type for d in decisions].count("sla.unsettled") == 1  # LATE's, before OPEN's release


def test_run_fires_the_timers_due_by_until() -> None:
    until = int(EVENTS[-1].event_time.timestamp()) + 25 * 3600
    decisions = list(Replayer(Engine(ShortSla()), KEY).run(EVENTS, until=until))
    assert [(d.event_type, d.payment_id) for d in decisions[-2:]] == [
        ("payment.released", "OPEN"), ("sla.unsettled", "OPEN"),
    ]  # fmt: skip


class FailingOn(Engine):
    def __init__(self, payment_id: str) -> None:
        super().__init__(ShortSla())
        self.failing = payment_id

    def process(
        self, event: Event, store: StateStore, *, shard: str = "_", master: StateStore | None = None
    ) -> Decision | None:
        if event.payment_id == self.failing:
            raise LookupError("boom")
        return super().process(event, store, shard=shard, master=master)


def test_an_event_the_core_raises_on_goes_to_on_error_and_the_run_goes_on() -> None:
    failed: list[tuple[str | None, str]] = []
    replayer = Replayer(FailingOn("OPEN"), KEY)
    decisions = list(replayer.run(EVENTS, on_error=lambda event, exc: failed.append((event.payment_id, str(exc)))))
    assert failed == [("OPEN", "boom")]
    # the timer that fell due before the failing event has fired all the same
    assert [(d.event_type, d.payment_id) for d in decisions][-1] == ("sla.unsettled", "LATE")
    with pytest.raises(LookupError):
        list(Replayer(FailingOn("OPEN"), KEY).run(EVENTS))
