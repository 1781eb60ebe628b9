"""End to end on a real broker: the simulator's labelled stream through one worker decides exactly as
`paysentry replay` does on the same file."""

from __future__ import annotations

import pytest

from paysentry.contract import action_rank
from tests.stream.conftest import Simulated, StreamRig, assert_same_decisions

pytestmark = pytest.mark.kafka


def test_one_worker_decides_as_replay(stream_rig: StreamRig, simulated: Simulated) -> None:
    stream_rig.produce(simulated.path)
    stream_rig.worker("w1")
    decisions = stream_rig.read("decisions", expect=len(simulated.decisions))
    assert_same_decisions(decisions, simulated.decisions)
    alerts = stream_rig.read("alerts", expect=0, settle=0.5)
    expected_alerts = {d["event_id"] for d in simulated.decisions if action_rank(d["action"]) >= action_rank("review")}
    assert sorted(a["event_id"] for a in alerts) == sorted(expected_alerts)
    stream_rig.stop_all()
