"""The drop folder's memory: which files and events were published, durably (SQLite, synchronous writes).

- `files`: one row per file content (SHA-256 digest): `publishing` while it is being published, `done`
  once every event of it is out. The same bytes dropped again are recognised and publish nothing.
- `published`: every (type, event_id) handed to the sink, written in the same transaction as the sink's
  position after the batch was acknowledged, so a restart skips exactly what is out.
- `positions`: where the sink stood (end of the events file, or each inbound partition's end offset)
  before a file started and after each recorded batch. A crash between a batch being acknowledged and
  its row being written leaves the batch after the last recorded position: a restart reads the sink
  from there and records what it finds before publishing the rest (`Sink.published_since`).
- `payments`: payments seen in pain.001 files, so a later pain.002 or statement can be converted
  (`LedgerIndex`, a `PaymentIndex` that lives here).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from paysentry.connectors.base import KnownPayment, PaymentIndex

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    digest TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, events INTEGER, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS published (
    event_type TEXT NOT NULL, event_id TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (event_type, event_id));
CREATE TABLE IF NOT EXISTS positions (
    digest TEXT NOT NULL, part TEXT NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (digest, part));
CREATE TABLE IF NOT EXISTS payments (
    payment_id TEXT PRIMARY KEY, amount TEXT NOT NULL, currency TEXT NOT NULL, message_id TEXT, block_id TEXT);
CREATE INDEX IF NOT EXISTS payments_by_message ON payments (message_id, block_id);
"""

EventKey = tuple[str, str]  # (type, event_id): what the engine takes for the same event


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)  # transactions are explicit
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a committed row survives a power cut, not just a crash
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def status(self, digest: str) -> str | None:
        row = self.db.execute("SELECT status FROM files WHERE digest = ?", (digest,)).fetchone()
        return row[0] if row else None

    def name_of(self, digest: str) -> str | None:
        row = self.db.execute("SELECT name FROM files WHERE digest = ?", (digest,)).fetchone()
        return row[0] if row else None

    def start(self, digest: str, name: str, events: int, positions: dict[str, int]) -> None:
        """The file is about to be published; `positions` is where the sink stands before it."""
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, 'publishing', ?, ?)", (digest, name, events, _now())
            )
            self._positions(digest, positions)

    def positions(self, digest: str) -> dict[str, int]:
        rows = self.db.execute("SELECT part, position FROM positions WHERE digest = ?", (digest,))
        return dict(rows.fetchall())

    def record(self, digest: str, keys: Iterable[EventKey], positions: dict[str, int]) -> None:
        """A batch is out (acknowledged by the sink): its events and the sink's new position, at once."""
        with self.transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO published VALUES (?, ?, ?)", [(kind, key, digest) for kind, key in keys]
            )
            self._positions(digest, positions)

    def finish(self, digest: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE files SET status = 'done', updated = ? WHERE digest = ?", (_now(), digest))
            self.db.execute("DELETE FROM positions WHERE digest = ?", (digest,))

    def unpublished(self, keys: list[EventKey]) -> set[EventKey]:
        """The keys of `keys` not published yet (by this file or any other)."""
        missing = set()
        for kind, key in keys:
            row = self.db.execute("SELECT 1 FROM published WHERE event_type = ? AND event_id = ?", (kind, key))
            if row.fetchone() is None:
                missing.add((kind, key))
        return missing

    def _positions(self, digest: str, positions: dict[str, int]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO positions VALUES (?, ?, ?)", [(digest, p, n) for p, n in positions.items()]
        )

    def transaction(self) -> _Transaction:
        """All writes inside are one transaction (committed on success, rolled back on an exception)."""
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if kind is not None else "COMMIT")


class LedgerIndex(PaymentIndex):
    """The payments of every pain.001 the folder has seen, kept in the ledger. A `read_only` index looks
    payments up but remembers nothing (the second, publishing pass over a file already recorded them)."""

    def __init__(self, ledger: Ledger, *, read_only: bool = False) -> None:
        super().__init__(ledger.db)
        self.read_only = read_only

    def remember(self, payment_id: str, known: KnownPayment) -> None:
        if not self.read_only:
            super().remember(payment_id, known)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
