"""Evaluation the way fraud teams measure it: replay history through the engine, with every verdict
reaching the engine only when it was known, and score a test window that follows a training window.

What is measured (a *payment* is the unit; it belongs to the test window when at least one of its
decisions does, and only those decisions count):

- **flagged**: a payment is flagged when one of its test-window decisions has an action at or above
  `flag_at` (default `review`: review, hold and block all flag; allow never does). Shadow hits never flag.
- **truth**: the last `label.confirmed` of a payment, from the events file or the labels file, however
  late it arrived (the engine sees it only at its event time; the measurement sees every verdict).
  `fraud` and `error` verdicts are positives, `legit` and unlabelled payments are negatives.
- per typology T (the labels' `typology`, and the `typology` label of the rules that flagged):
  `recall` = labelled-T payments flagged by any rule / labelled-T payments; `recall_own` = flagged by
  a rule of typology T; `precision` = payments a T rule flagged that are positives (of any typology) /
  payments a T rule flagged; `fpr` = negatives a T rule flagged / all negatives.
- **recall_incident**: a payment is also caught when a flagged test-window decision names it in its
  `explanation["channel_incident"]["earlier_failures"]`: a flagged failure or return names the channel's
  failures of the hour before it, which failed before anything could flag them, so the people handling
  the alert re-send those too. `recall` counts a payment only when its own decisions flag it (caught at
  decision time); `recall_incident` counts it when flagged or named (caught by the follow-up), overall
  and per typology, with `caught_incident` and `missed_incident`. Being named is not a flag: precision
  and false-positive rates count flags only; `named` (payments named and not flagged themselves) and
  `named_positive` (those of them that are positives) show what the follow-up costs and brings.
- per rule: payments it flagged, their precision and the rule's false-positive rate.
- overall recall, precision and false-positive rate of the flags, and ROC AUC and average precision of
  each payment's highest `risk_score` in the window; the same for the supervised `model_score` and the
  `anomaly_score` where decisions carry them (`explanation["models"]`), to see what each adds.
- **card-precision@k** per day (UTC): payers ranked by their highest risk that day; the share of the
  k riskiest that had a positive payment that day (a day with fewer than k payers divides by k all the
  same, so a day cannot score well by ranking few); `best` is what a perfect ranking would score.
  The payer is the decision's `payer_field`: the creating user (`created_by`, a card holder in a card
  stream), `company_code` or `vendor_id`.

The windows: `train_days` after the UTC midnight before the first payment or platform event the test
window opens and lasts `test_days`; or explicit `test_from` / `test_to` instants. Everything before the
test window is replayed too (it builds baselines and lets online models learn), and nothing after it
reaches the engine.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sklearn.metrics import average_precision_score, roc_auc_score

from paysentry.contract import Decision, Event, action_rank
from paysentry.core import Engine
from paysentry.ports import RulesetLike
from paysentry.replay import Rejected, Replayer, ordered_events

POSITIVE_VERDICTS = ("fraud", "error")
PAYER_FIELDS = ("created_by", "company_code", "vendor_id")
FLAG_ACTIONS = ("review", "hold", "block")
MODEL_SCORES = ("model_score", "anomaly_score")  # from a decision's explanation["models"], when scored
DAY_SECONDS = 86400


class EvaluationError(ValueError):
    """A run that cannot start: bad windows, unreadable files. One line for the user."""


@dataclass(frozen=True)
class Windows:
    """How to place the test window: after `train_days` from the stream's start, or at fixed instants."""

    train_days: float | None = None
    test_days: float | None = None
    test_from: datetime | None = None
    test_to: datetime | None = None

    def __post_init__(self) -> None:
        relative = self.train_days is not None or self.test_days is not None
        absolute = self.test_from is not None or self.test_to is not None
        if relative and absolute:
            raise EvaluationError("give either --train-days/--test-days or --from/--to, not both")
        for name in ("train_days", "test_days"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise EvaluationError(f"{name.replace('_', '-')} must not be negative")
        for name in ("test_from", "test_to"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise EvaluationError(f"{name} needs a timezone")
        if self.test_from and self.test_to and self.test_to <= self.test_from:
            raise EvaluationError("--to must be after --from")

    def resolve(self, stream_start: float) -> tuple[float, float]:
        """(start, end) of the test window in epoch seconds, once the stream's start is known."""
        if self.test_from is not None or self.test_to is not None:
            start = self.test_from.timestamp() if self.test_from else float("-inf")
            return start, self.test_to.timestamp() if self.test_to else float("inf")
        midnight = stream_start - stream_start % DAY_SECONDS  # whole UTC days of training
        start = midnight + (self.train_days or 0.0) * DAY_SECONDS
        return start, start + self.test_days * DAY_SECONDS if self.test_days is not None else float("inf")


@dataclass(slots=True)
class PaymentOutcome:
    """What the engine did with one payment inside the test window."""

    risk: float = 0.0
    flagged: bool = False
    typologies: set[str] = field(default_factory=set)  # typology labels of the rules that flagged it
    rules: set[str] = field(default_factory=set)  # ids of the rules that flagged it
    scores: dict[str, float] = field(default_factory=dict)  # highest model_score / anomaly_score
    days: dict[date, str] = field(default_factory=dict)  # UTC day -> payer, for each day it was decided


@dataclass
class Collector:
    """Folds the test window's decisions into per-payment outcomes (no decision is kept)."""

    flag_at: str = "review"
    payer_field: str = "created_by"
    payments: dict[str, PaymentOutcome] = field(default_factory=dict)
    decisions: int = 0
    named: set[str] = field(default_factory=set)  # payments a flagged decision names as earlier failures
    # (day, payer) -> highest risk that day
    payer_risk: dict[tuple[date, str], float] = field(default_factory=dict)

    def add(self, decision: Decision) -> None:
        self.decisions += 1
        outcome = self.payments.setdefault(decision.payment_id, PaymentOutcome())
        outcome.risk = max(outcome.risk, decision.risk_score)
        threshold = action_rank(self.flag_at)
        acting = [hit for hit in decision.rule_hits if action_rank(hit.action) >= threshold]
        if acting:
            outcome.flagged = True
            outcome.typologies.update(hit.labels.get("typology") or hit.rule_id for hit in acting)
            outcome.rules.update(hit.rule_id for hit in acting)
            self.named.update(_earlier_failures(decision))
        models = decision.explanation.get("models")
        if isinstance(models, dict):
            for name in MODEL_SCORES:
                value = models.get(name)
                if isinstance(value, int | float):
                    outcome.scores[name] = max(outcome.scores.get(name, 0.0), float(value))
        day = datetime.fromisoformat(decision.event_time).astimezone(UTC).date()
        payer = _payer(decision, self.payer_field)
        outcome.days[day] = payer
        key = (day, payer)
        self.payer_risk[key] = max(self.payer_risk.get(key, 0.0), decision.risk_score)


def _earlier_failures(decision: Decision) -> list[str]:
    """The payment ids a decision names as its channel's earlier failures (nothing when malformed)."""
    incident = decision.explanation.get("channel_incident")
    named = incident.get("earlier_failures") if isinstance(incident, dict) else None
    return [p for p in named if isinstance(p, str)] if isinstance(named, list) else []


def _payer(decision: Decision, payer_field: str) -> str:
    if payer_field == "company_code":
        return decision.company_code or "?"
    if payer_field == "vendor_id":
        return decision.vendor_id or "?"
    payment = decision.explanation.get("payment") or {}
    value = payment.get(payer_field) if isinstance(payment, dict) else None
    return value if isinstance(value, str) and value else "?"


@dataclass
class StreamRun:
    """The replay's side of an evaluation: outcomes, verdicts, counts."""

    collector: Collector
    truth: dict[str, tuple[str, str | None]]  # payment id -> (verdict, typology), last label wins
    window: tuple[float, float]
    events: int = 0
    rejected: int = 0
    failed: int = 0
    labels_fed: int = 0


def replay_window(
    lines: Iterable[bytes],
    ruleset: RulesetLike | None,
    windows: Windows,
    *,
    engine: Engine | None = None,
    account_key: bytes = b"paysentry-evaluation",
    flag_at: str = "review",
    payer_field: str = "created_by",
) -> StreamRun:
    """Replay `lines` (events and labels, in any order) in event time up to the test window's end."""
    if flag_at not in FLAG_ACTIONS:
        raise EvaluationError(f"flag_at must be one of {', '.join(FLAG_ACTIONS)}, not {flag_at!r}")
    if payer_field not in PAYER_FIELDS:
        raise EvaluationError(f"payer field must be one of {', '.join(PAYER_FIELDS)}, not {payer_field!r}")
    run = StreamRun(Collector(flag_at, payer_field), {}, (float("-inf"), float("inf")))
    resolved: list[tuple[float, float]] = []

    def rejected(_: Rejected) -> None:
        run.rejected += 1

    def engine_events() -> Iterator[Event]:
        for _, _, event in ordered_events(iter(lines), account_key, rejected):
            run.events += 1
            at = event.event_time.timestamp()
            if event.type == "label.confirmed" and event.payment_id and event.verdict:
                run.truth[event.payment_id] = (event.verdict, event.typology)
            if not resolved and event.family in ("payment", "psp"):
                resolved.append(windows.resolve(at))
                run.window = resolved[0]
            if resolved and at >= resolved[0][1]:
                continue  # past the test window: only its verdicts matter now
            run.labels_fed += event.type == "label.confirmed"
            yield event

    def failed(_: Event, __: Exception) -> None:
        run.failed += 1

    replayer = Replayer(engine or Engine(ruleset), account_key)
    decisions = replayer.run(engine_events(), on_error=failed)
    for decision in decisions:
        start, end = run.window
        at = datetime.fromisoformat(decision.event_time).timestamp()
        if start <= at < end:
            run.collector.add(decision)
    start, end = run.window
    if end != float("inf"):  # timers due inside the window after the last event fed
        for decision in replayer.advance(int(end) - 1):
            if start <= datetime.fromisoformat(decision.event_time).timestamp() < end:
                run.collector.add(decision)
    return run


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def measure(run: StreamRun, k: int = 100) -> dict[str, Any]:
    """The report (JSON-ready) from a replayed window."""
    outcomes = run.collector.payments
    positives = {p for p in outcomes if run.truth.get(p, ("legit", None))[0] in POSITIVE_VERDICTS}
    negatives = set(outcomes) - positives
    flagged = {p for p, o in outcomes.items() if o.flagged}
    followed = flagged | (run.collector.named & set(outcomes))  # flagged, or named by a flagged decision
    labelled: dict[str, set[str]] = defaultdict(set)
    for payment in positives:
        verdict, typology = run.truth[payment]
        labelled[typology or verdict].add(payment)
    flagged_by: dict[str, set[str]] = defaultdict(set)
    for payment in flagged:
        for typology in outcomes[payment].typologies:
            flagged_by[typology].add(payment)
    typologies = {}
    for typology in sorted(set(labelled) | set(flagged_by)):
        targets, hits = labelled.get(typology, set()), flagged_by.get(typology, set())
        typologies[typology] = {
            "labelled": len(targets),
            "caught": len(targets & flagged),
            "recall": _ratio(len(targets & flagged), len(targets)),
            "recall_own": _ratio(len(targets & hits), len(targets)),
            "caught_incident": len(targets & followed),
            "recall_incident": _ratio(len(targets & followed), len(targets)),
            "flagged": len(hits),
            "precision": _ratio(len(hits & positives), len(hits)),
            "false_positives": len(hits & negatives),
            "fpr": _ratio(len(hits & negatives), len(negatives)),
            "missed": sorted(targets - flagged)[:20],
            "missed_incident": sorted(targets - followed)[:20],
        }
    by_rule: dict[str, set[str]] = defaultdict(set)
    for payment in flagged:
        for rule_id in outcomes[payment].rules:
            by_rule[rule_id].add(payment)
    rules = {
        rule_id: {
            "flagged": len(hits),
            "precision": _ratio(len(hits & positives), len(hits)),
            "false_positives": len(hits & negatives),
            "fpr": _ratio(len(hits & negatives), len(negatives)),
        }
        for rule_id, hits in sorted(by_rule.items())
    }
    ranking = {"risk_score": _ranking({p: o.risk for p, o in outcomes.items()}, positives)}
    for name in MODEL_SCORES:
        ranking[name] = _ranking({p: o.scores[name] for p, o in outcomes.items() if name in o.scores}, positives)
    start, end = run.window
    summary = {
        "test_from": _iso(start),
        "test_to": _iso(end),
        "events_read": run.events,
        "rejected_lines": run.rejected,
        "failed_events": run.failed,
        "labels_seen_by_engine": run.labels_fed,
        "decisions": run.collector.decisions,
        "payments": len(outcomes),
        "positives": len(positives),
        "flag_at": run.collector.flag_at,
        "flagged": len(flagged),
        "recall": _ratio(len(flagged & positives), len(positives)),
        "recall_incident": _ratio(len(followed & positives), len(positives)),
        "named": len(followed - flagged),
        "named_positive": len((followed - flagged) & positives),
        "precision": _ratio(len(flagged & positives), len(flagged)),
        "fpr": _ratio(len(flagged & negatives), len(negatives)),
        "roc_auc": ranking["risk_score"]["roc_auc"],
        "average_precision": ranking["risk_score"]["average_precision"],
    }
    days = card_precision_at_k(run, positives, k)
    summary["card_precision_at_k"] = round(sum(d["precision"] for d in days) / len(days), 6) if days else None
    # what a perfect ranking would score: a day with fewer than k fraudulent payers cannot reach 1
    summary["card_precision_at_k_best"] = round(sum(d["best"] for d in days) / len(days), 6) if days else None
    summary["k"] = k
    return {"summary": summary, "ranking": ranking, "typologies": typologies, "rules": rules, "days": days}


def _ranking(scores: dict[str, float], positives: set[str]) -> dict[str, Any]:
    """ROC AUC and average precision of one score over the payments that have it."""
    order = sorted(scores)
    truth = [p in positives for p in order]
    values = [scores[p] for p in order]
    both = 0 < sum(truth) < len(truth)
    return {
        "payments": len(order),
        "roc_auc": round(float(roc_auc_score(truth, values)), 6) if both else None,
        "average_precision": round(float(average_precision_score(truth, values)), 6) if both else None,
    }


def card_precision_at_k(run: StreamRun, positives: set[str], k: int) -> list[dict[str, Any]]:
    """Per UTC day: of the k payers with the highest risk that day, the share with a positive payment."""
    fraud_payers: set[tuple[date, str]] = set()
    for payment in positives:
        for day, payer in run.collector.payments[payment].days.items():
            fraud_payers.add((day, payer))
    by_day: dict[date, list[tuple[float, str]]] = defaultdict(list)
    for (day, payer), risk in run.collector.payer_risk.items():
        by_day[day].append((risk, payer))
    out = []
    for day in sorted(by_day):
        ranked = sorted(by_day[day], key=lambda item: (-item[0], item[1]))[:k]
        hits = sum(1 for _, payer in ranked if (day, payer) in fraud_payers)
        frauds = sum(1 for d, _ in fraud_payers if d == day)
        out.append({"day": day.isoformat(), "payers": len(by_day[day]), "fraud_payers": frauds, "hits": hits,
                    "precision": round(hits / k, 6), "best": round(min(frauds, k) / k, 6)})  # fmt: skip
    return out


def _iso(at: float) -> str | None:
    if at in (float("inf"), float("-inf")):
        return None
    return datetime.fromtimestamp(at, UTC).isoformat()


def file_lines(*paths: Path | None) -> Iterator[bytes]:
    """The lines of each file in turn (a missing optional file is skipped)."""
    handles = []
    try:
        for path in paths:
            if path is not None:
                handles.append(path.open("rb"))
        yield from itertools.chain.from_iterable(handles)
    finally:
        for handle in handles:
            handle.close()


def evaluate(
    events: Path,
    labels: Path | None,
    ruleset: RulesetLike | None,
    windows: Windows,
    *,
    k: int = 100,
    flag_at: str = "review",
    payer_field: str = "created_by",
    engine: Engine | None = None,
    account_key: bytes = b"paysentry-evaluation",
) -> dict[str, Any]:
    """Replay `events` with `labels` merged in by event time and measure the test window."""
    for path in (events, labels):
        if path is not None and not path.is_file():
            raise EvaluationError(f"{path}: no such file")
    if k < 1:
        raise EvaluationError("k must be at least 1")
    run = replay_window(
        file_lines(events, labels), ruleset, windows,
        engine=engine, account_key=account_key, flag_at=flag_at, payer_field=payer_field,
    )  # fmt: skip
    return measure(run, k)
