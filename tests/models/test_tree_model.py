"""The exported tree ensemble scores exactly as scikit-learn does, with no scikit-learn at serving time;
a hostile tree table is refused with a reason before any model is built from it."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.tree_model import (
    MAX_DEPTH,
    MAX_NODES_PER_TREE,
    MAX_TREES,
    TreeEnsemble,
    TreeRefused,
    export_hist_gradient_boosting,
)
from tests.models.trees import NAMES, fitted_rows, small_tree_data

ROOT = Path(__file__).resolve().parents[2]


def as_inputs(row: np.ndarray) -> dict[str, float]:
    return {name: float(value) for name, value in zip(NAMES, row, strict=True)}


def test_probabilities_equal_predict_proba_on_missing_values_and_both_sides_of_every_threshold() -> None:
    classifier, x = fitted_rows()
    model = export_hist_gradient_boosting(classifier, NAMES)
    assert len(model.trees) == classifier.n_iter_ and model.inputs == tuple(NAMES)
    probes = [x[:300]]
    base = np.nanmedian(x, axis=0)
    for tree in model.trees[:20]:
        for feature, threshold in zip(tree.feature, tree.threshold, strict=True):
            if feature < 0:
                continue
            for value in (threshold, np.nextafter(threshold, math.inf), np.nextafter(threshold, -math.inf), np.nan):
                row = base.copy()
                row[feature] = value if math.isfinite(threshold) or math.isnan(value) else 1e308
                probes.append(row[None, :])
    rows = np.vstack(probes)
    assert np.isnan(rows).any(axis=1).sum() > 100
    expected = classifier.predict_proba(rows)[:, 1]
    got = np.array([model.score_one(as_inputs(row)) for row in rows])
    assert np.abs(got - expected).max() < 1e-9
    assert len({round(p, 6) for p in got}) > 20  # many distinct leaves reached, not one constant


def test_an_input_absent_from_a_payment_is_a_missing_value() -> None:
    classifier, x = fitted_rows()
    model = export_hist_gradient_boosting(classifier, NAMES)
    row = x[0].copy()
    row[1] = np.nan
    without = {name: value for name, value in as_inputs(row).items() if name != "ratio"}
    assert model.score_one(without) == model.score_one(as_inputs(row))
    assert abs(model.score_one(without) - classifier.predict_proba(row[None, :])[0, 1]) < 1e-9


def test_the_data_round_trips_and_an_infinite_threshold_sends_every_present_value_left() -> None:
    model = TreeEnsemble.from_data(small_tree_data())
    assert TreeEnsemble.from_data(model.to_data()).to_data() == model.to_data()
    sigmoid = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    assert model.score_one({"amount": 3.0, "hour": 21.0}) == pytest.approx(sigmoid(-1 - 2 + 1))
    assert model.score_one({"amount": 3.0000001}) == pytest.approx(sigmoid(-1 + 2 + 0.5))
    data = small_tree_data()
    data["trees"][0]["threshold"][0] = None
    data["trees"][0]["missing_left"][0] = False
    edge = TreeEnsemble.from_data(data)
    assert edge.score_one({"amount": 1e300, "hour": 0.0}) == pytest.approx(sigmoid(-1 - 2 + 0.5))
    assert edge.score_one({"hour": 0.0}) == pytest.approx(sigmoid(-1 + 2 + 0.5))


def test_the_evaluator_needs_no_scikit_learn() -> None:
    """The module a worker scores with imports nothing of scikit-learn (only exporting needs it)."""
    data = repr(small_tree_data())
    code = (
        f"import sys; from models.tree_model import TreeEnsemble; "
        f"p = TreeEnsemble.from_data({data}).score_one({{'amount': 1.0}}); "
        "assert 0 < p < 1 and not any(m.split('.')[0] == 'sklearn' for m in sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def deep_chain(depth: int) -> dict[str, Any]:
    """Each split's left child is a leaf and its right child the next split: `depth` splits deep."""
    feature, left, right = [], [], []
    for level in range(depth):
        split = 2 * level
        feature += [0, -1]
        left += [split + 1, 0]
        right += [split + 2, 0]
    feature.append(-1)
    left.append(0)
    right.append(0)
    size = len(feature)
    return {"feature": feature, "threshold": [0.0] * size, "left": left, "right": right,
            "missing_left": [False] * size, "value": [0.0] * size}  # fmt: skip


def breaking(change: Any) -> dict[str, Any]:
    data = small_tree_data()
    change(data, data["trees"][0])
    return data


