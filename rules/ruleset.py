"""A compiled ruleset: what the core evaluates for every scored event (it implements RulesetLike)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paysentry.contract import RuleHit
from paysentry.params import DEFAULT_COMPANY, CompanyParams
from paysentry.ports import RuleContext
from rules.compiler import Env, Fn, ListValue
from rules.template import Template

log = logging.getLogger("paysentry.rules")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    group: str
    description: str
    status: str  # active | shadow | disabled
    severity: str
    action: str
    event_types: tuple[str, ...]
    expr: str
    condition: Fn
    reason: Template
    labels: Mapping[str, str]
    annotations: Mapping[str, Template]
    file: str  # relative to the rules directory
    line: int
    fingerprint: str  # changes when anything that decides or words this rule's hits changes

    def hit(self, env: Env) -> RuleHit:
        return RuleHit(
            rule_id=self.id,
            severity=self.severity,  # type: ignore[arg-type]
            action=self.action,  # type: ignore[arg-type]
            reason=self.reason.render(env),
            labels=dict(self.labels),
            annotations={k: t.render(env) for k, t in self.annotations.items()},
        )


@dataclass
class Ruleset:
    """Implements paysentry.ports.RulesetLike. Immutable once built; hot reload swaps whole rulesets."""

    version: str  # "sha256:<16 hex>" over every file that shapes decisions (rules, lists, companies)
    rules: tuple[CompiledRule, ...]
    companies: Mapping[str, CompanyParams]
    lists: Mapping[str, ListValue]
    files: Mapping[str, str]  # relative path -> sha256 of its bytes
    root: str = ""
    _by_type: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict, repr=False)
    _by_id: dict[str, CompiledRule] = field(default_factory=dict, repr=False)
    _last_error_log: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {r.id: r for r in self.rules}
        by_type: dict[str, list[CompiledRule]] = {}
        for rule in self.rules:
            if rule.status == "disabled":
                continue
            for event_type in rule.event_types:
                by_type.setdefault(event_type, []).append(rule)
        self._by_type = {k: tuple(v) for k, v in by_type.items()}

    # -- RulesetLike -----------------------------------------------------------------------------------
    def company(self, company_code: str | None) -> CompanyParams:
        if company_code is not None and company_code in self.companies:
            return self.companies[company_code]
        return self.companies.get("default", DEFAULT_COMPANY)

    def evaluate(self, ctx: RuleContext) -> tuple[list[RuleHit], list[RuleHit]]:
        rules = self._by_type.get(ctx.event_type)
        if not rules:
            return [], []
        env = Env(ctx.event_type, ctx.event, ctx.features, ctx.company, ctx.window)
        hits: list[RuleHit] = []
        shadow: list[RuleHit] = []
        for rule in rules:
            try:
                fired = rule.condition(env) is True
                hit = rule.hit(env) if fired else None
            except Exception as exc:  # a bad value must not stop the other rules, nor the stream
                self._log_rule_error(rule, exc)
                continue
            if hit is not None:
                (hits if rule.status == "active" else shadow).append(hit)
        return hits, shadow

    # -- helpers ---------------------------------------------------------------------------------------
    def rule(self, rule_id: str) -> CompiledRule | None:
        return self._by_id.get(rule_id)

    @property
    def rule_ids(self) -> list[str]:
        return [r.id for r in self.rules]

    def summary(self) -> dict[str, Any]:
        counts = {s: sum(1 for r in self.rules if r.status == s) for s in ("active", "shadow", "disabled")}
        return {
            "version": self.version,
            "rules": len(self.rules),
            **counts,
            "lists": len(self.lists),
            "companies": sorted(self.companies),
            "root": self.root,
        }

    def _log_rule_error(self, rule: CompiledRule, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log.get(rule.id, -1e9) >= 60.0:
            self._last_error_log[rule.id] = now
            log.error("rule %s failed on an event and was skipped: %r (logged once a minute)", rule.id, exc)
