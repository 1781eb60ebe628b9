"""A frozen gradient-boosted tree ensemble: plain node tables and a pure-Python evaluator.

A binary `HistGradientBoostingClassifier` trained offline (on rows of `supervised_inputs`) predicts
p = sigmoid(baseline + sum over trees of the value of the leaf the payment reaches). `TreeEnsemble` holds
exactly that: the input names in order, the baseline, and per tree its node table in columns:

- `feature`: the input index a split reads, or -1 for a leaf;
- `threshold`: a value goes left when `value <= threshold`; None means +infinity (every present value goes
  left, only a missing one may go right);
- `left`, `right`: child node indexes (0 on a leaf);
- `missing_left`: where a missing value (absent from the inputs, or NaN) goes;
- `value`: the leaf's contribution to the log-odds (kept as 0.0 on splits).

Categorical splits are refused when exporting: every input of the supervised model is numeric.

A table is checked before a model is built from it (`TreeEnsemble.from_data`): sizes (trees, nodes per tree,
all nodes, depth), finite numbers, input indexes in range, and that every node but the root has exactly one
parent that comes before it, so no table can loop or share subtrees. Scoring is then a bounded walk per
tree. Nothing here imports scikit-learn: it is needed only to export (`export_hist_gradient_boosting`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

MAX_TREES = 2000
MAX_NODES_PER_TREE = 8191
MAX_TOTAL_NODES = 400_000
MAX_DEPTH = 64
MAX_TREE_INPUTS = 1000
_COLUMNS = ("feature", "threshold", "left", "right", "missing_left", "value")


def _logistic(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class TreeRefused(ValueError):
    """A tree table that is malformed, too large or too deep to be served."""


@dataclass(frozen=True, slots=True)
class Tree:
    feature: tuple[int, ...]
    threshold: tuple[float, ...]  # math.inf where the data says None
    left: tuple[int, ...]
    right: tuple[int, ...]
    missing_left: tuple[bool, ...]
    value: tuple[float, ...]
    # The walk reads nested tuples (input index, threshold, left, right, missing, leaf value): a few times
    # faster in Python than indexing six columns. Built from the last node back, as children come later.
    root: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        built: list[tuple[Any, ...]] = [()] * len(self.feature)
        for node in range(len(self.feature) - 1, -1, -1):
            index = self.feature[node]
            if index < 0:
                built[node] = (-1, 0.0, None, None, None, self.value[node])
            else:
                left, right = built[self.left[node]], built[self.right[node]]
                built[node] = (index, self.threshold[node], left, right, left if self.missing_left[node] else right,
                               0.0)  # fmt: skip
        object.__setattr__(self, "root", built[0])

    def leaf_value(self, values: Sequence[float]) -> float:
        node = self.root
        while node[0] >= 0:
            x = values[node[0]]
            if x <= node[1]:
                node = node[2]
            elif x > node[1]:
                node = node[3]
            else:  # NaN, a missing value: neither comparison holds
                node = node[4]
        return float(node[5])

    def to_data(self) -> dict[str, list[Any]]:
        return {"feature": list(self.feature), "threshold": [None if math.isinf(t) else t for t in self.threshold],
                "left": list(self.left), "right": list(self.right), "missing_left": list(self.missing_left),
                "value": list(self.value)}  # fmt: skip


class TreeEnsemble:
    """A frozen boosted tree ensemble over named inputs: p = sigmoid(baseline + sum of leaf values).

    A named input missing from a payment's inputs is a missing value (the direction each split learnt)."""

    kind: Literal["hgb"] = "hgb"

    def __init__(self, inputs: Sequence[str], baseline: float, trees: Sequence[Tree]):
        self.inputs = tuple(inputs)
        self.baseline = float(baseline)
        self.trees = tuple(trees)

    def raw_score(self, x: dict[str, float]) -> float:
        nan = math.nan
        values = [float(v) if (v := x.get(name)) is not None else nan for name in self.inputs]
        z = self.baseline
        for tree in self.trees:
            z += tree.leaf_value(values)
        return z

    def score_one(self, x: dict[str, float]) -> float:
        return _logistic(self.raw_score(x))

    def predict_proba_one(self, x: dict[str, float]) -> dict[bool, float]:
        p = self.score_one(x)
        return {False: 1.0 - p, True: p}

    @property
    def node_count(self) -> int:
        return sum(len(tree.feature) for tree in self.trees)

    def to_data(self) -> dict[str, Any]:
        return {"kind": self.kind, "inputs": list(self.inputs), "baseline": self.baseline,
                "trees": [tree.to_data() for tree in self.trees]}  # fmt: skip

    @classmethod
    def from_data(cls, data: Any) -> TreeEnsemble:
        """Build from `to_data()` output, checking everything first; TreeRefused names what is wrong."""
        if not isinstance(data, dict) or set(data) != {"kind", "inputs", "baseline", "trees"}:
            raise TreeRefused("a tree model has exactly the fields kind, inputs, baseline, trees")
        if data["kind"] != cls.kind:
            raise TreeRefused(f"kind must be {cls.kind!r}")
        inputs = _inputs(data["inputs"])
        baseline = _finite(data["baseline"], "baseline")
        trees_data = data["trees"]
        if not isinstance(trees_data, list) or not 0 < len(trees_data) <= MAX_TREES:
            raise TreeRefused(f"trees must be a list of 1 to {MAX_TREES} trees")
        trees, total = [], 0
        for number, tree_data in enumerate(trees_data):
            tree = _tree(tree_data, len(inputs), f"tree {number}")
            total += len(tree.feature)
            if total > MAX_TOTAL_NODES:
                raise TreeRefused(f"more than {MAX_TOTAL_NODES} nodes in all")
            trees.append(tree)
        return cls(inputs, baseline, trees)