HOSTILE = {
    "cycle to the root": (lambda d, t: t["left"].__setitem__(0, 0), "not a later node"),
    "child to itself": (lambda d, t: t["right"].__setitem__(0, 0), "not a later node"),
    "child out of the table": (lambda d, t: t["right"].__setitem__(0, 99), "not a later node"),
    "negative child": (lambda d, t: t["left"].__setitem__(0, -1), "not a later node"),
    "shared child": (lambda d, t: t["right"].__setitem__(0, 1), "exactly one parent"),
    "unreached node": (
        lambda d, t: [
            t[c].append(v)
            for c, v in (
                ("feature", -1),
                ("threshold", None),
                ("left", 0),
                ("right", 0),
                ("missing_left", False),
                ("value", 0.0),
            )
        ],
        "exactly one parent",
    ),
    "feature out of range": (lambda d, t: t["feature"].__setitem__(0, 2), "reads input 2"),
    "feature below -1": (lambda d, t: t["feature"].__setitem__(0, -5), "reads input -5"),
    "NaN threshold": (lambda d, t: t["threshold"].__setitem__(0, math.nan), "threshold must be a finite"),
    "infinite leaf value": (lambda d, t: t["value"].__setitem__(1, math.inf), "value must be a finite"),
    "text threshold": (lambda d, t: t["threshold"].__setitem__(0, "NaN"), "threshold must be a finite"),
    "NaN baseline": (lambda d, t: d.__setitem__("baseline", math.nan), "baseline"),
    "boolean child": (lambda d, t: t["left"].__setitem__(0, True), "left must be an integer"),
    "ragged columns": (lambda d, t: t["value"].pop(), "same 1 to"),
    "extra column": (lambda d, t: t.__setitem__("code", "__import__('os')"), "exactly the columns"),
    "extra field": (lambda d, t: d.__setitem__("pickle", "x"), "exactly the fields"),
    "unknown kind": (lambda d, t: d.__setitem__("kind", "xgboost"), "kind must be"),
    "no trees": (lambda d, t: d.__setitem__("trees", []), "1 to"),
    "too many trees": (lambda d, t: d.__setitem__("trees", d["trees"] * (MAX_TREES // 2 + 1)), "1 to 2000 trees"),
    "huge tree": (lambda d, t: d["trees"].__setitem__(0, deep_chain(MAX_NODES_PER_TREE // 2 + 1)), "same 1 to"),
    "too deep": (lambda d, t: d["trees"].__setitem__(0, deep_chain(MAX_DEPTH + 1)), "deeper than"),
    "duplicate inputs": (lambda d, t: d.__setitem__("inputs", ["amount", "amount"]), "unique"),
    "no inputs": (lambda d, t: d.__setitem__("inputs", []), "inputs must be"),
    "not a list": (lambda d, t: t.__setitem__("left", {"0": 1}), "every column is a list"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_tree_tables_are_refused_with_a_reason(name: str) -> None:
    change, reason = HOSTILE[name]
    with pytest.raises(TreeRefused, match=reason):
        TreeEnsemble.from_data(breaking(change))


def test_a_tree_exactly_at_the_depth_limit_is_accepted() -> None:
    data = small_tree_data()
    data["trees"][0] = deep_chain(MAX_DEPTH)
    assert 0 < TreeEnsemble.from_data(data).score_one({"amount": 1.0}) < 1


def test_only_binary_numeric_log_loss_classifiers_are_exported() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    classifier, x = fitted_rows(count=400)
    with pytest.raises(TreeRefused, match="feature names"):
        export_hist_gradient_boosting(classifier, NAMES[:3])
    with pytest.raises(TreeRefused, match="not fitted"):
        export_hist_gradient_boosting(HistGradientBoostingClassifier(), NAMES)
    three = HistGradientBoostingClassifier(max_iter=5).fit(np.nan_to_num(x), np.arange(len(x)) % 3)
    with pytest.raises(TreeRefused, match="binary"):
        export_hist_gradient_boosting(three, NAMES)
    categorical = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0])
    categorical.fit(np.c_[np.arange(len(x)) % 4, np.nan_to_num(x[:, 1:])], np.arange(len(x)) % 2)
    with pytest.raises(TreeRefused, match="categorical"):
        export_hist_gradient_boosting(categorical, NAMES)
    with pytest.raises(TreeRefused, match="HistGradientBoostingClassifier"):
        export_hist_gradient_boosting(object(), NAMES)
