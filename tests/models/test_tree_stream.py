"""On a real broker: a promoted tree ensemble and an active rule on its model_score decide in the worker
exactly as `paysentry replay` does with the same registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.learning import events_of
from models.offline import train_boosted
from tests.harness.model_stream import assert_worker_serves_promoted_model_as_replay
from tests.stream import conftest as stream_fixtures
from tests.stream.conftest import Simulated, StreamRig

pytestmark = pytest.mark.kafka
stream_rig, simulated = stream_fixtures.stream_rig, stream_fixtures.simulated  # the stream tests' fixtures


def test_a_rule_on_a_promoted_tree_models_score_decides_as_replay(
    stream_rig: StreamRig,
    simulated: Simulated,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = train_boosted(events_of(simulated.path), params={"max_iter": 50}).model
    assert_worker_serves_promoted_model_as_replay(tree, "tree", stream_rig, simulated, tmp_path, monkeypatch)
