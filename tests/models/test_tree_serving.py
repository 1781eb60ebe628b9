"""A promoted tree ensemble's model_score decides in replay as a logistic regression's does: a rule on it
holds what it scores high, from the promotion's event time on; the scores replay serves are the exported
model's own."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from models.cli import model_app
from models.registry import DirectoryStore, ModelRegistry
from models.serving import Served, ServedModels
from models.supervised import LinearModel, supervised_inputs
from models.tree_model import TreeEnsemble
from paysentry.cli import run_replay
from paysentry.core import Engine
from paysentry.replay import Replayer
from tests.builders import KEY, at, parse, release
from tests.harness.model_rules import MODEL_RULE_ID, rulebook_with_model_rule
from tests.learning.cardlike import CardConfig, write
from tests.rules.helpers import one_rule, ruleset_from

MODEL_KEY = "tree-serving-signing-key-of-32-bytes"
# one split at amount 1,000 (log10(1001)): log-odds -3 below, +3 above; a missing amount counts as below
BIG_TREE = TreeEnsemble.from_data({
    "kind": "hgb", "inputs": ["log_amount_base"], "baseline": 0.0,
    "trees": [{"feature": [0, -1, -1], "threshold": [math.log10(1001), None, None], "left": [1, 0, 0],
               "right": [2, 0, 0], "missing_left": [True, False, False], "value": [0.0, -3.0, 3.0]}],
})  # fmt: skip
# the logistic regression of tests/learning/test_model_rules.py: 0.5 at 1,000, about 0.98 at 9,000
BIG_LINEAR = LinearModel({"log_amount_base": (3.0, 1.0, 4.0)}, intercept=0.0)
PAYMENTS = [("P0", at(0), "90000.00"), ("P1", at(2), "900.00"), ("P2", at(3), "9000.00"), ("P3", at(4), "90000.00")]


def actions_with(model: LinearModel | TreeEnsemble, tmp_path: Path) -> dict[str, tuple[str, float | None]]:
    ruleset = ruleset_from(tmp_path, one_rule("model_score >= 0.9 and amount_base > 1000", on="payment.released"))
    promoted_at = int(parse(release("X", at(1))).event_time.timestamp())
    replayer = Replayer(Engine(ruleset, models=ServedModels.of([(promoted_at, Served("big@v1", model))])), KEY)
    out: dict[str, tuple[str, float | None]] = {}
    for payment, when, amount in PAYMENTS:
        decision = replayer.feed(parse(release(payment, when, amount=amount)))[0]
        out[payment] = (decision.action, decision.explanation["models"]["model_score"])
    return out


@pytest.mark.parametrize("model", [BIG_TREE, BIG_LINEAR], ids=["tree", "logistic"])
def test_a_rule_on_model_score_holds_what_the_promoted_model_scores_high(model: Any, tmp_path: Path) -> None:
    decided = actions_with(model, tmp_path)
    # P0 comes before the promotion: no model_score, no hold; P1 is under both the score and the amount
    assert {p: action for p, (action, _) in decided.items()} == {"P0": "allow", "P1": "allow", "P2": "hold",
                                                                 "P3": "hold"}  # fmt: skip
    assert decided["P0"][1] is None and (decided["P1"][1] or 1) < 0.9 <= (decided["P3"][1] or 0)


def test_the_tree_scores_its_own_leaves(tmp_path: Path) -> None:
    decided = actions_with(BIG_TREE, tmp_path)
    sigmoid = lambda z: round(1 / (1 + math.exp(-z)), 6)  # noqa: E731
    assert [decided[p][1] for p in ("P1", "P2", "P3")] == [sigmoid(-3), sigmoid(3), sigmoid(3)]


def test_replay_with_a_tree_model_trained_and_promoted_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`model train --kind hgb` on a card-like stream, `model promote`, then `paysentry replay` with the
    registry and an active rule on model_score: every released payment is scored by the tree version, with
    exactly the exported model's score of the stream's own inputs, and the rule holds the top scores."""
    monkeypatch.setenv("PAYSENTRY_MODEL_SIGNING_KEY", MODEL_KEY)
    monkeypatch.setenv("PAYSENTRY_MODEL_REGISTRY", str(tmp_path / "registry"))
    events = write(CardConfig(weeks=3, payers=120, payees=30, compromised_payees_per_week=2), tmp_path / "card.jsonl")
    runner, audit = CliRunner(), ["--audit-log", str(tmp_path / "audit.jsonl")]
    for args in (["train", str(events), "--model-id", "card-hgb", "--kind", "hgb", "--max-iter", "40",
                  "--until", "2026-01-19", *audit],
                 ["promote", "card-hgb@v1", "--effective-from", "2026-01-01", *audit]):  # fmt: skip
        result = runner.invoke(model_app, args)
        assert result.exit_code == 0, result.output
    model = ModelRegistry(DirectoryStore(tmp_path / "registry"), MODEL_KEY.encode()).load("card-hgb", 1).model
    assert isinstance(model, TreeEnsemble)

    inputs: dict[str, dict[str, float]] = {}

    def sink(event_type: str, payment_id: str, features: dict[str, Any]) -> None:
        if event_type == "payment.released":
            inputs[payment_id] = supervised_inputs(features)

    (tmp_path / "plain").mkdir()
    plain = run_replay(events, tmp_path / "plain" / "d.jsonl", tmp_path / "plain" / "r", None, quiet=True,
                       engine=Engine(None, models=None, feature_sink=sink)).decisions  # fmt: skip
    assert len(inputs) == sum(d.event_type == "payment.released" for d in plain) > 500
    expected = sorted(model.score_one(x) for x in inputs.values())
    threshold = round(expected[int(len(expected) * 0.97)], 6)
    rules = rulebook_with_model_rule(tmp_path / "rules", threshold)
    (tmp_path / "served").mkdir()
    decisions = run_replay(events, tmp_path / "served" / "d.jsonl", tmp_path / "served" / "r", rules,
                           quiet=True).decisions  # fmt: skip
    released = [d for d in decisions if d.event_type == "payment.released"]
    assert {d.explanation["models"]["model"] for d in released} == {"card-hgb@v1"}
    for d in released:
        score = model.score_one(inputs[d.payment_id])
        assert d.explanation["models"]["model_score"] == round(score, 6)
        assert any(h.rule_id == MODEL_RULE_ID for h in d.rule_hits) == (score >= threshold)
    assert sum(any(h.rule_id == MODEL_RULE_ID for h in d.rule_hits) for d in released) >= 5
