"""The supervised model: the probability that a released payment is fraud, learnt from verdicts.

Two roles, on purpose (a score that can change an action must be the same in the stream and in replay):

- The *promoted* model may act: rules name its score as `model_score` and it enters the combined risk.
  It is frozen (`LinearModel`: a standardisation and a logistic regression's coefficients; or a boosted
  `models.tree_model.TreeEnsemble`: node tables; plain numbers either way), versioned and signed in the
  model registry (models.registry), and chosen by event time from the registry's promotion history, so
  any number of workers and `paysentry replay` give every payment the same score.
- The *candidate* (`OnlineLearner`) learns online in each engine from the labels as they arrive. Its
  score (`candidate_score`) is shown in explanations only: each worker learns from the payments its
  partitions see, so it differs between workers and between the stream and replay. `paysentry model
  train` freezes such a learner (or one trained offline on feature rows) into a registry version.

The trade-off: a promoted model does not follow the data by itself; it improves when someone trains,
compares (`model evaluate`, `model shadow`) and promotes a new version. Per-shard online models that
act would follow the data but tie every decision to the exact history of the shard's state, which a
restart from a snapshot or a partition move would have to reproduce bit for bit.

The learner keeps each released payment's inputs until its verdict arrives (fraud: learnt as 1; legit:
learnt as 0; error: dropped) or until `horizon` seconds of event time pass without one (then it is learnt
as legitimate). At most `max_pending` payments wait; beyond that the oldest is learnt as legitimate early.
An engine's default learner takes these from the environment (`LearnerSettings`): PAYSENTRY_LEARNER_KIND
(`logistic` or `forest`), PAYSENTRY_LEARNER_HORIZON (e.g. `21d`) and PAYSENTRY_LEARNER_MAX_PENDING.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from river import compose, forest, linear_model, optim, preprocessing

from models.label_features import LABEL_ENTITIES
from models.scorer import model_inputs
from paysentry.settings import Seconds
from paysentry.windows import DAY

DEFAULT_HORIZON = 21 * DAY
DEFAULT_MAX_PENDING = 50_000


def supervised_inputs(features: dict[str, Any], base: dict[str, float] | None = None) -> dict[str, float]:
    """The anomaly model's bounded inputs (`base`, when already computed) plus the label features (log
    counts, rates). Only features the core computes the same way everywhere: never the anomaly score,
    which each worker learns itself."""
    out = dict(base) if base is not None else model_inputs(features)
    for entity in LABEL_ENTITIES:
        count = features.get(f"{entity}_fraud_count_30d")
        week = features.get(f"{entity}_fraud_count_7d")
        rate = features.get(f"{entity}_fraud_rate_30d")
        out[f"{entity}_frauds_30d"] = math.log1p(min(float(count), 1e6)) if count else 0.0
        out[f"{entity}_frauds_7d"] = math.log1p(min(float(week), 1e6)) if week else 0.0
        out[f"{entity}_fraud_rate"] = min(max(float(rate), 0.0), 1.0) if rate else 0.0
    return out


def _logistic(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class LinearModel:
    """A frozen logistic regression over named inputs: p = sigmoid(b + sum w_i (x_i - mean_i) / scale_i).

    Plain numbers only, so it is stored as JSON and scored the same on every machine."""

    kind: Literal["logistic"] = "logistic"

    def __init__(self, inputs: dict[str, tuple[float, float, float]], intercept: float):
        self.inputs = inputs  # name -> (mean, scale, weight)
        self.intercept = intercept
        self._terms = tuple((name, mean, weight / scale) for name, (mean, scale, weight) in inputs.items())

    def predict_proba_one(self, x: dict[str, float]) -> dict[bool, float]:
        p = self.score_one(x)
        return {False: 1.0 - p, True: p}

    def score_one(self, x: dict[str, float]) -> float:
        z = self.intercept
        for name, mean, factor in self._terms:
            z += (x.get(name, mean) - mean) * factor
        return _logistic(z)

    def to_data(self) -> dict[str, Any]:
        return {"kind": self.kind, "intercept": self.intercept,
                "inputs": {name: list(values) for name, values in self.inputs.items()}}  # fmt: skip

    @classmethod
    def from_coefficients(cls, names: Sequence[str], weights: Sequence[float], intercept: float,
                          means: Sequence[float] | None = None,
                          scales: Sequence[float] | None = None) -> LinearModel:  # fmt: skip
        """A logistic regression trained offline, e.g. scikit-learn's on `supervised_inputs` rows:
        `coef_[0]`, `intercept_[0]`, and the StandardScaler's `mean_` and `scale_` if one was used."""
        count = len(names)
        means = means if means is not None else [0.0] * count
        scales = scales if scales is not None else [1.0] * count
        if not len(weights) == len(means) == len(scales) == count:
            raise ValueError("names, weights, means and scales must have the same length")
        inputs = {name: (float(m), float(s) if s > 0 else 1.0, float(w) if s > 0 else 0.0)
                  for name, w, m, s in zip(names, weights, means, scales, strict=True)}  # fmt: skip
        return cls(inputs, float(intercept))

    @classmethod
    def from_river(cls, pipeline: compose.Pipeline) -> LinearModel:
        """Freeze a StandardScaler | LogisticRegression pipeline (what the learner holds)."""
        scaler, regression = pipeline.steps.values()
        inputs = {}
        for name, weight in regression.weights.items():
            variance = scaler.vars.get(name, 0.0)
            # river scales a constant input to 0: a zero weight does the same
            scale, used = (math.sqrt(variance), weight) if variance > 0 else (1.0, 0.0)
            inputs[name] = (float(scaler.means.get(name, 0.0)), scale, float(used))
        return cls(inputs, float(regression.intercept))


