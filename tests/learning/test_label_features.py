"""Label features count a confirmed fraud from the moment its verdict is known, never earlier, for the
payment's vendor, payee account, company and creating user; the online learner learns from the same
verdicts; the promoted model's score reaches the rules."""

from __future__ import annotations

from typing import Any

from models.label_features import LABEL_FEATURES
from models.serving import Served, ServedModels
from models.supervised import LinearModel, OnlineLearner
from paysentry.contract import RuleHit
from paysentry.core import EmptyRuleset, Engine
from paysentry.feature_catalog import FEATURES
from paysentry.ports import RuleContext
from paysentry.replay import Replayer
from tests.builders import KEY, at, parse, raw, release


class Capturing(EmptyRuleset):
    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}

    def evaluate(self, ctx: RuleContext) -> tuple[list[RuleHit], list[RuleHit]]:
        self.seen[str(ctx.features["payment_id"])] = dict(ctx.features)
        return [], []


def label(payment_id: str, when: str, verdict: str = "fraud") -> dict[str, Any]:
    return raw("label.confirmed", when, payment_id=payment_id, verdict=verdict, typology="bank_change_bec")


def replay(events: list[dict[str, Any]], **engine_args: Any) -> tuple[Capturing, Replayer]:
    rules = Capturing()
    replayer = Replayer(Engine(rules, models=None, **engine_args), KEY)
    for event in sorted((parse(e) for e in events), key=lambda e: e.event_time):
        replayer.feed(event)
    return rules, replayer


def test_every_label_feature_is_in_the_catalog() -> None:
    assert set(LABEL_FEATURES) | {"model_score", "anomaly_score"} <= set(FEATURES)
    assert FEATURES["vendor_fraud_rate_30d"].kind == "number"


def test_a_label_counts_only_from_the_moment_it_is_known() -> None:
    events = [
        release("P1", at(0), vendor="V1", created_by="u-1"),
        label("P1", at(days=7)),  # confirmed a week later
        release("P2", at(days=7, hours=-1), vendor="V1", created_by="u-2"),  # an hour before the verdict
        release("P3", at(days=7, hours=1), vendor="V1", created_by="u-2"),  # an hour after
        release("P4", at(days=7, hours=2), vendor="V2", payee_account="999988887777", created_by="u-1"),
    ]
    seen = replay(events)[0].seen
    before, after, other = seen["P2"], seen["P3"], seen["P4"]
    assert before["vendor_fraud_count_30d"] == 0 and before["company_fraud_count_7d"] == 0
    assert after["vendor_fraud_count_7d"] == after["vendor_fraud_count_30d"] == 1
    assert after["account_fraud_count_30d"] == after["company_fraud_count_30d"] == 1
    assert after["creator_fraud_count_30d"] == 0  # u-2 did not create the fraud
    assert after["vendor_fraud_rate_30d"] == 1 / 2  # one fraud among P1 and P2 released in 30 days
    assert not other["vendor_fraud_count_30d"] and not other["account_fraud_count_30d"]  # None: a new vendor
    assert other["creator_fraud_count_30d"] == 1 and other["company_fraud_count_30d"] == 1


def test_labels_leave_the_windows_and_a_repeated_verdict_counts_once() -> None:
    events = [
        release("P1", at(0)),
        label("P1", at(days=1)),
        label("P1", at(days=2)),  # the same verdict again: counted once
        label("P1", at(days=3), verdict="legit"),  # a correction stops further counting, takes nothing back
        label("P1", at(days=4)),
        release("P2", at(days=5)),
        release("P3", at(days=9)),
        release("P4", at(days=40)),
    ]
    seen = replay(events)[0].seen
    assert (seen["P2"]["vendor_fraud_count_7d"], seen["P2"]["vendor_fraud_count_30d"]) == (1, 1)
    assert (seen["P3"]["vendor_fraud_count_7d"], seen["P3"]["vendor_fraud_count_30d"]) == (0, 1)
    assert seen["P4"]["vendor_fraud_count_30d"] == 0


def test_a_label_for_an_unknown_payment_counts_nowhere() -> None:
    seen = replay([label("NOPE", at(0)), release("P1", at(1))])[0].seen
    assert all(seen["P1"][name] in (0, None) for name in LABEL_FEATURES)


def test_the_learner_learns_each_release_from_its_verdict_or_the_horizon() -> None:
    learner = OnlineLearner(horizon=10 * 86400, warmup=1)
    events = [release("P1", at(0)), release("P2", at(1)), label("P1", at(days=7)), release("P3", at(days=12))]
    replay(events, learner=learner)
    assert (learner.learned, learner.frauds) == (2, 1)  # P1 from its verdict, P2 past the horizon
    assert list(learner.pending) == ["P3"]


def test_the_promoted_models_score_reaches_rules_and_names_the_version_in_the_explanation() -> None:
    model = LinearModel({"log_amount_base": (3.0, 1.0, 4.0)}, intercept=0.0)
    served = ServedModels.of([(0, Served("big@v1", model))])
    rules = Capturing()
    replayer = Replayer(Engine(rules, models=served), KEY)
    small, large = (replayer.feed(parse(release(p, at(i), amount=a)))[0]
                    for i, (p, a) in enumerate((("P1", "10.00"), ("P2", "90000.00"))))  # fmt: skip
    assert rules.seen["P1"]["model_score"] < 0.01 < 0.99 < rules.seen["P2"]["model_score"]
    assert large.explanation["models"]["model"] == "big@v1"
    assert large.explanation["models"]["model_score"] == round(rules.seen["P2"]["model_score"], 6)
    assert large.risk_score > small.risk_score
    assert Engine(Capturing(), models=None).process(parse(release("P9", at(3))), {}) is not None
