"""A risk team's rule on the promoted model's score holds payments in replay exactly as written, and the
shipped shadow rule on model_score loads with the default rulebook."""

from __future__ import annotations

from pathlib import Path

from models.serving import Served, ServedModels
from models.supervised import LinearModel
from paysentry.core import Engine
from paysentry.replay import Replayer
from rules.loader import DEFAULT_RULES_DIR, load_ruleset
from tests.builders import KEY, at, parse, release
from tests.rules.helpers import one_rule, ruleset_from

# p = sigmoid(4 * (log10(amount + 1) - 3)): 0.5 at about 1,000; above 0.9 from about 1,800
BIG = LinearModel({"log_amount_base": (3.0, 1.0, 4.0)}, intercept=0.0)


def test_a_rule_on_model_score_holds_what_the_promoted_model_scores_high(tmp_path: Path) -> None:
    ruleset = ruleset_from(tmp_path, one_rule("model_score >= 0.9 and amount_base > 1000", on="payment.released"))
    served = ServedModels.of([(int(parse(release("X", at(1))).event_time.timestamp()), Served("big@v1", BIG))])
    replayer = Replayer(Engine(ruleset, models=served), KEY)
    payments = [("P0", at(0), "90000.00"), ("P1", at(2), "900.00"), ("P2", at(3), "1500.00"),
                ("P3", at(4), "90000.00")]  # fmt: skip
    actions = {p: replayer.feed(parse(release(p, when, amount=a)))[0].action for p, when, a in payments}
    # P0 comes before the model's promotion: no model_score, no hold
    assert actions == {"P0": "allow", "P1": "allow", "P2": "allow", "P3": "hold"}


def test_without_a_promoted_model_the_rule_never_fires(tmp_path: Path) -> None:
    ruleset = ruleset_from(tmp_path, one_rule("model_score >= 0.9", on="payment.released"))
    replayer = Replayer(Engine(ruleset, models=None), KEY)
    assert replayer.feed(parse(release("P1", at(0), amount="90000.00")))[0].action == "allow"


def test_the_default_rulebook_ships_the_model_rule_in_shadow() -> None:
    ruleset = load_ruleset(DEFAULT_RULES_DIR)
    rule = next(r for r in ruleset.rules if r.id == "model_score_high")
    assert rule.status == "shadow"
    replayer = Replayer(Engine(ruleset, models=ServedModels.of([(0, Served("big@v1", BIG))])), KEY)
    decision = replayer.feed(parse(release("P1", at(0), amount="90000.00")))[0]
    assert [h.rule_id for h in decision.shadow_hits] == ["model_score_high"]
    assert "model_score_high" not in {h.rule_id for h in decision.rule_hits}  # shadow: it does not act
    assert decision.explanation["models"]["model"] == "big@v1"
