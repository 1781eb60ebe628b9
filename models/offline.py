"""Models trained offline: gradient boosting on labelled history, and the model file a notebook writes.

- `train_boosted`: the engine runs over the events (`paysentry replay`'s way, so the inputs are exactly the
  stream's `supervised_inputs`); a scikit-learn `HistGradientBoostingClassifier` learns from the payments
  released before the cut-off with the verdicts known by then (a payment with no verdict yet counts as
  legitimate), and is measured on the payments released from `test_from` against every verdict in the
  file. It is exported into a servable `TreeEnsemble`.
- `save_model_file` / `read_model_file`: a frozen model (logistic or tree ensemble) with its card fields
  as plain JSON, for `paysentry model register FILE`. The file is not signed: registering it checks it
  like any version (limits, shapes, finite numbers) and signs it with the registry's key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.learning import Scores, _released_rows, measure
from models.registry import MAX_MODEL_BYTES, FrozenModel, ModelRefused, model_from_data
from models.tree_model import TreeEnsemble, export_hist_gradient_boosting
from paysentry.contract import Event
from paysentry.core import Engine
from paysentry.event_time import epoch
from paysentry.ports import RulesetLike

MODEL_FILE_FORMAT: Literal["paysentry-model/1"] = "paysentry-model/1"
# Shallow, slow and regularised: frauds are few and the payees that matter later are new ones, so harder
# fitting learns the training weeks' payees (card-like stream, test week: AP 0.16 at sklearn's defaults).
DEFAULT_BOOSTING = {"max_iter": 100, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 50,
                    "l2_regularization": 1.0, "random_state": 7}  # fmt: skip


@dataclass(frozen=True)
class BoostedTraining:
    model: TreeEnsemble
    scores: Scores  # on the payments released from test_from (or from the cut-off)
    payments: int  # training payments
    frauds: int  # of them, confirmed as fraud by the cut-off


def train_boosted(events: Iterable[Event], ruleset: RulesetLike | None = None, *, until: int | None = None,
                  test_from: int | None = None, params: dict[str, Any] | None = None) -> BoostedTraining:  # fmt: skip
    """Learn from payments released before `until` (or before `test_from`, or all), with the verdicts
    known before that cut-off; measure on payments released from `test_from` (or from the cut-off)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    confirmed_at: dict[str, int] = {}  # payment id -> when its first fraud verdict was given

    def watched() -> Iterator[Event]:
        for event in events:
            if event.type == "label.confirmed" and event.verdict == "fraud" and event.payment_id:
                confirmed_at.setdefault(event.payment_id, epoch(event.event_time))
            yield event

    rows, frauds = _released_rows(watched(), Engine(ruleset, models=None, learner=None), None)
    cutoff = until if until is not None else test_from
    training = [r for r in rows if cutoff is None or r.at < cutoff]
    known = [r.payment_id in confirmed_at and (cutoff is None or confirmed_at[r.payment_id] < cutoff)
             for r in training]  # fmt: skip
    if not any(known) or all(known):
        raise ValueError("the training payments need both frauds confirmed before the cut-off and others")
    names = list(training[0].inputs)
    classifier = HistGradientBoostingClassifier(**{**DEFAULT_BOOSTING, **(params or {})})
    classifier.fit([_row(r.inputs, names) for r in training], known)
    model = export_hist_gradient_boosting(classifier, names)
    start = test_from if test_from is not None else cutoff
    tested = [r for r in rows if start is not None and r.at >= start]
    scores = measure("hgb", [r.payment_id in frauds for r in tested], [model.score_one(r.inputs) for r in tested])
    return BoostedTraining(model, scores, len(training), sum(known))


def _row(inputs: dict[str, float], names: list[str]) -> list[float]:
    return [inputs.get(name, math.nan) for name in names]


class ModelFile(BaseModel):
    """What `paysentry model register FILE` reads: the model and the card fields its trainer knows."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["paysentry-model/1"]
    model: dict[str, Any]
    metrics: dict[str, float] = Field(default_factory=dict, max_length=64)
    trained_from: str | None = Field(default=None, max_length=40)
    trained_to: str | None = Field(default=None, max_length=40)
    notes: str = Field(default="", max_length=2000)


def save_model_file(path: Path, model: FrozenModel, *, metrics: dict[str, float] | None = None,
                    trained_from: str | None = None, trained_to: str | None = None,
                    notes: str = "") -> Path:  # fmt: skip
    """Write a frozen model (e.g. `export_hist_gradient_boosting(clf, names)`) for `model register`."""
    record = ModelFile(format=MODEL_FILE_FORMAT, model=model.to_data(),
                       metrics={k: float(v) for k, v in (metrics or {}).items()},
                       trained_from=trained_from, trained_to=trained_to, notes=notes)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(record.model_dump(mode="json")))
    return path


def read_model_file(path: Path) -> tuple[FrozenModel, ModelFile]:
    """The model in a model file, checked as a registry version is; ModelRefused says what is wrong."""
    try:
        with path.open("rb") as handle:
            body = handle.read(MAX_MODEL_BYTES + 1)
    except OSError as exc:
        raise ModelRefused(f"{path}: cannot be read ({exc.strerror})") from None
    if len(body) > MAX_MODEL_BYTES:
        raise ModelRefused(f"{path}: larger than {MAX_MODEL_BYTES} bytes")
    try:
        record = ModelFile.model_validate(orjson.loads(body))
        return model_from_data(record.model), record
    except orjson.JSONDecodeError as exc:
        raise ModelRefused(f"{path}: not JSON ({exc})") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise ModelRefused(f"{path}: {where}: {error['msg']}"[:400]) from None
    except ValueError as exc:
        raise ModelRefused(f"{path}: {str(exc)[:300]}") from None
