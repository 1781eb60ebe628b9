"""What the core asks of the rules: the context a rule is evaluated in, and the ruleset it calls.

The core owns these seams; `rules` implements them (rules.ruleset.Ruleset, rules.reload) and the core
builds one RuleContext per scored event, so neither package needs the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from paysentry.contract import Event, RuleHit
from paysentry.params import CompanyParams

WindowEntity = Literal["vendor", "company", "creator", "account", "channel"]
WindowStat = Literal["count", "sum", "mean", "std", "max", "failures"]

# Pseudo event types the core emits from its timers (they have no inbound event of their own).
TIMER_EVENT_TYPES = ("sla.unsettled", "psp.unmatched")


class WindowReader(Protocol):
    def __call__(self, entity: WindowEntity, stat: WindowStat, seconds: int) -> float:
        """Aggregate over the last `seconds` of event time before this event (this event excluded).
        Amount stats are in the reporting currency. `failures` counts failed/returned platform events
        (meaningful for `channel`). Unknown entity (e.g. no creator on the event) gives 0."""
        ...


@dataclass(frozen=True, slots=True)
class RuleContext:
    event_type: str  # an inbound event type, or one of TIMER_EVENT_TYPES
    event: Event | None  # the inbound event; for timer pseudo-events, the payment's last ERP event
    features: Mapping[str, Any]  # paysentry.feature_catalog.FEATURES names -> value (None when not applicable)
    window: WindowReader
    company: CompanyParams


class RulesetLike(Protocol):
    """What the core needs from a compiled ruleset (or a holder that swaps rulesets on reload)."""

    @property
    def version(self) -> str: ...

    def company(self, company_code: str | None) -> CompanyParams: ...

    def evaluate(self, ctx: RuleContext) -> tuple[list[RuleHit], list[RuleHit]]:
        """(active hits, shadow hits); disabled rules never appear."""
        ...
