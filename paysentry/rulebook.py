"""Which ruleset a command runs with: the one at --rules, else the built-in default rulebook."""

from __future__ import annotations

from pathlib import Path

from paysentry.ports import RulesetLike
from rules.loader import DEFAULT_RULES_DIR, load_ruleset


def load_rulebook(path: Path | None) -> RulesetLike:
    return load_ruleset(path or DEFAULT_RULES_DIR)
