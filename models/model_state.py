"""The online model's state as plain data (JSON-ready dicts, lists, numbers and strings), and back.

A snapshot must never be able to run code when it is loaded, so the model is not pickled: what it has
learnt is written out field by field (the scaler's running minima and maxima, the node masses and splits
of every Half-Space Tree, the calibration window) and read back by rebuilding a fresh model and filling
those fields in. The reader checks the type and range of every value and the size of every collection
before it builds anything, so a crafted snapshot can at worst be refused (`StateRefused`).
"""

from __future__ import annotations

import math
from typing import Any

from river.tree.padded import PaddedBranch, PaddedLeaf

from models.scorer import CalibratedHalfSpaceTrees

FORMAT = 1
# Bounds of what a snapshot may ask the reader to build (the defaults are 25 trees of height 8).
_PARAM_RANGES: dict[str, tuple[int, int]] = {
    "n_trees": (1, 1000),
    "height": (1, 16),
    "window_size": (1, 10_000_000),
    "seed": (-(2**63), 2**63 - 1),
    "warmup": (0, 10**12),
    "calibration_window": (1, 1_000_000),
}
MAX_NODES = 4_000_000  # all trees together
MAX_FEATURES = 1000
MAX_NAME = 200
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


class StateRefused(ValueError):
    """The data does not describe a model this code can rebuild."""


# -- writing ---------------------------------------------------------------------------------------
def _number(value: float) -> float | str:
    """JSON has no infinities (a scaler holds one for a feature it has not learnt yet)."""
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def model_state(model: CalibratedHalfSpaceTrees) -> dict[str, Any]:
    scaler, trees = model.pipeline.steps.values()
    branches = [node for tree in trees.trees for node in tree.iter_dfs() if isinstance(node, PaddedBranch)]
    features = sorted({node.feature for node in branches})
    index = {name: i for i, name in enumerate(features)}

    def nodes(tree: Any) -> list[list[float | str]]:
        out: list[list[float | str]] = []

        def visit(node: Any) -> None:  # pre-order; the shape is implied (a full tree of `height`)
            if isinstance(node, PaddedBranch):
                out.append([index[node.feature], _number(node.threshold), node.l_mass, node.r_mass])
                visit(node.children[0])
                visit(node.children[1])
            else:
                out.append([node.l_mass, node.r_mass])

        visit(tree)
        return out

    return {
        "format": FORMAT,
        "params": dict(model.params),
        "learned": model.learned,
        "recent": [_number(score) for score in model._recent],
        "scaler": {
            "min": {name: _number(stat.get()) for name, stat in scaler.min.items()},
            "max": {name: _number(stat.get()) for name, stat in scaler.max.items()},
        },
        "trees": {
            "counter": trees.counter,
            "first_window": trees._first_window,
            "features": features,
            "nodes": [nodes(tree) for tree in trees.trees],
        },
    }


# -- reading ---------------------------------------------------------------------------------------
def _fail(where: str, what: str) -> StateRefused:
    return StateRefused(f"model state: {where}: {what}")


def _dict(value: Any, where: str, keys: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "expected an object")
    if keys is not None and set(value) != keys:
        raise _fail(where, f"expected the fields {', '.join(sorted(keys))}")
    return value


def _list(value: Any, where: str, max_len: int) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, "expected a list")
    if len(value) > max_len:
        raise _fail(where, f"more than {max_len} items")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _fail(where, f"expected an integer in [{low}, {high}]")
    return value


def _float(value: Any, where: str) -> float:
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if type(value) not in (int, float):
        raise _fail(where, "expected a number")
    return float(value)


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise _fail(where, f"expected a name of 1 to {MAX_NAME} characters")
    return value


def _floats_by_name(value: Any, where: str) -> dict[str, float]:
    data = _dict(value, where)
    if len(data) > MAX_FEATURES:
        raise _fail(where, f"more than {MAX_FEATURES} features")
    return {_name(k, where): _float(v, f"{where}.{k}") for k, v in data.items()}


