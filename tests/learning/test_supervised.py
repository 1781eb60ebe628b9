"""The online learner keeps each released payment until its verdict arrives, at most `max_pending` of
them, and learns as legitimate what no verdict reached within the horizon; its frozen form scores
exactly as the online model does."""

from __future__ import annotations

import random

import pytest

from models.supervised import LinearModel, OnlineLearner, supervised_inputs
from paysentry.windows import DAY


def x(value: float) -> dict[str, float]:
    return {"a": value, "b": 1.0 - value}


def test_a_verdict_teaches_the_waiting_payment_with_its_label() -> None:
    learner = OnlineLearner(horizon=7 * DAY, warmup=1)
    learner.remember("p1", 0, x(0.9))
    learner.remember("p2", 10, x(0.1))
    assert learner.verdict("p1", "fraud", 20) and learner.verdict("p2", "legit", 30)
    assert (learner.learned, learner.frauds, learner.pending) == (2, 1, {})
    assert not learner.verdict("p1", "fraud", 40)  # already learnt: not twice
    learner.remember("p3", 50, x(0.5))
    assert not learner.verdict("p3", "error", 60) and learner.learned == 2  # an error verdict teaches nothing


def test_payments_past_the_horizon_are_learnt_as_legitimate() -> None:
    learner = OnlineLearner(horizon=7 * DAY, warmup=1)
    learner.remember("old", 0, x(0.9))
    learner.remember("new", 3 * DAY, x(0.9))
    assert learner.expire(7 * DAY - 1) == 0
    assert learner.expire(7 * DAY) == 1 and list(learner.pending) == ["new"]
    assert (learner.learned, learner.frauds) == (1, 0)
    assert not learner.verdict("old", "fraud", 8 * DAY)  # too late: it was learnt as legitimate
    assert learner.verdict("new", "fraud", 8 * DAY) and learner.frauds == 1


def test_the_pending_buffer_is_bounded() -> None:
    learner = OnlineLearner(horizon=365 * DAY, max_pending=100, warmup=1)
    for i in range(1000):
        learner.remember(f"p{i}", i, x(i % 7 / 7))
        assert len(learner.pending) <= 100
    assert learner.learned == 900 and next(iter(learner.pending)) == "p900"


def test_the_learner_scores_nothing_before_it_has_seen_a_fraud() -> None:
    learner = OnlineLearner(warmup=3)
    for _ in range(5):
        learner.learn_one(x(0.1), False)
    assert learner.learned == 5 and learner.score_one(x(0.9)) is None
    learner.learn_one(x(0.9), True)
    assert learner.score_one(x(0.9)) is not None


def test_the_frozen_model_scores_exactly_like_the_online_one_and_separates_the_classes() -> None:
    learner = OnlineLearner(warmup=10)
    rng = random.Random(3)
    for _ in range(3000):
        fraud = rng.random() < 0.05
        learner.learn_one({"a": rng.gauss(2.0 if fraud else 0.0, 1.0), "c": 5.0}, fraud)
    frozen = learner.freeze()
    for value in (-1.0, 0.0, 1.5, 3.0):
        online = learner.score_one({"a": value, "c": 5.0})
        assert online is not None and frozen.score_one({"a": value, "c": 5.0}) == pytest.approx(online, abs=1e-12)
    ranked = [frozen.score_one({"a": value}) for value in (3.0, 1.5, 0.0, -1.0)]
    assert ranked == sorted(ranked, reverse=True) and ranked[0] > 0.3 > 0.02 > ranked[-1]
    assert frozen.inputs["c"][2] == 0.0  # a constant input carries no weight, as online
    assert LinearModel(frozen.inputs, frozen.intercept).to_data() == frozen.to_data()


def test_the_forest_learner_cannot_be_frozen_and_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="only the logistic"):
        OnlineLearner("forest").freeze()
    with pytest.raises(ValueError, match="unknown learner"):
        OnlineLearner("svm")
    with pytest.raises(ValueError, match="positive"):
        OnlineLearner(horizon=0)


def test_supervised_inputs_are_bounded_and_never_read_the_anomaly_score() -> None:
    features = {"amount_base": 1e30, "vendor_fraud_count_30d": 1e12, "vendor_fraud_rate_30d": 7.0,
                "anomaly_score": 0.99, "creator_fraud_count_7d": 2.0}  # fmt: skip
    inputs = supervised_inputs(features)
    assert "anomaly_score" not in inputs
    assert inputs["vendor_fraud_rate"] == 1.0 and inputs["vendor_frauds_30d"] < 14
    assert inputs["creator_frauds_7d"] > 1.0 and inputs["account_frauds_30d"] == 0.0
    assert supervised_inputs(features) == inputs


def test_a_scikit_learn_logistic_regression_is_served_as_numbers() -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(4)
    features = rng.normal(size=(2000, 2)) * [1.0, 50.0] + [0.0, 100.0]
    truth = features[:, 0] + (features[:, 1] - 100) / 50 + rng.normal(size=2000) > 2
    scaler = StandardScaler().fit(features)
    fitted = LogisticRegression().fit(scaler.transform(features), truth)
    served = LinearModel.from_coefficients(["a", "b"], fitted.coef_[0], fitted.intercept_[0], scaler.mean_,
                                           scaler.scale_)  # fmt: skip
    expected = fitted.predict_proba(scaler.transform(features[:50]))[:, 1]
    got = [served.score_one({"a": float(a), "b": float(b)}) for a, b in features[:50]]
    assert got == pytest.approx(list(expected), abs=1e-9)
    with pytest.raises(ValueError, match="same length"):
        LinearModel.from_coefficients(["a"], [1.0, 2.0], 0.0)


def test_the_engines_learner_is_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from models.supervised import LearnerSettings
    from paysentry.core import Engine

    monkeypatch.setenv("PAYSENTRY_LEARNER_KIND", "forest")
    monkeypatch.setenv("PAYSENTRY_LEARNER_HORIZON", "30d")
    monkeypatch.setenv("PAYSENTRY_LEARNER_MAX_PENDING", "1000")
    learner = Engine(models=None).learner
    assert learner is not None and (learner.kind, learner.horizon, learner.max_pending) == ("forest", 30 * DAY, 1000)
    for name, value in [("HORIZON", "1h"), ("MAX_PENDING", "0"), ("KIND", "magic")]:
        monkeypatch.setenv(f"PAYSENTRY_LEARNER_{name}", value)
        with pytest.raises(ValidationError, match=name.lower()):
            LearnerSettings()
        monkeypatch.delenv(f"PAYSENTRY_LEARNER_{name}")
