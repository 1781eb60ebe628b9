"""Features learnt from verdicts: how many payments of a vendor, payee account, company or creating user
were confirmed as fraud lately, from `label.confirmed` events.

A label counts from its own event time on, never earlier: the core records it when the label event is
applied, and events are applied in event-time order, so a backtest sees a verdict exactly when the
investigators gave it (no leak from the future). Counts live in each profile's `frauds` accumulator (the
bounded `WindowedStats` buckets), on the shard of the paying company, like every profile: a vendor's
fraud count is the frauds this company's payments to the vendor were confirmed as.

A payment confirmed as fraud twice (a redelivered or repeated verdict) counts once; a later `legit`
verdict does not take the count back (the buckets only add), it only stops the payment being counted
again.
"""

from __future__ import annotations

from typing import Any, Protocol

from paysentry.windows import DAY, WindowedStats

LABEL_ENTITIES = ("vendor", "account", "company", "creator")
_WINDOWS = (("7d", 7 * DAY), ("30d", 30 * DAY))
_RATE_WINDOW = 30 * DAY


class LabelledProfile(Protocol):
    stats: WindowedStats
    frauds: WindowedStats


def label_feature_names() -> tuple[str, ...]:
    names = []
    for entity in LABEL_ENTITIES:
        names += [f"{entity}_fraud_count_{suffix}" for suffix, _ in _WINDOWS]
        names.append(f"{entity}_fraud_rate_30d")
    return tuple(names)


LABEL_FEATURES = label_feature_names()


def _has_buckets(stats: WindowedStats) -> bool:
    return bool(stats.ladders[-1])


_NAMES = {entity: (f"{entity}_fraud_count_7d", f"{entity}_fraud_count_30d", f"{entity}_fraud_rate_30d")
          for entity in LABEL_ENTITIES}  # fmt: skip
assert tuple(suffix for suffix, _ in _WINDOWS) == ("7d", "30d")


def label_features(profiles: dict[str, Any], at: int) -> dict[str, float | None]:
    """The label features at event time `at`, from the profiles the event reads (None: no profile)."""
    out: dict[str, float | None] = {}
    for entity in LABEL_ENTITIES:
        week_name, month_name, rate_name = _NAMES[entity]
        profile: LabelledProfile | None = profiles.get(entity)
        if profile is None:
            out[week_name] = out[month_name] = out[rate_name] = None
            continue
        frauds = profile.frauds
        if not _has_buckets(frauds):  # the common case: nothing confirmed, no bucket to read
            out[week_name] = out[month_name] = 0.0
            out[rate_name] = 0.0 if _has_buckets(profile.stats) else None
            continue
        for name, (_, seconds) in zip((week_name, month_name), _WINDOWS, strict=True):
            out[name] = frauds.stat("count", at, seconds)
        released = profile.stats.stat("count", at, _RATE_WINDOW)
        count = out[month_name] or 0.0
        out[rate_name] = min(count / released, 1.0) if released else None
    return out


def record_confirmed_fraud(profiles: list[LabelledProfile | None], at: int) -> None:
    """Count one confirmed fraud at event time `at` in each profile the payment belongs to."""
    for profile in profiles:
        if profile is not None:
            profile.frauds.add(at)
