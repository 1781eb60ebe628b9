"""The model scores of one payment event, for the core: computed once, before the rules run.

- `anomaly_score`: the online Half-Space Trees (each worker's own; ranks, never acts alone);
- `model_score`: the promoted supervised model live at the event's time (models.serving): rules may act
  on it and it enters the combined risk, the same in the stream and in replay;
- `candidate_score` / `shadow_score`: the online learner and the registry's shadow version, shown in the
  explanation only.

Both named scores are written into the feature dict (`anomaly_score`, `model_score`) so rules, the
feature sink (notebooks, training) and explanations read the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.label_features import LABEL_FEATURES
from models.scorer import CalibratedHalfSpaceTrees, model_inputs
from models.serving import ServedModels
from models.supervised import OnlineLearner, supervised_inputs


@dataclass(slots=True)
class PaymentScores:
    anomaly_x: dict[str, float] | None = None  # what the anomaly model learns from, if the payment is allowed
    supervised_x: dict[str, float] | None = None  # what the learner keeps until the verdict
    anomaly: float | None = None
    model: float | None = None
    model_name: str | None = None
    candidate: float | None = None
    shadow: float | None = None
    shadow_name: str | None = None

    def explanation(self) -> dict[str, Any]:
        return {"model": self.model_name, "model_score": _rounded(self.model),
                "anomaly_score": _rounded(self.anomaly), "candidate_score": _rounded(self.candidate),
                "shadow": self.shadow_name, "shadow_score": _rounded(self.shadow)}  # fmt: skip


NOT_SCORED = PaymentScores()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def scored_event(event_type: str) -> bool:
    return event_type.startswith("payment.") and event_type != "payment.cancelled"


def score_payment(features: dict[str, Any], at: int, anomaly_model: CalibratedHalfSpaceTrees,
                  served: ServedModels | None, learner: OnlineLearner | None,
                  keep_inputs: bool = True) -> PaymentScores:  # fmt: skip
    """Every score of a payment event at event time `at`; writes model_score and anomaly_score into
    `features`. `keep_inputs`: the learner will keep this payment's inputs (a release), so they are
    built even when no model reads them now."""
    anomaly_x = model_inputs(features)
    scores = PaymentScores(anomaly_x=anomaly_x, anomaly=anomaly_model.score_one(anomaly_x))
    live = served.live_at(at) if served is not None else None
    shadow = served.shadow if served is not None else None
    # a learner still warming up scores nothing: its inputs are only built for it to keep
    learner_reads = learner is not None and (keep_inputs or learner.ready)
    if live is not None or shadow is not None or learner_reads:
        x = scores.supervised_x = supervised_inputs(features, anomaly_x)
        if live is not None:
            scores.model, scores.model_name = live.model.score_one(x), live.name
        if shadow is not None:
            scores.shadow, scores.shadow_name = shadow.model.score_one(x), shadow.name
        if learner is not None:
            scores.candidate = learner.score_one(x)
    features["anomaly_score"] = scores.anomaly
    features["model_score"] = scores.model
    return scores


def explained_labels(features: dict[str, Any]) -> dict[str, float]:
    """The label features worth showing a reviewer: the ones that are not zero."""
    return {name: round(value, 4) for name in LABEL_FEATURES if (value := features.get(name))}
