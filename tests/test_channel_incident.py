"""A flagged failure on a channel names the channel's earlier failures of the hour (bounded, per company
and channel), and the channel profile keeps them across encoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import orjson

from paysentry.contract import Decision, RuleHit
from paysentry.core import EmptyRuleset, Engine
from paysentry.ports import RuleContext
from paysentry.replay import Replayer
from paysentry.rulebook import load_rulebook
from paysentry.state import (
    MAX_RECENT_FAILURES,
    ChannelProfile,
    decode_entity,
    encode_entity,
    pack_entity,
    unpack_entity,
)
from paysentry.windows import HOUR
from tests.builders import KEY, at, parse, release, settle

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract"


class FlagFailures(EmptyRuleset):
    """Reviews every failure and return, whatever the channel's history (so the naming is seen alone)."""

    def evaluate(self, ctx: RuleContext) -> tuple[list[RuleHit], list[RuleHit]]:
        if ctx.event_type in ("psp.failed", "psp.returned"):
            return [RuleHit(rule_id="any_failure", severity="medium", action="review", reason="failed")], []
        return [], []


def replay(events: list[dict[str, Any]], ruleset: Any = None) -> list[Decision]:
    replayer = Replayer(Engine(ruleset or FlagFailures(), models=None), KEY)
    decisions: list[Decision] = []
    for data in events:
        decisions.extend(replayer.feed(parse(data)))
    return decisions


def failed(payment_id: str, minutes: float, channel: str = "ach", type_: str = "psp.failed") -> dict[str, Any]:
    return settle(payment_id, at(hours=minutes / 60), type_=type_, channel=channel, status_reason="R01 outage")


def named(decisions: list[Decision], payment_id: str, event_type: str = "psp.failed") -> list[str] | None:
    """The earlier failures the decision on `payment_id`'s `event_type` names (None: no incident)."""
    decision = next(d for d in decisions if d.payment_id == payment_id and d.event_type == event_type)
    incident = decision.explanation.get("channel_incident")
    return None if incident is None else incident["earlier_failures"]


def test_the_default_rulebook_names_the_failures_before_the_spike_showed() -> None:
    events = [settle("P-OK", at(hours=-0.5))]
    events += [failed(f"P-F{i}", minutes) for i, minutes in enumerate((0, 4, 7, 15, 20), start=1)]
    decisions = replay(events, load_rulebook(None))
    assert named(decisions, "P-F1") is None  # the first failure flags nothing, so names nothing
    assert named(decisions, "P-F2") == ["P-F1"]
    assert named(decisions, "P-F5") == ["P-F1", "P-F2", "P-F3", "P-F4"]
    spike = next(d for d in decisions if d.payment_id == "P-F5")
    assert [h.rule_id for h in spike.rule_hits] == ["channel_failure_spike"]
    assert spike.explanation["channel_incident"]["channel"] == "ach"
    schema = orjson.loads((CONTRACT / "decision.schema.json").read_bytes())
    for decision in decisions:
        jsonschema.validate(orjson.loads(decision.to_json()), schema)


def test_only_flagged_failures_name_anything() -> None:
    decisions = replay([failed("P-1", 0), failed("P-2", 5)], EmptyRuleset())
    assert all("channel_incident" not in d.explanation for d in decisions)


def test_a_settlement_or_a_flagged_payment_event_names_nothing() -> None:
    class FlagAll(EmptyRuleset):
        def evaluate(self, ctx: RuleContext) -> tuple[list[RuleHit], list[RuleHit]]:
            return [RuleHit(rule_id="all", severity="high", action="hold", reason="all")], []

    decisions = replay([failed("P-1", 0), settle("P-2", at(hours=0.1)), failed("P-3", 10)], FlagAll())
    assert named(decisions, "P-2", "psp.settled") is None
    assert named(decisions, "P-3") == ["P-1"]


