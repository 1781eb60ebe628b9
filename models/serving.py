"""Which registered model scores a payment: the live one by the payment's event time, and a shadow.

`ServedModels` holds the registry's promotion history and the models it names, loaded and checked once.
`live_at(at)` is the model whose `live` entry is the latest with `effective_from <= at`: a pure function
of the history and the payment's time, so the stream and `paysentry replay` agree on it as long as they
read the same history. A worker re-reads the history when the switch message arrives on Redis
(`SwitchListener`, as rules reload do) and audits every change of what it serves.

Promote with an `effective_from` a little in the future (the CLI's default is a minute from now): every
worker has the new history before the first payment it applies to, so none scores that payment with the
old model. A promotion whose time has already passed when a worker reads it applies to the payments that
worker decides from then on, and replay may differ on the few in between.

The shadow model scores beside the live one for explanation and comparison only; it never acts.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.lifecycle import SnapshotRefused
from models.registry import (
    SWITCH_CHANNEL,
    FrozenModel,
    ModelRegistry,
    Promotion,
    RegistryError,
    registry_from_location,
)
from paysentry.audit import AuditLog
from paysentry.pubsub import SignalListener

log = logging.getLogger("paysentry.models.serving")
REGISTRY_ENV = "PAYSENTRY_MODEL_REGISTRY"
KEY_ENV = "PAYSENTRY_MODEL_SIGNING_KEY"
PIN_ENV = "PAYSENTRY_MODEL_PIN"


@dataclass(frozen=True, slots=True)
class Served:
    name: str  # model id @ version, as explanations show it
    model: FrozenModel  # a logistic regression or a tree ensemble: both score_one(inputs) -> probability


@dataclass(frozen=True, slots=True)
class _Timeline:
    starts: tuple[int, ...] = ()
    served: tuple[Served | None, ...] = ()
    shadow: Served | None = None
    fingerprint: tuple[Any, ...] = ()


@dataclass
class ServedModels:
    registry: ModelRegistry | None = None
    audit_log: Path | None = None
    worker: str = field(default_factory=lambda: f"pid:{os.getpid()}")
    _timeline: _Timeline = field(default_factory=_Timeline)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.registry is not None:
            self.refresh(trigger="startup")

    @classmethod
    def of(cls, entries: list[tuple[int, Served | None]], shadow: Served | None = None) -> ServedModels:
        """Models given directly (tests, notebooks): (effective_from, model) in any order."""
        served = cls()
        ordered = sorted(entries, key=lambda e: e[0])
        served._timeline = _Timeline(tuple(e[0] for e in ordered), tuple(e[1] for e in ordered), shadow)
        return served

    def live_at(self, at: int) -> Served | None:
        timeline = self._timeline  # one read: a refresh swaps the whole timeline at once
        position = bisect.bisect_right(timeline.starts, at)
        return timeline.served[position - 1] if position else None

    @property
    def shadow(self) -> Served | None:
        return self._timeline.shadow

    @property
    def empty(self) -> bool:
        return not self._timeline.starts and self._timeline.shadow is None

    def refresh(self, trigger: str = "signal") -> bool:
        """Re-read the history and load what it names; True if what is served changed. A history or a
        model that is refused (bad signature, bad data) leaves what is served as it was."""
        if self.registry is None:
            return False
        with self._lock:
            try:
                timeline = _build(self.registry, self.registry.history())
            except (SnapshotRefused, RegistryError, OSError) as exc:
                log.error("model registry refused (%s); still serving what was loaded: %s", trigger, exc)
                self._audit({"event": "model.switch_refused", "trigger": trigger, "reason": str(exc)[:300]})
                return False
            old = self._timeline
            if timeline.fingerprint == old.fingerprint:
                return False
            self._timeline = timeline
        now = int(time.time())
        live, shadow = self.live_at(now), timeline.shadow
        log.warning("models switched (%s): live now %s, shadow %s", trigger, live and live.name, shadow and shadow.name)
        self._audit({"event": "model.switched", "trigger": trigger, "live_now": live and live.name,
                     "shadow": shadow and shadow.name, "schedule": _schedule(timeline)})  # fmt: skip
        return True

    def _audit(self, record: dict[str, Any]) -> None:
        if self.audit_log is None:
            return
        try:
            AuditLog(self.audit_log).append({**record, "worker": self.worker})
        except OSError as exc:  # a full disk must not stop a switch
            log.error("model audit log %s not written: %s", self.audit_log, exc)


def _build(registry: ModelRegistry, history: list[Promotion]) -> _Timeline:
    loaded: dict[str, Served] = {}

    def served(entry: Promotion) -> Served | None:
        if entry.model_id is None or entry.version is None:
            return None
        name = f"{entry.model_id}@v{entry.version}"
        if name not in loaded:
            loaded[name] = Served(name, registry.load(entry.model_id, entry.version).model)
        return loaded[name]

    # Entries are ordered by when they were made; a later entry overrides an earlier one from its time on.
    live: list[tuple[int, Served | None]] = []
    for entry in (e for e in history if e.role == "live"):
        live = [item for item in live if item[0] < entry.effective_from]
        live.append((entry.effective_from, served(entry)))
    shadows = [e for e in history if e.role == "shadow"]
    shadow = served(shadows[-1]) if shadows else None
    fingerprint = (tuple((t, s and s.name) for t, s in live), shadow and shadow.name)
    return _Timeline(tuple(t for t, _ in live), tuple(s for _, s in live), shadow, fingerprint)


def _schedule(timeline: _Timeline) -> list[list[Any]]:
    return [[start, served and served.name] for start, served in zip(timeline.starts, timeline.served, strict=True)]


def served_from_environment(audit_log: Path | None = None) -> ServedModels | None:
    """The registry named by PAYSENTRY_MODEL_REGISTRY (a directory or a Redis URL), signed with
    PAYSENTRY_MODEL_SIGNING_KEY; None when no registry is configured. Every shell that builds an engine
    (replay, backtest, the worker) serves the same models this way.

    PAYSENTRY_MODEL_PIN=MODEL@vN serves that version at every event time instead of the promotion
    history: for backtesting a version over history before promoting it (never on workers)."""
    location = os.environ.get(REGISTRY_ENV)
    if not location:
        return None
    registry = registry_from_location(location, os.environ.get(KEY_ENV, "").encode())
    pinned = os.environ.get(PIN_ENV)
    if pinned:
        model_id, _, version = pinned.rpartition("@v")
        if not model_id or not version.isdigit():
            raise RegistryError(f"{PIN_ENV}={pinned!r}: expected MODEL@vN")
        return ServedModels.of([(-(2**62), Served(pinned, registry.load(model_id, int(version)).model))])
    return ServedModels(registry, audit_log=audit_log)


class SwitchListener(SignalListener):
    """A background thread that re-reads the registry whenever a promote/rollback message arrives."""

    def __init__(self, client: Any, served: ServedModels, channel: str = SWITCH_CHANNEL):
        self.served = served
        super().__init__(client, channel, lambda: served.refresh(trigger="redis"), "model switch")
