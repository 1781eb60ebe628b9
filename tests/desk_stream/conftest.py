"""Fixtures of the desk-in-the-stream tests: the desk's databases (SQLite and a real PostgreSQL), the
desk served by a live uvicorn, and the stream's rig (a real broker and `paysentry worker` processes)."""

from __future__ import annotations

from tests.desk.conftest import (  # noqa: F401
    approvals,
    approvals_path,
    database_url,
    db,
    desk_app,
    desk_settings,
    http,
    live_desk,
    sessions,
)
from tests.stream.conftest import stream_rig  # noqa: F401