def test_never_more_than_the_cap_and_the_latest_first_kept() -> None:
    count = MAX_RECENT_FAILURES + 6
    decisions = replay([failed(f"P-{i:02d}", i) for i in range(count)])
    last = named(decisions, f"P-{count - 1:02d}")
    assert last == [f"P-{i:02d}" for i in range(count - 1 - MAX_RECENT_FAILURES, count - 1)]


def test_never_older_than_an_hour() -> None:
    decisions = replay([failed("P-OLD", 0), failed("P-MID", 30), failed("P-NEW", 61)])
    assert named(decisions, "P-MID") == ["P-OLD"]
    assert named(decisions, "P-NEW") == ["P-MID"]  # P-OLD failed 61 minutes before


def test_never_another_channel_or_company() -> None:
    events = [
        release("P-US-ACH", at(hours=-2), company_code="US01", channel="ach"),
        release("P-US-WIRE", at(hours=-2), company_code="US01", channel="wire", vendor="V2"),
        release("P-DE-ACH", at(hours=-2), company_code="DE01", channel="ach", vendor="V3"),
        release("P-US-ACH2", at(hours=-2), company_code="US01", channel="ach", vendor="V4"),
        failed("P-US-ACH", 0),
        failed("P-US-WIRE", 5, channel="wire"),
        failed("P-DE-ACH", 10),
        failed("P-US-ACH2", 15),
    ]
    decisions = replay(events)
    assert named(decisions, "P-US-WIRE") is None
    assert named(decisions, "P-DE-ACH") is None
    assert named(decisions, "P-US-ACH2") == ["P-US-ACH"]


def test_a_payment_is_named_once_and_never_by_itself() -> None:
    events = [failed("P-1", 0), failed("P-1", 20, type_="psp.returned"), failed("P-2", 30)]
    decisions = replay(events + [events[-1]])  # the last one redelivered: decided once
    assert named(decisions, "P-1", "psp.returned") is None
    assert named(decisions, "P-2") == ["P-1"]
    assert sum(d.payment_id == "P-2" for d in decisions) == 1


def test_the_profile_forgets_what_left_the_hour_and_keeps_order_out_of_order() -> None:
    profile = ChannelProfile()
    profile.add_failure("P-2", 2000)
    profile.add_failure("P-1", 1000)  # late: placed before P-2
    assert profile.recent_failures == [["P-1", 1000], ["P-2", 2000]]
    profile.add_failure("P-3", 1000 + HOUR)  # P-1 is exactly an hour old: out
    assert [pid for pid, _ in profile.recent_failures] == ["P-2", "P-3"]
    profile.add_failure("P-0", 100)  # already older than the hour when it arrives: never kept
    assert [pid for pid, _ in profile.recent_failures] == ["P-2", "P-3"]
    assert profile.failures_before(2000 + HOUR - 1, "P-3") == ["P-2"]
    assert profile.failures_before(2000 + HOUR, None) == ["P-3"]
    assert profile.failures_before(1500, None) == []  # nothing failed in the hour up to then


def test_encode_decode_and_pack_round_trip_and_older_profiles_decode() -> None:
    profile = ChannelProfile(first_seen=10, last_seen=500)
    profile.stats.add(500, 0, failure=True)
    for i, moment in enumerate((100, 200, 500)):
        profile.add_failure(f"P-{i}", moment)
    for copy in (decode_entity(encode_entity(profile)), unpack_entity(pack_entity(profile))):
        assert isinstance(copy, ChannelProfile)
        assert copy.recent_failures == profile.recent_failures
        assert copy.failures_before(500, None) == ["P-0", "P-1", "P-2"]
        assert copy.stats.stat("failures", 500, HOUR) == 1.0
    older = orjson.loads(encode_entity(profile))
    del older["recent_failures"]  # written before the field existed
    decoded = decode_entity(orjson.dumps(older))
    assert isinstance(decoded, ChannelProfile) and decoded.recent_failures == []
    assert decoded.first_seen == 10 and decoded.stats.stat("failures", 500, HOUR) == 1.0
