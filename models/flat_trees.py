"""A flat walk of river's Half-Space Trees behind its min-max scaler: the same numbers, fewer objects.

River keeps each tree as linked node objects and scales `x` into a new dict before every walk; a
payment's score walks 25 trees of height 8 that way. `FlatWalk` reads the same river objects (they stay
the model's state: snapshots, `models.model_state`) through tables built once per tree: the nodes in
heap order (children of node i at 2i+1 and 2i+2), each with its feature's position in `x` and its
threshold. Thresholds never change; the reference masses (`r_mass`) change only when a window of
learning ends, so their table is rebuilt then. Learning still increments each node's `l_mass` on the
river objects, so river's own `score_one`/`learn_one` and a snapshot see exactly what they would have.

Scores are river's to the bit: the same integer masses summed in the same order. An `x` whose names
differ from what the tables were built for (or that lacks a feature a tree splits on) goes through
river itself.
"""

from __future__ import annotations

from typing import Any

_STOP = (-1, 0.0)
# Per tree, between two pivots: for each node in heap order, the split to take from it (`_STOP` where
# river's walk ends: a leaf, or a reference mass under the size limit), and the score a walk has summed
# on reaching it (the masses times two to the depth along the path, node included).
_ScoringTable = tuple[list[tuple[int, float]], list[float]]


class FlatWalk:
    """Scores and learns one `x` through `scaler` (river MinMaxScaler) and `trees` (river HalfSpaceTrees)."""

    def __init__(self, scaler: Any, trees: Any) -> None:
        self.scaler = scaler
        self.trees = trees
        self._names: tuple[str, ...] = ()  # the key order of `x` the tables below are built for
        self._scale: tuple[list[float], list[float]] | None = None  # per name: min, max - min; until a learn
        self._built_for: list[Any] | None = None  # the river tree list the tables describe
        self._splits: list[list[tuple[int, float]]] = []  # per tree and branch: (feature position, threshold)
        self._nodes: list[list[Any]] = []  # per tree: the river node objects in heap order
        self._scoring: list[_ScoringTable] | None = None  # per tree, until the reference masses change

    # -- scaling ---------------------------------------------------------------------------------
    def _scaled(self, x: dict[str, float]) -> list[float]:
        names = tuple(x)
        if names != self._names:
            self._names, self._scale, self._built_for = names, None, None
        scale = self._scale
        if scale is None:
            # Indexing the scaler's defaultdicts as river's transform_one does (it creates a statistic
            # for a name it has not learnt yet), so the scaler's state is the same either way.
            lows = [self.scaler.min[name].get() for name in names]
            spans = [self.scaler.max[name].get() - low for name, low in zip(names, lows, strict=True)]
            scale = self._scale = (lows, spans)
        lows, spans = scale
        return [(value - low) / span if span else 0.0 for value, low, span in zip(x.values(), lows, spans, strict=True)]

    # -- tables ---------------------------------------------------------------------------------
    def _tables_ready(self) -> bool:
        trees = self.trees.trees
        if not trees:
            return False
        if self._built_for is not trees:
            position = {name: i for i, name in enumerate(self._names)}
            splits, nodes = [], []
            for root in trees:
                ordered = _heap_order(root, self.trees.height)
                branches = ordered[: len(ordered) // 2]
                if any(node.feature not in position for node in branches):
                    self._built_for = None
                    return False  # a feature is missing from x: river's walk handles that
                splits.append([(position[node.feature], node.threshold) for node in branches])
                nodes.append(ordered)
            self._splits, self._nodes, self._scoring, self._built_for = splits, nodes, None, trees
        if self._scoring is None:
            size_limit = 0.1 * self.trees.window_size
            pairs = zip(self._splits, self._nodes, strict=True)
            self._scoring = [_scoring_table(splits, ordered, size_limit) for splits, ordered in pairs]
        return True

    # -- the model -------------------------------------------------------------------------------
    def score(self, x: dict[str, float]) -> float:
        """`float(trees.score_one(scaler.transform_one(x)))`."""
        trees = self.trees
        scaled = self._scaled(x)
        if trees._first_window:
            return 0.0
        if not self._tables_ready():
            return float(trees.score_one(self.scaler.transform_one(x)))
        assert self._scoring is not None
        total = 0.0
        for steps, reached in self._scoring:
            node = 0
            while True:
                feature, threshold = steps[node]
                if feature < 0:
                    break
                node = 2 * node + 1 if scaled[feature] < threshold else 2 * node + 2
            total += reached[node]
        return float(1 - total / trees._max_score)

    def learn(self, x: dict[str, float]) -> None:
        """`scaler.learn_one(x)`, then `trees.learn_one(scaler.transform_one(x))`."""
        self.scaler.learn_one(x)
        self._scale = None  # the scaler's bounds moved
        trees = self.trees
        scaled = self._scaled(x)
        if not self._tables_ready():
            trees.learn_one(self.scaler.transform_one(x))  # builds the trees on the first x, too
            self._scoring = None
            return
        height = trees.height
        for splits, ordered in zip(self._splits, self._nodes, strict=True):
            node = 0
            for _ in range(height):
                ordered[node].l_mass += 1
                feature, threshold = splits[node]
                node = 2 * node + 1 if scaled[feature] < threshold else 2 * node + 2
            ordered[node].l_mass += 1
        trees.counter += 1
        if trees.counter == trees.window_size:  # river's pivot: the window just learnt becomes the reference
            for ordered in self._nodes:
                for river_node in ordered:
                    river_node.r_mass = river_node.l_mass
                    river_node.l_mass = 0
            trees._first_window = False
            trees.counter = 0
            self._scoring = None


def _heap_order(root: Any, height: int) -> list[Any]:
    """The nodes of a full tree of `height`, level by level (node i's children at 2i+1 and 2i+2)."""
    level, ordered = [root], [root]
    for _ in range(height):
        level = [child for node in level for child in node.children]
        ordered.extend(level)
    return ordered


def _scoring_table(splits: list[tuple[int, float]], ordered: list[Any], size_limit: float) -> _ScoringTable:
    """River's `_walk_score` unrolled into a table, for the nodes a walk can reach (the others keep
    `_STOP` and 0.0, never read): every sum is of integers, hence exact in a float."""
    steps: list[tuple[int, float]] = [_STOP] * len(ordered)
    reached: list[float] = [0.0] * len(ordered)
    reached[0] = float(ordered[0].r_mass)
    pending, depth_pow = [0], 1
    while pending:
        children: list[int] = []
        depth_pow <<= 1
        for node in pending:
            if node >= len(splits) or ordered[node].r_mass < size_limit:
                continue  # the walk ends here
            steps[node] = splits[node]
            for child in (2 * node + 1, 2 * node + 2):
                reached[child] = reached[node] + ordered[child].r_mass * depth_pow
                children.append(child)
        pending = children
    return steps, reached