def _inputs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_TREE_INPUTS:
        raise TreeRefused(f"inputs must be a list of 1 to {MAX_TREE_INPUTS} names")
    if not all(isinstance(name, str) and 0 < len(name) <= 200 for name in value):
        raise TreeRefused("input names are strings of 1-200 characters")
    if len(set(value)) != len(value):
        raise TreeRefused("input names must be unique")
    return tuple(value)


def _finite(value: Any, what: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise TreeRefused(f"{what} must be a finite number")
    return float(value)


def _index(value: Any, what: str) -> int:
    if type(value) is not int:
        raise TreeRefused(f"{what} must be an integer")
    return value


def _tree(data: Any, input_count: int, where: str) -> Tree:
    if not isinstance(data, dict) or set(data) != set(_COLUMNS):
        raise TreeRefused(f"{where}: a tree has exactly the columns {', '.join(_COLUMNS)}")
    columns = [data[name] for name in _COLUMNS]
    if not all(isinstance(column, list) for column in columns):
        raise TreeRefused(f"{where}: every column is a list")
    size = len(columns[0])
    if not 0 < size <= MAX_NODES_PER_TREE or any(len(column) != size for column in columns):
        raise TreeRefused(f"{where}: columns must all hold the same 1 to {MAX_NODES_PER_TREE} nodes")
    feature = tuple(_index(f, f"{where}: feature") for f in data["feature"])
    left = tuple(_index(i, f"{where}: left") for i in data["left"])
    right = tuple(_index(i, f"{where}: right") for i in data["right"])
    value = tuple(_finite(v, f"{where}: value") for v in data["value"])
    threshold = tuple(math.inf if t is None else _finite(t, f"{where}: threshold") for t in data["threshold"])
    if not all(type(m) is bool for m in data["missing_left"]):
        raise TreeRefused(f"{where}: missing_left must be true or false")
    parents = [0] * size
    depth = [0] * size
    for node in range(size):
        if feature[node] == -1:
            continue
        if not 0 <= feature[node] < input_count:
            raise TreeRefused(f"{where}: node {node} reads input {feature[node]}, not one of the {input_count}")
        for child in (left[node], right[node]):
            # children come after their parent: no cycle is possible, and the walk is at most `size` steps
            if not node < child < size:
                raise TreeRefused(f"{where}: node {node} has child {child}, not a later node of the tree")
            parents[child] += 1
            depth[child] = depth[node] + 1
            if depth[child] > MAX_DEPTH:
                raise TreeRefused(f"{where}: deeper than {MAX_DEPTH}")
    if any(count != 1 for count in parents[1:]):
        raise TreeRefused(f"{where}: every node but the root must have exactly one parent")
    return Tree(feature, threshold, left, right, tuple(data["missing_left"]), value)


def export_hist_gradient_boosting(classifier: Any, feature_names: Sequence[str]) -> TreeEnsemble:
    """Freeze a fitted binary `HistGradientBoostingClassifier` (log loss, numeric inputs) trained on
    columns `feature_names`, in that order (the names of `supervised_inputs`, so the engine can serve it).

    scikit-learn exposes no public view of the fitted trees, so this reads its node records (`_predictors`,
    `_baseline_prediction`, checked here against their expected layout); a layout it does not recognise is
    refused rather than guessed. The result scores like `predict_proba(X)[:, 1]`."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if not isinstance(classifier, HistGradientBoostingClassifier):
        raise TreeRefused("expected a fitted sklearn.ensemble.HistGradientBoostingClassifier")
    predictors = getattr(classifier, "_predictors", None)
    baseline = getattr(classifier, "_baseline_prediction", None)
    if not predictors or baseline is None:
        raise TreeRefused("the classifier is not fitted (or this scikit-learn keeps its trees elsewhere)")
    classes = list(getattr(classifier, "classes_", []))
    if len(classes) != 2 or classifier.n_trees_per_iteration_ != 1 or classifier.loss != "log_loss":
        raise TreeRefused("only a binary classifier with log loss can be exported")
    if bool(classes[0]) or not bool(classes[1]):
        raise TreeRefused(f"the classes must be legitimate then fraud (0/1 or False/True), not {classes}")
    names = [str(name) for name in feature_names]
    if len(names) != classifier.n_features_in_:
        raise TreeRefused(f"{len(names)} feature names for a classifier fitted on {classifier.n_features_in_}")
    fitted_names = getattr(classifier, "feature_names_in_", None)
    if fitted_names is not None and [str(n) for n in fitted_names] != names:
        raise TreeRefused("feature_names differ from the columns the classifier was fitted on")
    if classifier.is_categorical_ is not None and any(classifier.is_categorical_):
        raise TreeRefused("categorical features are not supported: encode them as numbers")
    trees = [_exported_tree(iteration[0].nodes) for iteration in predictors]
    model = TreeEnsemble(names, float(baseline.ravel()[0]), trees)
    return TreeEnsemble.from_data(model.to_data())  # the same checks as a model read from the registry


def _exported_tree(nodes: Any) -> Tree:
    fields = set(nodes.dtype.names or ())
    needed = {"value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf",
              "is_categorical"}  # fmt: skip
    if not needed <= fields:
        raise TreeRefused(f"unexpected node layout in this scikit-learn: missing {sorted(needed - fields)}")
    if nodes["is_categorical"].any():
        raise TreeRefused("a categorical split cannot be exported")
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for node in nodes:
        leaf = bool(node["is_leaf"])
        columns["feature"].append(-1 if leaf else int(node["feature_idx"]))
        columns["threshold"].append(math.inf if leaf else float(node["num_threshold"]))
        columns["left"].append(0 if leaf else int(node["left"]))
        columns["right"].append(0 if leaf else int(node["right"]))
        columns["missing_left"].append(not leaf and bool(node["missing_go_to_left"]))
        columns["value"].append(float(node["value"]) if leaf else 0.0)
    return Tree(*(tuple(columns[name]) for name in _COLUMNS))
