"""Tree ensembles for the tests: a fitted scikit-learn classifier on rows with missing values, and a small
hand-made table to break."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

NAMES = ["amount", "ratio", "hour", "frauds", "rate"]


def fitted_rows(seed: int = 3, count: int = 2000) -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    """A classifier whose splits send missing values both ways (NaN in every column, some informative)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, len(NAMES)))
    x[rng.random(x.shape) < 0.15] = np.nan
    signal = np.nan_to_num(x[:, 0]) + 1.5 * np.isnan(x[:, 1]) + 0.5 * np.nan_to_num(x[:, 2]) ** 2
    y = signal + 0.5 * rng.normal(size=count) > 1.2
    classifier = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, random_state=0).fit(x, y)
    return classifier, x


def small_tree_data() -> dict[str, Any]:
    """p = sigmoid(-1 + (-2 if amount <= 3 else 2 + (0.5 if hour missing or <= 20 else 1))), two trees."""
    return copy.deepcopy({
        "kind": "hgb",
        "inputs": ["amount", "hour"],
        "baseline": -1.0,
        "trees": [
            {"feature": [0, -1, -1], "threshold": [3.0, None, None], "left": [1, 0, 0], "right": [2, 0, 0],
             "missing_left": [True, False, False], "value": [0.0, -2.0, 2.0]},
            {"feature": [1, -1, -1], "threshold": [20.0, None, None], "left": [1, 0, 0], "right": [2, 0, 0],
             "missing_left": [True, False, False], "value": [0.0, 0.5, 1.0]},
        ],
    })  # fmt: skip
