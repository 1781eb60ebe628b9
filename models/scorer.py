"""The online anomaly model: river's HalfSpaceTrees behind a min-max scaler, with a calibrated score.

It follows river's estimator shape (`learn_one(x)` / `score_one(x)`). Raw Half-Space Trees scores are
not comparable across time or data sets, so `score_one` returns the empirical quantile of the raw
score among the most recent raw scores (a bounded window): 0.99 means "more anomalous than 99 % of
recent payments". Until `warmup` payments have been learnt it returns None.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections import deque
from typing import Any

from river import anomaly, compose, preprocessing

from models.flat_trees import FlatWalk

# Features the model sees, each mapped into a bounded range so one extreme value cannot dominate the
# scaler. Missing values take the neutral value given here.
_MODEL_INPUTS: dict[str, tuple[float, float]] = {
    # name: (neutral value, clip upper bound)
    "log_amount_base": (0.0, 12.0),
    "amount_zscore_30d": (0.0, 20.0),
    "log_ratio_median": (0.0, 4.0),
    "hour_local": (12.0, 23.0),
    "is_weekend": (0.0, 1.0),
    "is_night": (0.0, 1.0),
    "account_new_for_vendor": (0.0, 1.0),
    "bank_change_recency": (0.0, 1.0),
    "new_vendor": (0.0, 1.0),
    "self_approved": (0.0, 1.0),
    "amount_to_limit_ratio": (0.0, 3.0),
    "vendor_count_24h": (0.0, 20.0),
    "account_shared": (0.0, 1.0),
}


def model_inputs(features: dict[str, Any]) -> dict[str, float]:
    """Project the feature dict onto the model's bounded numeric inputs."""
    get = features.get
    amount = get("amount_base")
    ratio = get("amount_ratio_median_30d")
    bank_days = get("days_since_bank_change")
    age = get("vendor_age_days")
    raw: tuple[float | None, ...] = (
        math.log10(float(amount) + 1) if amount is not None else None,
        get("amount_zscore_30d"),
        math.log10(float(ratio)) if ratio and ratio > 0 else None,
        get("hour_local"),
        get("is_weekend"),
        get("is_night"),
        get("account_new_for_vendor"),
        1.0 / (1.0 + float(bank_days)) if bank_days is not None else None,
        1.0 / (1.0 + float(age)) if age is not None else None,
        get("self_approved"),
        get("amount_to_limit_ratio"),
        get("vendor_count_24h"),
        get("account_shared"),
    )  # in _MODEL_INPUTS order
    out: dict[str, float] = {}
    for (name, neutral, upper), value in zip(_BOUNDS, raw, strict=True):
        out[name] = neutral if value is None else min(max(float(value), -upper), upper)
    return out


_BOUNDS = tuple((name, neutral, upper) for name, (neutral, upper) in _MODEL_INPUTS.items())


class CalibratedHalfSpaceTrees:
    """HalfSpaceTrees on scaled features with a quantile-calibrated score in [0, 1]."""

    def __init__(
        self,
        *,
        n_trees: int = 25,
        height: int = 8,
        window_size: int = 250,
        seed: int = 42,
        warmup: int = 300,
        calibration_window: int = 2000,
    ):
        self.params = {"n_trees": n_trees, "height": height, "window_size": window_size, "seed": seed,
                       "warmup": warmup, "calibration_window": calibration_window}  # fmt: skip
        self.pipeline = compose.Pipeline(
            preprocessing.MinMaxScaler(),
            anomaly.HalfSpaceTrees(n_trees=n_trees, height=height, window_size=window_size, seed=seed),
        )
        self.warmup = warmup
        self.learned = 0
        self._recent: deque[float] = deque(maxlen=calibration_window)
        self._sorted: list[float] = []
        self._last: tuple[dict[str, float], float] | None = None  # score_one then learn_one on one x
        self._version = _version(self.params)  # read by every decision
        self._walk = FlatWalk(*self.pipeline.steps.values())

    @property
    def version(self) -> str:
        return self._version

    @property
    def ready(self) -> bool:
        return self.learned >= self.warmup

    def raw_score(self, x: dict[str, float]) -> float:
        if self._last is not None and self._last[0] == x:
            return self._last[1]
        raw = self._walk.score(x)  # the pipeline's own steps, walked flat
        self._last = (dict(x), raw)
        return raw

    def score_one(self, x: dict[str, float]) -> float | None:
        """Calibrated score of x without learning from it; None while warming up."""
        if not self.ready or not self._sorted:
            return None
        raw = self.raw_score(x)
        rank = bisect.bisect_right(self._sorted, raw)
        return rank / len(self._sorted)

    def learn_one(self, x: dict[str, float]) -> None:
        # The calibration window holds scores of payments the model learnt from, i.e. normal ones.
        raw = self.raw_score(x)
        if len(self._recent) == self._recent.maxlen:
            old = self._recent[0]
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        self._recent.append(raw)
        bisect.insort(self._sorted, raw)
        # what the pipeline's learn_one does: the scaler learns x, the trees learn x scaled after that
        self._walk.learn(x)
        self._last = None  # the model changed: the cached score is stale
        self.learned += 1


def _version(params: dict[str, int]) -> str:
    digest = hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:8]
    return f"hst-{digest}"
