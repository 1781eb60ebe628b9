"""Offline work on the stream's own features: build a feature table from an events file, and
evaluate (or retrain) the anomaly model against labels. Notebooks call these; so can a scheduled job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sklearn.metrics import average_precision_score, roc_auc_score

from models.scorer import CalibratedHalfSpaceTrees, model_inputs
from paysentry.contract import Event
from paysentry.core import Engine
from paysentry.ports import RulesetLike
from paysentry.replay import Replayer, event_order, load_lines, read_events

SCORED_EVENT = "payment.released"
# Typologies a model can see when the money is released (the others show on the platform side).
RELEASE_TYPOLOGIES = frozenset({
    "amount_outlier", "bank_change_bec", "new_vendor_large", "off_hours_release", "self_approval",
    "shared_account", "split_payment", "duplicate_payment",
})  # fmt: skip


def feature_rows(events: Iterable[Event], ruleset: RulesetLike | None = None, key: bytes = b"") -> list[dict]:
    """One row per scored event: the features exactly as the engine computed them, plus its decision."""
    rows: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []

    def sink(event_type: str, payment_id: str, features: dict[str, Any]) -> None:
        pending.append({"event_type": event_type, "payment_id": payment_id, **features})

    replayer = Replayer(Engine(ruleset, feature_sink=sink), key or b"training")
    for decision in replayer.run(events):
        row = pending.pop(0)
        row.update(action=decision.action, risk_score=decision.risk_score, model_score=decision.model_score,
                   rules=",".join(h.rule_id for h in decision.rule_hits))  # fmt: skip
        rows.append(row)
    return rows


def feature_rows_from_file(path: Path, ruleset: RulesetLike | None = None) -> list[dict[str, Any]]:
    items = event_order(list(read_events(load_lines(path), b"training")))
    return feature_rows((i for i in items if isinstance(i, Event)), ruleset)


def load_labels(path: Path, typologies: frozenset[str] | None = None) -> dict[str, str]:
    """payment id -> typology (or verdict) for every label that is not 'legit' (of these typologies)."""
    labels = {}
    for line in load_lines(path):
        if line.strip():
            label = orjson.loads(line)
            typology = label.get("typology") or label.get("verdict", "anomaly")
            if label.get("verdict") != "legit" and (typologies is None or typology in typologies):
                labels[label["payment_id"]] = typology
    return labels


@dataclass(frozen=True)
class ModelReport:
    scored: int
    positives: int
    roc_auc: float | None
    average_precision: float | None


def evaluate_online(rows: list[dict[str, Any]], labels: dict[str, str], **params: Any) -> ModelReport:
    """Replay a fresh model over released payments in order (score, then learn unless labelled) and
    measure how well its calibrated score ranks the labelled payments. Use it to compare settings."""
    model = CalibratedHalfSpaceTrees(**params)
    truth, scores = [], []
    for row in rows:
        if row["event_type"] != SCORED_EVENT:
            continue
        x = model_inputs(row)
        score = model.score_one(x)
        if score is not None:
            truth.append(row["payment_id"] in labels)
            scores.append(score)
        if row.get("action", "allow") == "allow":
            model.learn_one(x)
    positives = sum(truth)
    if 0 < positives < len(truth):
        return ModelReport(len(truth), positives, roc_auc_score(truth, scores), average_precision_score(truth, scores))
    return ModelReport(len(truth), positives, None, None)
