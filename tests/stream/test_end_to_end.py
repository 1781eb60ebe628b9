"""End to end on a real broker: the simulator's labelled stream through one worker decides exactly as
`paysentry replay` does on the same file."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.learning import events_of, train
from paysentry.contract import action_rank
from tests.harness.model_stream import assert_worker_serves_promoted_model_as_replay, worker_decisions
from tests.stream.conftest import Simulated, StreamRig, assert_same_decisions

pytestmark = pytest.mark.kafka


def test_one_worker_decides_as_replay(stream_rig: StreamRig, simulated: Simulated) -> None:
    decisions = worker_decisions(stream_rig, simulated.path, len(simulated.decisions))
    assert_same_decisions(decisions, simulated.decisions)
    alerts = stream_rig.read("alerts", expect=0, settle=0.5)
    expected_alerts = {d["event_id"] for d in simulated.decisions if action_rank(d["action"]) >= action_rank("review")}
    assert sorted(a["event_id"] for a in alerts) == sorted(expected_alerts)
    stream_rig.stop_all()


def test_a_rule_on_a_promoted_models_score_decides_as_replay(
    stream_rig: StreamRig, simulated: Simulated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model trained on the stream's own verdicts, promoted in the registry, and an active rule on its
    model_score: the worker scores and decides every payment as replay does with the same registry."""
    learner, _ = train(events_of(simulated.path))
    assert_worker_serves_promoted_model_as_replay(learner.freeze(), "e2e", stream_rig, simulated, tmp_path, monkeypatch)
