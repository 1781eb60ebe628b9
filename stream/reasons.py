"""Reasons in dead letters: what failed, in one bounded line, without a traceback and without the record
(a record that failed can hold anything a producer sent)."""

from __future__ import annotations

from pydantic import ValidationError

MAX_REASON = 500  # characters


def exception_reason(failed: BaseException) -> str:
    """Type and message of an exception, bounded; no traceback."""
    if isinstance(failed, ValidationError):
        return f"ValidationError: {validation_reason(failed)}"
    text = f"{type(failed).__name__}: {failed}"
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "..."


def validation_reason(invalid: ValidationError) -> str:
    """Where and what; pydantic's copy of each input value is left out."""
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}"
                for e in invalid.errors(include_url=False, include_input=False)]  # fmt: skip
    text = "; ".join(problems)
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "..."