def _tree(rows: Any, where: str, height: int, features: list[str]) -> PaddedBranch | PaddedLeaf:
    size = 2 ** (height + 1) - 1
    rows = _list(rows, where, size)
    if len(rows) != size:
        raise _fail(where, f"expected {size} nodes for height {height}")
    position = 0

    def build(depth: int) -> PaddedBranch | PaddedLeaf:  # recursion depth is bounded by `height`
        nonlocal position
        row, at = rows[position], f"{where}[{position}]"
        position += 1
        if depth == height:
            leaf = _list(row, at, 2)
            if len(leaf) != 2:
                raise _fail(at, "expected [l_mass, r_mass]")
            return PaddedLeaf(l_mass=_int(leaf[0], at, 0, 2**62), r_mass=_int(leaf[1], at, 0, 2**62))
        branch = _list(row, at, 4)
        if len(branch) != 4:
            raise _fail(at, "expected [feature, threshold, l_mass, r_mass]")
        feature = features[_int(branch[0], at, 0, len(features) - 1)]
        threshold = _float(branch[1], at)
        l_mass, r_mass = _int(branch[2], at, 0, 2**62), _int(branch[3], at, 0, 2**62)
        left = build(depth + 1)
        right = build(depth + 1)
        return PaddedBranch(left=left, right=right, feature=feature, threshold=threshold, l_mass=l_mass, r_mass=r_mass)

    return build(0)


def model_from_state(data: Any) -> CalibratedHalfSpaceTrees:
    """Rebuild a model from `model_state`'s output; StateRefused on anything else."""
    data = _dict(data, "top", {"format", "params", "learned", "recent", "scaler", "trees"})
    if data["format"] != FORMAT:
        raise _fail("format", f"expected {FORMAT}")
    raw_params = _dict(data["params"], "params", set(_PARAM_RANGES))
    params = {name: _int(raw_params[name], f"params.{name}", *_PARAM_RANGES[name]) for name in _PARAM_RANGES}
    saved_trees = _dict(data["trees"], "trees", {"counter", "first_window", "features", "nodes"})
    tree_rows = _list(saved_trees["nodes"], "trees.nodes", params["n_trees"])
    if tree_rows and len(tree_rows) != params["n_trees"]:
        raise _fail("trees.nodes", f"expected {params['n_trees']} trees (or none before the first payment)")
    if len(tree_rows) * (2 ** (params["height"] + 1) - 1) > MAX_NODES:
        raise _fail("trees.nodes", f"more than {MAX_NODES} nodes")
    features = [_name(f, "trees.features") for f in _list(saved_trees["features"], "trees.features", MAX_FEATURES)]
    if tree_rows and not features:
        raise _fail("trees.features", "trees need at least one feature")
    first_window = saved_trees["first_window"]
    if not isinstance(first_window, bool):
        raise _fail("trees.first_window", "expected true or false")
    recent = [_float(v, "recent") for v in _list(data["recent"], "recent", params["calibration_window"])]
    scaler_data = _dict(data["scaler"], "scaler", {"min", "max"})

    model = CalibratedHalfSpaceTrees(**params)
    model.learned = _int(data["learned"], "learned", 0, 2**62)
    model._recent.extend(recent)
    model._sorted = sorted(recent)
    scaler, trees = model.pipeline.steps.values()
    for name, value in _floats_by_name(scaler_data["min"], "scaler.min").items():
        scaler.min[name].update(value)
    for name, value in _floats_by_name(scaler_data["max"], "scaler.max").items():
        scaler.max[name].update(value)
    # The trees' random generator only draws when the trees are first built, so a restored model with
    # trees never uses it, and one without trees starts from the seed, as the saved one would have.
    trees.trees = [_tree(rows, f"trees.nodes[{i}]", params["height"], features) for i, rows in enumerate(tree_rows)]
    trees._tree_nodes = [list(tree.iter_dfs()) for tree in trees.trees]
    trees.counter = _int(saved_trees["counter"], "trees.counter", 0, params["window_size"] - 1)
    trees._first_window = first_window
    return model
