"""What every connector shares: the conversion result, rejections, limits, and the last check of an event.

A connector is a pure function from a file's bytes to contract events (plain dicts, as the ERP or the bank
would have sent them: the payee account is still in clear, because ingest is where it becomes a keyed hash
and a mask) plus one `Rejection` per record it could not convert. Every event is checked by the ingest
boundary itself (`paysentry.contract.parse_event`) before it is handed on, so a converted event never
dead-letters in the engine. Everything written about a record (rejections, reasons, console) goes through
`paysentry.redaction`, so no clear account leaves a connector except inside the event it belongs to.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from paysentry.contract import InvalidEvent, parse_event
from paysentry.redaction import scrub_text

MAX_REASON_CHARS = 500
MAX_REJECTIONS_LISTED = 10_000  # per file; past that, rejections are only counted
_CHECK_KEY = secrets.token_bytes(32)  # the ingest check needs a key; its hashes are thrown away


@dataclass(frozen=True)
class Limits:
    """Bounds on one input file: anything past them is refused with the bound named, never read on."""

    max_file_bytes: int = 64 * 1024 * 1024
    max_records: int = 200_000
    max_xml_depth: int = 40  # ISO 20022 payment messages are at most about 15 levels deep
    max_xml_elements: int = 10_000_000
    max_field_chars: int = 2048  # the longest ISO 20022 text is 140; CSV cells are held to this as well
    max_csv_columns: int = 200
    max_record_elements: int = 100_000  # elements held at once: one record (or a header) while streaming
    max_line_bytes: int = 1024 * 1024  # one CSV or MT940 line
    max_statement_bytes: int = 4 * 1024 * 1024  # one MT940 statement, held while it is parsed


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Rejection:
    """A record (or a whole file) that was not converted: where it is and why, with no clear account."""

    source: str
    where: str  # "line 12", or an XPath with its line
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.source, "where": self.where, "reason": self.reason}


def safe_reason(text: str) -> str:
    """A reason fit for a file or a console: account-like tokens masked, bounded."""
    text = scrub_text(text)
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "…"


class FileRefused(ValueError):
    """The whole file cannot be converted (not readable, not well-formed, past a limit, wrong format)."""

    def __init__(self, reason: str, where: str = "file"):
        super().__init__(safe_reason(reason))
        self.reason = safe_reason(reason)
        self.where = where


class RecordRefused(ValueError):
    """One record cannot be converted; the rest of the file goes on."""


@dataclass
class Conversion:
    """The outcome of converting one file."""

    source: str
    format: str
    events: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # records that are not events (credits, pending...)
    refused: str | None = None  # the reason the whole file was refused
    unlisted: int = 0  # rejections past MAX_REJECTIONS_LISTED, counted only
    limits: Limits = DEFAULT_LIMITS
    emitted: Counter[str] = field(default_factory=Counter)  # events accepted, by type (streamed or kept)

    def _count_record(self) -> None:
        if sum(self.emitted.values()) + len(self.rejections) + self.unlisted >= self.limits.max_records:
            raise FileRefused(f"more than {self.limits.max_records} records in one file")

    def reject(self, where: str, reason: str) -> None:
        """One record not converted, and why (raises FileRefused past the file's record limit)."""
        self._count_record()
        if len(self.rejections) >= MAX_REJECTIONS_LISTED:
            self.unlisted += 1
            return
        self.rejections.append(Rejection(self.source, where, safe_reason(reason)))

    def refuse(self, exc: FileRefused) -> None:
        self.refused = exc.reason
        self.rejections.append(Rejection(self.source, exc.where, exc.reason))

    def add(self, event: dict[str, Any], where: str) -> None:
        """Keep `event` (in `events`) if the ingest boundary accepts it, else reject it."""
        clean = self.accept(event, where)
        if clean is not None:
            self.events.append(clean)

    def accept(self, event: dict[str, Any], where: str) -> dict[str, Any] | None:
        """`event` as it is handed on if the ingest boundary accepts it (counted), else None and a rejection
        with the boundary's reason. Streaming converters yield what this returns and keep nothing."""
        self._count_record()
        limits = self.limits
        clean = {name: value for name, value in event.items() if value is not None and value != {}}
        too_long = _overlong(clean, limits.max_field_chars)
        if too_long is not None:
            self.reject(where, f"{too_long} is longer than the {limits.max_field_chars} characters allowed")
            return None
        try:
            parse_event(clean, account_key=_CHECK_KEY)
        except InvalidEvent as exc:
            self.reject(where, f"not a valid {clean.get('type', 'event')}: {exc.reason}")
            return None
        self.emitted[str(clean["type"])] += 1
        return clean

    def counts(self) -> Counter[str]:
        return Counter(self.emitted)


def _overlong(event: dict[str, Any], limit: int) -> str | None:
    """The first field (or extra field) whose text is longer than `limit`, or None."""
    for name, value in event.items():
        values = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
        if any(isinstance(item, str) and len(item) > limit for item in values):
            return name
    return None


# -- values ---------------------------------------------------------------------------------------------


def money_text(value: str | Decimal, what: str = "amount", *, allow_zero: bool = False) -> str:
    """An exact decimal amount as the contract writes it ('1234.50'): positive, at most 4 decimals."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(value.strip())
    except (InvalidOperation, ValueError):
        raise RecordRefused(f"{what} {str(value)[:40]!r} is not a number") from None
    if not amount.is_finite() or amount < 0 or (amount == 0 and not allow_zero):
        raise RecordRefused(f"{what} {str(value)[:40]!r} is not a positive amount")
    if amount >= Decimal("1e15"):
        raise RecordRefused(f"{what} {str(value)[:40]!r} is larger than the contract allows")
    if amount != amount.quantize(Decimal("0.0001")):
        raise RecordRefused(f"{what} {str(value)[:40]!r} has more than 4 decimals")
    text = format(amount, "f")
    if "." in text and len(text.split(".")[1]) > 4:  # trailing zeros past the 4th decimal
        text = format(amount.quantize(Decimal("0.0001")), "f")
    return text


def zone(name: str) -> tzinfo:
    """A time zone by IANA name ('UTC', 'Europe/Berlin')."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name like Europe/Berlin)") from None


