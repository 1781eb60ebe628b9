"""The flat walk of the Half-Space Trees scores and learns exactly as river does (`models.flat_trees`)."""

from __future__ import annotations

import random

from river import anomaly, compose, preprocessing

from models.model_state import model_from_state, model_state
from models.scorer import CalibratedHalfSpaceTrees, model_inputs


def _payments(count: int, seed: int) -> list[dict[str, float]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        anomalous = rng.random() < 0.03
        rows.append(model_inputs({
            "amount_base": rng.lognormvariate(11 if anomalous else 7, 1.5),
            "amount_zscore_30d": rng.gauss(6 if anomalous else 0, 2),
            "amount_ratio_median_30d": rng.lognormvariate(0, 1),
            "hour_local": rng.randrange(24),
            "is_weekend": rng.random() < 0.2,
            "is_night": rng.random() < 0.1,
            "account_new_for_vendor": rng.random() < 0.05,
            "days_since_bank_change": rng.choice([None, rng.random() * 100]),
            "vendor_age_days": rng.random() * 300,
            "self_approved": rng.random() < 0.02,
            "amount_to_limit_ratio": rng.random() * 1.2,
            "vendor_count_24h": float(rng.randrange(5)),
            "account_shared": rng.random() < 0.01,
        }))  # fmt: skip
    return rows


def _river_pipeline(model: CalibratedHalfSpaceTrees) -> compose.Pipeline:
    params = model.params
    trees = anomaly.HalfSpaceTrees(
        n_trees=params["n_trees"], height=params["height"], window_size=params["window_size"], seed=params["seed"]
    )
    return compose.Pipeline(preprocessing.MinMaxScaler(), trees)


def test_scores_equal_rivers_through_several_windows() -> None:
    model = CalibratedHalfSpaceTrees(window_size=50, warmup=10)
    reference = _river_pipeline(model)
    scaler, trees = reference.steps.values()
    compared = 0
    for number, x in enumerate(_payments(700, seed=3)):
        expected = float(trees.score_one(scaler.transform_one(x)))
        assert abs(model.raw_score(x) - expected) <= 1e-12
        assert model.raw_score(x) == expected  # the same integer masses, summed in the same order
        compared += expected != 0.0
        if number % 3:  # learn most payments, score every one: scores between pivots and across them
            model.learn_one(x)
            scaler.learn_one(x)
            trees.learn_one(scaler.transform_one(x))
    assert compared > 500  # past the first window, scores are not the constant 0


def test_learning_leaves_rivers_state_unchanged() -> None:
    """What a snapshot stores (masses, counter, scaler bounds) is what river's own learning gives."""
    model = CalibratedHalfSpaceTrees(window_size=40, warmup=10)
    reference = _river_pipeline(model)
    scaler, trees = reference.steps.values()
    for x in _payments(230, seed=5):
        model.learn_one(x)
        scaler.learn_one(x)
        trees.learn_one(scaler.transform_one(x))
    ours = model_state(model)["trees"]
    own_scaler, own_trees = model.pipeline.steps.values()
    assert own_trees.counter == trees.counter == 230 % 40
    masses = [[(node.l_mass, node.r_mass) for node in tree.iter_dfs()] for tree in trees.trees]
    assert [[(node.l_mass, node.r_mass) for node in tree.iter_dfs()] for tree in own_trees.trees] == masses
    assert {k: v.get() for k, v in own_scaler.min.items()} == {k: v.get() for k, v in scaler.min.items()}
    assert ours["first_window"] is False


def test_restored_model_scores_as_the_saved_one() -> None:
    model = CalibratedHalfSpaceTrees(window_size=30, warmup=10)
    payments = _payments(200, seed=8)
    for x in payments[:130]:
        model.learn_one(x)
    restored = model_from_state(model_state(model))
    for x in payments[130:]:
        assert restored.raw_score(x) == model.raw_score(x)
        restored.learn_one(x)
        model.learn_one(x)


def test_an_input_without_a_split_feature_goes_through_river() -> None:
    model = CalibratedHalfSpaceTrees(window_size=20, warmup=5)
    payments = _payments(60, seed=11)
    for x in payments:
        model.learn_one(x)
    reference_scaler, reference_trees = model.pipeline.steps.values()
    partial = {name: value for name, value in payments[0].items() if name != "log_amount_base"}
    expected = float(reference_trees.score_one(reference_scaler.transform_one(partial)))
    assert model.raw_score(partial) == expected
    assert model.raw_score(payments[1]) == float(reference_trees.score_one(reference_scaler.transform_one(payments[1])))