ModelFactory = Callable[[], Any]


def logistic_pipeline() -> compose.Pipeline:
    return compose.Pipeline(
        preprocessing.StandardScaler(), linear_model.LogisticRegression(optimizer=optim.SGD(0.01), l2=1e-4)
    )


def forest_classifier() -> Any:
    return forest.ARFClassifier(n_models=10, seed=7)


LEARNERS: dict[str, ModelFactory] = {"logistic": logistic_pipeline, "forest": forest_classifier}


class LearnerSettings(BaseSettings):
    """The default online learner of every engine (workers, replay, backtests) from the environment."""

    model_config = SettingsConfigDict(env_prefix="PAYSENTRY_LEARNER_", env_file=".env", extra="ignore")

    kind: Literal["logistic", "forest"] = "logistic"
    horizon: Seconds = Field(default=DEFAULT_HORIZON, ge=DAY)  # a verdict comes days or weeks after the payment
    max_pending: int = Field(default=DEFAULT_MAX_PENDING, ge=1, le=1_000_000)  # bounds the learner's memory


class OnlineLearner:
    """The candidate: a river classifier learning from delayed verdicts, with its bounded pending buffer."""

    def __init__(self, kind: str = "logistic", *, horizon: int = DEFAULT_HORIZON,
                 max_pending: int = DEFAULT_MAX_PENDING, warmup: int = 200):  # fmt: skip
        if kind not in LEARNERS:
            raise ValueError(f"unknown learner {kind!r}: expected one of {', '.join(LEARNERS)}")
        if horizon <= 0 or max_pending <= 0:
            raise ValueError("horizon and max_pending must be positive")
        self.kind, self.horizon, self.max_pending, self.warmup = kind, horizon, max_pending, warmup
        self.model = LEARNERS[kind]()
        # payment id -> (released at, input values in `names` order, or the inputs if they differ)
        self.pending: dict[str, tuple[int, tuple[float, ...] | dict[str, float]]] = {}
        self.names: tuple[str, ...] = ()
        self.learned = 0
        self.frauds = 0

    @classmethod
    def from_environment(cls) -> OnlineLearner:
        settings = LearnerSettings()
        return cls(settings.kind, horizon=settings.horizon, max_pending=settings.max_pending)

    @property
    def ready(self) -> bool:
        return self.frauds > 0 and self.learned >= self.warmup

    def score_one(self, x: dict[str, float]) -> float | None:
        if not self.ready:
            return None
        return float(self.model.predict_proba_one(x).get(True, 0.0))

    def predict_proba_one(self, x: dict[str, float]) -> dict[bool, float]:
        p = self.score_one(x) or 0.0
        return {False: 1.0 - p, True: p}

    def learn_one(self, x: dict[str, float], y: bool) -> None:
        self.model.learn_one(x, y)
        self.learned += 1
        self.frauds += int(y)

    def remember(self, payment_id: str, at: int, x: dict[str, float]) -> None:
        """Keep a released payment's inputs until its verdict (or the horizon) arrives."""
        self.expire(at)
        if payment_id in self.pending:
            return
        if not self.names:
            self.names = tuple(x)
        # a tuple of values is a fifth of the size of the dict: many payments wait weeks for a verdict
        self.pending[payment_id] = (at, tuple(x.values()) if tuple(x) == self.names else dict(x))
        while len(self.pending) > self.max_pending:
            oldest = next(iter(self.pending))
            self._learn_pending(self.pending.pop(oldest)[1], False)

    def _learn_pending(self, values: tuple[float, ...] | dict[str, float], y: bool) -> None:
        self.learn_one(values if isinstance(values, dict) else dict(zip(self.names, values, strict=True)), y)

    def expire(self, now: int) -> int:
        """Learn as legitimate every waiting payment released more than `horizon` before `now`."""
        learnt = 0
        while self.pending:
            oldest = next(iter(self.pending))
            released_at, values = self.pending[oldest]
            if released_at > now - self.horizon:
                break
            del self.pending[oldest]
            self._learn_pending(values, False)
            learnt += 1
        return learnt

    def verdict(self, payment_id: str, verdict: str | None, now: int) -> bool:
        """A label arrived: learn the payment with it. False if the payment is not waiting (unknown,
        already learnt, or past the horizon)."""
        self.expire(now)
        waiting = self.pending.pop(payment_id, None)
        if waiting is None or verdict not in ("fraud", "legit"):
            return False
        self._learn_pending(waiting[1], verdict == "fraud")
        return True

    def freeze(self) -> LinearModel:
        """The logistic learner as a frozen model, for the registry."""
        if self.kind != "logistic":
            raise ValueError("only the logistic learner can be frozen into a servable model")
        return LinearModel.from_river(self.model)
