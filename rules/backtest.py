"""Backtests: replay history through the core with candidate rules, and measure what they would do.

Per rule: hits (decisions), payments hit, hit rate, alerts per day, and with labels precision and recall
(recall against the payments labelled with the rule's `typology` label). Per typology: how many labelled
payments the rules for it caught, and how many any active rule caught. Overall: alerted payments and
the false-positive rate (alerted payments that carry no fraud/error label, over all such payments).
With a baseline ruleset, the diff: alerts the candidate adds and alerts it loses, by rule.

Labels are `label.confirmed` events (verdict, typology), from `--labels` and from the event stream.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from paysentry.contract import Event
from rules.ruleset import Ruleset

POSITIVE = ("fraud", "error")
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Row:
    event_id: str
    payment_id: str
    event_type: str
    at: float  # event time, epoch seconds
    active: dict[str, str]  # rule id -> reason
    shadow: dict[str, str]


def read_events_file(path: Path, account_key: bytes) -> tuple[list[Event], int]:
    from paysentry.replay import Rejected, event_order, load_lines, read_events

    items = event_order(list(read_events(load_lines(path), account_key)))
    rejected = sum(1 for i in items if isinstance(i, Rejected))
    return [i for i in items if isinstance(i, Event)], rejected


def read_labels(path: Path | None, events: Iterable[Event]) -> dict[str, tuple[str, str | None]]:
    """payment_id -> (verdict, typology); the last label of a payment wins."""
    labels: dict[str, tuple[str, str | None]] = {}
    for event in events:
        if event.type == "label.confirmed" and event.payment_id and event.verdict:
            labels[event.payment_id] = (event.verdict, event.typology)
    if path is not None:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise ValueError(f"{path}:{number}: not a JSON line") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{number}: expected a JSON object")
                payment_id, verdict = row.get("payment_id"), row.get("verdict")
                if isinstance(payment_id, str) and isinstance(verdict, str) and payment_id and verdict:
                    typology = row.get("typology")
                    labels[payment_id] = (verdict, typology if isinstance(typology, str) else None)
    return labels


def replay(ruleset: Ruleset, events: list[Event], account_key: bytes, progress: Progress | None = None) -> list[Row]:
    from paysentry.core import Engine
    from paysentry.replay import Replayer

    def reporting(events: list[Event]) -> Iterator[Event]:
        for index, event in enumerate(events):
            if progress is not None and index % 250 == 0:
                progress(index, len(events))
            yield event

    decisions = list(Replayer(Engine(ruleset), account_key).run(reporting(events)))
    if progress is not None:
        progress(len(events), len(events))
    return [
        Row(
            d.event_id,
            d.payment_id,
            d.event_type or "",
            datetime.fromisoformat(d.event_time).timestamp(),
            {h.rule_id: h.reason for h in d.rule_hits},
            {h.rule_id: h.reason for h in d.shadow_hits},
        )
        for d in decisions
    ]


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def _scored(events: list[Event]) -> list[Event]:
    """The payment and platform events: master data may reach back years before the period."""
    return [e for e in events if e.family in ("payment", "psp")] or events


def _span_days(events: list[Event]) -> float:
    scored = _scored(events)
    if not scored:
        return 1.0
    first: datetime = scored[0].event_time
    last: datetime = scored[-1].event_time
    return max((last - first).total_seconds() / 86400, 1.0)


def measure(
    ruleset: Ruleset, rows: list[Row], labels: dict[str, tuple[str, str | None]], days: float
) -> dict[str, Any]:
    payments = {r.payment_id for r in rows}
    positives = {p for p, (verdict, _) in labels.items() if verdict in POSITIVE and p in payments}
    by_typology: dict[str, set[str]] = defaultdict(set)
    for payment in positives:
        typology = labels[payment][1]
        if typology:
            by_typology[typology].add(payment)
    hit_payments: dict[str, set[str]] = defaultdict(set)
    hits: Counter[str] = Counter()
    for row in rows:
        for rule_id in [*row.active, *row.shadow]:
            hits[rule_id] += 1
            hit_payments[rule_id].add(row.payment_id)
    alerted = {r.payment_id for r in rows if r.active}
    rules_out = []
    for rule in ruleset.rules:
        if rule.status == "disabled":
            continue
        hit = hit_payments.get(rule.id, set())
        typology = rule.labels.get("typology")
        entry: dict[str, Any] = {
            "rule_id": rule.id,
            "status": rule.status,
            "typology": typology,
            "hits": hits.get(rule.id, 0),
            "payments": len(hit),
            "hit_rate": _ratio(hits.get(rule.id, 0), len(rows)),
            "alerts_per_day": round(hits.get(rule.id, 0) / days, 2),
        }
        if labels:
            entry["precision"] = _ratio(len(hit & positives), len(hit))
            target = by_typology.get(typology or "", set())
            entry["recall"] = _ratio(len(hit & target), len(target))
        rules_out.append(entry)
    typologies = {}
    for typology, targets in sorted(by_typology.items()):
        own = set().union(
            *(
                hit_payments.get(r.id, set())
                for r in ruleset.rules
                if r.status == "active" and r.labels.get("typology") == typology
            )
        )
        typologies[typology] = {
            "labelled": len(targets),
            "caught_by_its_rules": len(targets & own),
            "recall": _ratio(len(targets & own), len(targets)),
            "caught_by_any_rule": len(targets & alerted),
            "recall_any": _ratio(len(targets & alerted), len(targets)),
            "missed": sorted(targets - alerted),
        }
    negatives = payments - positives
    summary: dict[str, Any] = {
        "decisions": len(rows),
        "payments": len(payments),
        "days": round(days, 2),
        "alerts": sum(1 for r in rows if r.active),
        "alerted_payments": len(alerted),
        "alerts_per_day": round(sum(1 for r in rows if r.active) / days, 2),
        "shadow_alerts": sum(1 for r in rows if r.shadow),
    }
    if labels:
        summary.update(
            {
                "labelled_positive": len(positives),
                "true_positive_payments": len(alerted & positives),
                "precision": _ratio(len(alerted & positives), len(alerted)),
                "recall": _ratio(len(alerted & positives), len(positives)),
                "false_positive_payments": len(alerted & negatives),
                "false_positive_rate": _ratio(len(alerted & negatives), len(negatives)),
            }
        )
    return {"version": ruleset.version, "summary": summary, "rules": rules_out, "typologies": typologies}


def diff(candidate: list[Row], baseline: list[Row], limit: int = 20) -> dict[str, Any]:
    def alerts(rows: list[Row]) -> dict[tuple[str, str], tuple[str, str]]:
        return {(r.event_id, rule): (r.payment_id, reason) for r in rows for rule, reason in r.active.items()}

    new, old = alerts(candidate), alerts(baseline)
    added, lost = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    per_rule: dict[str, dict[str, int]] = defaultdict(lambda: {"new": 0, "lost": 0})
    for _, rule in added:
        per_rule[rule]["new"] += 1
    for _, rule in lost:
        per_rule[rule]["lost"] += 1

    def sample(keys: list[tuple[str, str]], source: dict[tuple[str, str], tuple[str, str]]) -> list[dict[str, str]]:
        return [
            {"event_id": e, "rule_id": r, "payment_id": source[(e, r)][0], "reason": source[(e, r)][1]}
            for e, r in keys[:limit]
        ]

    return {
        "new_alerts": len(added),
        "lost_alerts": len(lost),
        "unchanged_alerts": len(set(new) & set(old)),
        "by_rule": dict(sorted(per_rule.items())),
        "new_sample": sample(added, new),
        "lost_sample": sample(lost, old),
    }


def backtest(
    candidate: Ruleset,
    events_path: Path,
    *,
    labels_path: Path | None = None,
    baseline: Ruleset | None = None,
    account_key: bytes = b"paysentry-backtest",
    warmup_days: float = 0.0,
    progress: Callable[[str], Progress] | None = None,
) -> dict[str, Any]:
    """The whole backtest as a JSON-ready dict (see the module docstring). Decisions in the first
    `warmup_days` build state (baselines, vendor ages) but are left out of every figure."""
    events, rejected = read_events_file(events_path, account_key)
    labels = read_labels(labels_path, events)
    start = _scored(events)[0].event_time.timestamp() + warmup_days * 86400 if events else 0.0
    days = max(_span_days(events) - warmup_days, 1.0)

    def run(ruleset: Ruleset, name: str) -> list[Row]:
        rows = replay(ruleset, events, account_key, progress(name) if progress else None)
        return [r for r in rows if r.at >= start]

    rows = run(candidate, "candidate")
    report = measure(candidate, rows, labels, days)
    report["summary"].update(events=len(events), rejected_events=rejected, warmup_days=warmup_days)
    if baseline is not None:
        base_rows = run(baseline, "baseline")
        report["baseline"] = measure(baseline, base_rows, labels, days)
        report["diff"] = diff(rows, base_rows)
    return report
