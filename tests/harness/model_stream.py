"""On a real broker: a worker serving a promoted model decides and scores the simulated stream exactly as
`paysentry replay` does with the same registry. Shared by the stream's end-to-end tests and the model
tests (each brings its own model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from models.registry import DirectoryStore, ModelRegistry
from paysentry.cli import run_replay
from tests.harness.model_rules import MODEL_RULE_ID, rulebook_with_model_rule
from tests.stream.conftest import MODEL_KEY, Simulated, StreamRig, assert_same_decisions


def replay_decisions(events: Path, workdir: Path, rules: Path | None) -> list[dict[str, Any]]:
    """`paysentry replay` of `events` with `rules` (None: the default rulebook), its outputs in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    decisions = run_replay(events, workdir / "replay.jsonl", workdir / "replay.rejected", rules, quiet=True).decisions
    return [d.model_dump(mode="json") for d in decisions]


def worker_decisions(rig: StreamRig, events: Path, expect: int, **env: str) -> list[dict[str, Any]]:
    """Produce `events`, start worker w1 (with `env` on top of the rig's) and read `expect` decisions."""
    rig.produce(events)
    rig.worker("w1", **env)
    return rig.read("decisions", expect=expect)


def model_score(decision: dict[str, Any]) -> float | None:
    return decision["explanation"].get("models", {}).get("model_score")


def assert_worker_serves_promoted_model_as_replay(
    model: Any, model_id: str, rig: StreamRig, simulated: Simulated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Register `model` as `model_id` v1, promoted from the start, and hold the top 2 % of payments by its
    model_score with an active rule: the worker decides as replay does, serves the same model_score
    for every event, and every released payment is scored by that version."""
    registry_dir = tmp_path / "models"
    registry = ModelRegistry(DirectoryStore(registry_dir), MODEL_KEY.encode())
    registry.register(model, model_id=model_id, by="test")
    registry.promote(model_id, 1, by="test", effective_from=0)
    monkeypatch.setenv("PAYSENTRY_MODEL_REGISTRY", str(registry_dir))
    monkeypatch.setenv("PAYSENTRY_MODEL_SIGNING_KEY", MODEL_KEY)
    plain = replay_decisions(simulated.path, tmp_path / "plain", None)
    scores = sorted(score for d in plain if (score := model_score(d)) is not None)
    rules_dir = rulebook_with_model_rule(tmp_path / "rules", scores[int(len(scores) * 0.98)])
    expected = replay_decisions(simulated.path, tmp_path / "expected", rules_dir)
    assert sum(any(h["rule_id"] == MODEL_RULE_ID for h in d["rule_hits"]) for d in expected) >= 5

    env = {"PAYSENTRY_MODEL_REGISTRY": str(registry_dir), "PAYSENTRY_RULES_PATH": str(rules_dir)}
    decisions = worker_decisions(rig, simulated.path, len(expected), **env)
    assert_same_decisions(decisions, expected)
    served = lambda ds: {d["event_id"]: model_score(d) for d in ds}  # noqa: E731
    assert served(decisions) == served(expected)
    released = [d for d in expected if d["event_type"] == "payment.released"]
    assert {d["explanation"]["models"]["model"] for d in released} == {f"{model_id}@v1"}
    rig.stop_all()
