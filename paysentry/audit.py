"""Append-only audit logs (JSON Lines): one record per line, never rewritten.

Used for rule loads (`rules/reload.py`) and for silences and acknowledgements (`paysentry/alerts`),
whose Redis records expire: the audit keeps who muted or acknowledged what, and until when.
"""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def os_user() -> str:
    """The account the process runs as: recorded beside any name a user typed (`--author`, `--by`)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry, e.g. an arbitrary container uid
        return f"uid:{os.getuid()}"


class AuditLog:
    """`append(record)` adds one line to the file at `path` (created with its folder if missing)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        """Write `record` (with a `time` and the `os_user` unless it has them) as one line. The file
        is opened in append mode and the line written in one call, so concurrent writers never interleave
        or overwrite lines. Raises OSError when the file cannot be written; callers decide whether that
        stops them."""
        line = orjson.dumps({"time": now_text(), "os_user": os_user(), **record}, default=str) + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            written = 0
            while written < len(line):  # a regular file takes it in one go; the loop covers a short write
                written += os.write(fd, line[written:])
        finally:
            os.close(fd)
