"""Which ruleset a command runs with: the one at --rules, else the built-in default rulebook."""

from __future__ import annotations

from pathlib import Path

from rules.context import RulesetLike


def load_rulebook(path: Path | None) -> RulesetLike:
    try:
        from rules.loader import DEFAULT_RULES_DIR, load_ruleset
    except ImportError:  # the rule language is not installed: run model-only
        from paysentry.core import EmptyRuleset

        return EmptyRuleset()
    return load_ruleset(path or DEFAULT_RULES_DIR)
