"""Train and evaluate the supervised model on an events file that holds its own verdicts.

Both run the engine itself over the events in event-time order (`paysentry replay`'s way), so the
features (label features included) are exactly those the stream computes, and a verdict teaches the
learner only from the moment its `label.confirmed` event is known. The truth an evaluation scores against
is every verdict in the file, whenever it arrived.

- `train`: an online learner follows the events up to `until`; its scores before each verdict (the
  prequential scores) on payments released from `test_from` on give the metrics; the learner is frozen.
- `evaluate`: registered versions score the same released payments (from `since`), side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sklearn.metrics import average_precision_score, roc_auc_score

from models.serving import Served
from models.supervised import DEFAULT_HORIZON, LinearModel, OnlineLearner, supervised_inputs
from paysentry.contract import Event
from paysentry.core import Engine
from paysentry.event_time import epoch
from paysentry.ports import RulesetLike
from paysentry.replay import Replayer, ordered_events

SCORED = "payment.released"


@dataclass(frozen=True)
class Scores:
    """How well one score ranks the payments later confirmed as fraud."""

    name: str
    scored: int
    frauds: int
    roc_auc: float | None
    average_precision: float | None

    def metrics(self) -> dict[str, float]:
        out = {"scored": float(self.scored), "frauds": float(self.frauds)}
        if self.roc_auc is not None and self.average_precision is not None:
            out.update(roc_auc=round(self.roc_auc, 4), average_precision=round(self.average_precision, 4))
        return out


def measure(name: str, truth: list[bool], scores: list[float]) -> Scores:
    frauds = sum(truth)
    if 0 < frauds < len(truth):
        return Scores(name, len(truth), frauds, float(roc_auc_score(truth, scores)),
                      float(average_precision_score(truth, scores)))  # fmt: skip
    return Scores(name, len(truth), frauds, None, None)


def events_of(path: Path, account_key: bytes = b"training") -> Iterator[Event]:
    """The valid events of a file, in event-time order (refused lines are skipped)."""
    for _, _, event in ordered_events(path.open("rb"), account_key, lambda _: None):
        yield event


@dataclass
class _Row:
    payment_id: str
    at: int
    inputs: dict[str, float]
    candidate: float | None


def _released_rows(events: Iterable[Event], engine: Engine, until: int | None) -> tuple[list[_Row], set[str]]:
    rows: list[_Row] = []
    frauds: set[str] = set()

    def sink(event_type: str, payment_id: str, features: dict[str, Any]) -> None:
        if event_type == SCORED and payment_id:
            x = supervised_inputs(features)
            candidate = engine.learner.score_one(x) if engine.learner is not None else None
            rows.append(_Row(payment_id, 0, x, candidate))

    engine.feature_sink = sink
    replayer = Replayer(engine, b"training")
    for event in events:
        at = epoch(event.event_time)
        if event.type == "label.confirmed" and event.verdict == "fraud" and event.payment_id:
            frauds.add(event.payment_id)  # the truth: every verdict, whenever it arrived
        if until is not None and at >= until:
            continue  # the learner must not learn past `until`; the truth still counts
        before = len(rows)
        for _ in replayer.feed(event):
            pass
        for row in rows[before:]:
            row.at = at
    return rows, frauds


def train(events: Iterable[Event], ruleset: RulesetLike | None = None, *, kind: str = "logistic",
          horizon: int = DEFAULT_HORIZON, until: int | None = None,
          test_from: int | None = None) -> tuple[OnlineLearner, Scores]:  # fmt: skip
    """Follow the events with a fresh online learner (up to `until`); score its prequential predictions
    on payments released from `test_from` on."""
    learner = OnlineLearner(kind, horizon=horizon)
    engine = Engine(ruleset, learner=learner, models=None)
    rows, frauds = _released_rows(events, engine, until)
    tested = [r for r in rows if (test_from is None or r.at >= test_from) and r.candidate is not None]
    return learner, measure(f"online {kind}", [r.payment_id in frauds for r in tested],
                            [r.candidate or 0.0 for r in tested])  # fmt: skip


def evaluate(events: Iterable[Event], models: list[Served], ruleset: RulesetLike | None = None, *,
             since: int | None = None) -> list[Scores]:  # fmt: skip
    """Score the payments released from `since` on with each model, against every verdict in the file."""
    rows, frauds = _released_rows(events, Engine(ruleset, models=None), None)
    tested = [r for r in rows if since is None or r.at >= since]
    truth = [r.payment_id in frauds for r in tested]
    return [measure(m.name, truth, [m.model.score_one(r.inputs) for r in tested]) for m in models]


def frozen_scores(model: LinearModel, rows: list[dict[str, float]]) -> list[float]:
    return [model.score_one(x) for x in rows]
