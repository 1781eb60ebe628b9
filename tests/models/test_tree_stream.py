"""On a real broker: a promoted tree ensemble and an active rule on its model_score decide in the worker
exactly as `paysentry replay` does with the same registry."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from models.learning import events_of
from models.offline import train_boosted
from models.registry import DirectoryStore, ModelRegistry
from paysentry.cli import run_replay
from rules.loader import DEFAULT_RULES_DIR
from tests.stream import conftest as stream_fixtures
from tests.stream.conftest import MODEL_KEY, Simulated, StreamRig, assert_same_decisions

pytestmark = pytest.mark.kafka
stream_rig, simulated = stream_fixtures.stream_rig, stream_fixtures.simulated  # the stream tests' fixtures

MODEL_RULE = """\
groups:
  - name: models
    labels: {{team: risk-models}}
    rules:
      - id: tree_holds
        severity: high
        action: hold
        on: [payment.released]
        expr: model_score >= {threshold}
        labels: {{typology: model}}
"""


def test_a_rule_on_a_promoted_tree_models_score_decides_as_replay(
    stream_rig: StreamRig,
    simulated: Simulated,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry_dir = tmp_path / "models"
    registry = ModelRegistry(DirectoryStore(registry_dir), MODEL_KEY.encode())
    registry.register(train_boosted(events_of(simulated.path), params={"max_iter": 50}).model, model_id="tree",
                      by="test")  # fmt: skip
    registry.promote("tree", 1, by="test", effective_from=0)
    monkeypatch.setenv("PAYSENTRY_MODEL_REGISTRY", str(registry_dir))
    monkeypatch.setenv("PAYSENTRY_MODEL_SIGNING_KEY", MODEL_KEY)
    rules_dir = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules_dir)
    scores = sorted(d["explanation"]["models"]["model_score"] for d in _replay(simulated.path, tmp_path, None)
                    if d["explanation"].get("models", {}).get("model_score") is not None)  # fmt: skip
    threshold = scores[int(len(scores) * 0.98)]  # the top 2 % of payments by model_score
    (rules_dir / "model.rules.yaml").write_text(MODEL_RULE.format(threshold=threshold), encoding="utf-8")
    (tmp_path / "expected").mkdir()
    expected = _replay(simulated.path, tmp_path / "expected", rules_dir)
    assert sum(any(h["rule_id"] == "tree_holds" for h in d["rule_hits"]) for d in expected) >= 5

    stream_rig.produce(simulated.path)
    stream_rig.worker("w1", PAYSENTRY_MODEL_REGISTRY=str(registry_dir), PAYSENTRY_RULES_PATH=str(rules_dir))
    decisions = stream_rig.read("decisions", expect=len(expected))
    assert_same_decisions(decisions, expected)
    served = lambda ds: {d["event_id"]: d["explanation"].get("models", {}).get("model_score") for d in ds}  # noqa: E731
    assert served(decisions) == served(expected)
    released = [d for d in expected if d["event_type"] == "payment.released"]
    assert {d["explanation"]["models"]["model"] for d in released} == {"tree@v1"}
    stream_rig.stop_all()


def _replay(path: Path, workdir: Path, rules: Path | None) -> list[dict[str, Any]]:
    decisions = run_replay(path, workdir / "replay.jsonl", workdir / "replay.rejected", rules, quiet=True).decisions
    return [d.model_dump(mode="json") for d in decisions]
