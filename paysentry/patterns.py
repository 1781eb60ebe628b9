"""Regular expressions written by people (rule conditions, alert matchers), run on untrusted values.

They are compiled with RE2 (the `google-re2` package), which matches in time linear in the input, so
a pattern like `(a|aa)+$` cannot backtrack for minutes on a crafted vendor name. RE2 has no
backreferences or lookaround; such a pattern is refused when the file is checked, with RE2's reason.
"""

from __future__ import annotations

from typing import Any

import re2

MAX_PATTERN = 500
"""Characters in one pattern: enough for an alternation of a few dozen names."""

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the reason is reported to the user, not to stderr


class PatternError(ValueError):
    """A pattern that cannot be used; the text says why, in one line."""


def compile_pattern(pattern: str) -> Any:
    """The compiled pattern (use `.fullmatch` / `.search`); raises PatternError."""
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"regular expression longer than {MAX_PATTERN} characters")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        if "escape" in reason or "perl operator" in reason:
            reason += " (RE2 syntax: no backreferences or lookaround)"
        raise PatternError(reason) from None