def iso_time(text: str, tz: tzinfo, what: str = "time") -> str:
    """An ISO 8601 date-time as RFC 3339 with an offset; a time written without one is read in `tz`."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RecordRefused(f"{what} {text[:40]!r} is not an ISO date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.isoformat()


def iso_date(text: str, what: str = "date") -> date:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise RecordRefused(f"{what} {text[:40]!r} is not an ISO date") from None


def end_of_day(day: date, tz: tzinfo) -> str:
    """A date-only booking as a moment: the end of that day, so it sorts after the day's releases."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=tz).isoformat()


_ID_UNSAFE = re.compile(r"[^\x21-\x7e]")


def stable_id(prefix: str, *parts: str | None, limit: int = 128) -> str:
    """A deterministic id from the record's own references, readable when it fits and hashed when not:
    converting the same record twice gives the same id, so a redelivery is recognised as one."""
    readable = prefix + ":" + "/".join(_ID_UNSAFE.sub("_", part or "-") for part in parts)
    if len(readable) <= limit:
        return readable
    digest = hashlib.sha256("\x1f".join(part or "" for part in parts).encode()).hexdigest()[:40]
    return f"{prefix}:{digest}"


def clip(text: str | None, limit: int) -> str | None:
    """Text cut to a contract field's length (None and empty stay absent)."""
    if text is None:
        return None
    text = " ".join(text.split())
    return text[:limit] or None


@dataclass(frozen=True)
class KnownPayment:
    amount: str
    currency: str
    message_id: str | None
    payment_information_id: str | None


class PaymentIndex:
    """Payments seen in payment orders (pain.001), so a status report or a statement that leaves out the
    amount or names only the original message can still be converted. Kept in SQLite so a file of any size
    costs no memory: a temporary database for one `convert` run, the drop folder's ledger across files and
    restarts (`ledger.LedgerIndex`)."""

    def __init__(self, db: sqlite3.Connection | None = None) -> None:
        if db is None:
            db = sqlite3.connect("")  # "": a private temporary database on disk, deleted when closed
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.executescript(PAYMENTS_SCHEMA)
        self.db = db

    def remember(self, payment_id: str, known: KnownPayment) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO payments VALUES (?, ?, ?, ?, ?)",
            (payment_id, known.amount, known.currency, known.message_id, known.payment_information_id),
        )

    def get(self, payment_id: str) -> KnownPayment | None:
        row = self.db.execute(
            "SELECT amount, currency, message_id, block_id FROM payments WHERE payment_id = ?", (payment_id,)
        ).fetchone()
        return KnownPayment(*row) if row else None

    def of_message(
        self, message_id: str, payment_information_id: str | None = None
    ) -> Iterator[tuple[str, KnownPayment]]:
        query = "SELECT payment_id, amount, currency, message_id, block_id FROM payments WHERE message_id = ?"
        if payment_information_id is None:
            rows = self.db.execute(query, (message_id,))
        else:
            rows = self.db.execute(query + " AND block_id = ?", (message_id, payment_information_id))
        for row in rows:
            yield row[0], KnownPayment(*row[1:])


PAYMENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    payment_id TEXT PRIMARY KEY, amount TEXT NOT NULL, currency TEXT NOT NULL, message_id TEXT, block_id TEXT);
CREATE INDEX IF NOT EXISTS payments_by_message ON payments (message_id, block_id);
"""


class SeenKeys:
    """A set of keys on disk (a temporary SQLite database): 'seen before?' for any number of records at a
    few MB of memory. `mark()` and `undo()` take back what a file added when that file is refused."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=MEMORY")  # the undo journal of a savepoint
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")
        self.db.execute("BEGIN")

    def add(self, key: str) -> bool:
        """True when `key` is new (and now remembered), False when it was seen before."""
        return self.db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (key,)).rowcount == 1

    def mark(self) -> None:
        self.db.execute("SAVEPOINT file")

    def undo(self) -> None:
        """Forget every key added since `mark()`."""
        self.db.execute("ROLLBACK TO file")

    def close(self) -> None:
        self.db.close()
