"""The drop folder: files that land in a directory (as SFTP exchanges with banks and ERPs leave them) are
converted, published, and moved out of the way.

For each file that is complete (not a dot file or a `.part`/`.tmp` upload, unchanged for `settle`
seconds): its SHA-256 is looked up in the ledger; content already published is moved to `done/` and
publishes nothing. Otherwise the file is streamed twice, at the memory of one record whatever its size:
a first pass checks all of it (a control sum or a truncation shows only at the end; a refused file
publishes nothing), a second converts it again and publishes its new events in batches as they come
(each batch recorded in the ledger once the sink has acknowledged it), then the file goes to `done/` with its
rejected records beside it (`NAME.rejected`, JSON Lines). A file that cannot be converted at all goes to
`failed/` with a `NAME.reason` file saying why. A restart in the middle of a file asks the sink what it
already holds past the last recorded position, so nothing is published twice and nothing is lost.
One watcher per folder: a lock file in `DIR/.paysentry` refuses a second one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import IO, Any

import orjson

from paysentry.connectors.base import Conversion, Limits, safe_reason
from paysentry.connectors.formats import Format, stream_path
from paysentry.connectors.ledger import EventKey, Ledger, LedgerIndex
from paysentry.connectors.sinks import Sink
from paysentry.connectors.xmlsafe import BoundedReader

STATE_DIR = ".paysentry"
_UPLOADING = (".part", ".tmp", ".filepart", ".crdownload", ".partial")
# pain.001 first: the payments it names are what later status reports and statements are matched to.
_ORDER = {"pain.001": 0, "pain.002": 1, "camt.054": 2, "camt.053": 3}

Fault = Callable[[str, int], None]
Seq = tuple[int, dict[str, Any]]  # an event with its place in the file


class FolderBusy(RuntimeError):
    """Another watcher holds the folder."""


@dataclass
class FileOutcome:
    name: str
    status: str  # published | duplicate | failed | error (left in place, tried again on the next look)
    published: int = 0
    already: int = 0  # events of the file that were out before (a restart, or another file had them)
    rejected: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    reason: str | None = None


@dataclass
class WatchOptions:
    directory: Path
    chosen: Format
    tz: tzinfo
    limits: Limits = field(default_factory=Limits)
    batch: int = 500
    settle: float = 2.0


class Watcher:
    def __init__(self, options: WatchOptions, sink: Sink, fault: Fault | None = None) -> None:
        self.options = options
        self.sink = sink
        self.fault = fault or (lambda point, batch: None)
        self.state = options.directory / STATE_DIR
        self.done = options.directory / "done"
        self.failed = options.directory / "failed"
        self._lock: IO[bytes] | None = None
        self.ledger: Ledger | None = None

    async def __aenter__(self) -> Watcher:
        for folder in (self.state, self.done, self.failed):
            folder.mkdir(parents=True, exist_ok=True)
        lock = (self.state / "lock").open("ab")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise FolderBusy(f"another watcher is working on {self.options.directory}") from None
        self._lock = lock
        self.ledger = Ledger(self.state / "ledger.sqlite3")
        await self.sink.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.sink.stop()
        if self.ledger is not None:
            self.ledger.close()
        if self._lock is not None:
            self._lock.close()

    def ready_files(self) -> list[Path]:
        """Complete files waiting in the folder, pain.001 first, then oldest first."""
        now = time.time()
        found = []
        for path in self.options.directory.iterdir():
            name = path.name
            if name.startswith(".") or name.lower().endswith(_UPLOADING) or not path.is_file() or path.is_symlink():
                continue
            try:
                modified = path.stat().st_mtime
            except OSError:
                continue
            if now - modified >= self.options.settle:
                found.append((modified, path))
        return [path for _, path in sorted(found, key=lambda item: (self._rank(item[1]), item[0], item[1].name))]

    def _rank(self, path: Path) -> int:
        try:
            with path.open("rb") as handle:
                head = handle.read(4096)
        except OSError:
            return 9
        for name, rank in _ORDER.items():
            if f":{name}.".encode() in head:
                return rank
        return 5

    async def scan(self) -> list[FileOutcome]:
        outcomes = []
        for path in self.ready_files():
            try:
                outcomes.append(await self.process(path))
            except Exception as exc:  # the sink is down, the disk is full: the file stays for the next look
                reason = safe_reason(f"{type(exc).__name__}: {exc}")
                outcomes.append(FileOutcome(path.name, "error", reason=reason))
        return outcomes

    async def process(self, path: Path) -> FileOutcome:
        assert self.ledger is not None
        try:
            digest = file_digest(path, self.options.limits)
        except Exception as exc:  # unreadable, too large, vanished: the file is set aside with the reason
            reason = getattr(exc, "reason", None) or f"cannot read: {getattr(exc, 'strerror', None) or exc}"
            return self._set_aside(path, reason)
        if self.ledger.status(digest) == "done":
            self._move(path, self.done)
            return FileOutcome(path.name, "duplicate", reason=f"same content as {self.ledger.name_of(digest)}")
        chosen = self.options.chosen
        if chosen.mapping is not None and not path.name.lower().endswith(".csv"):
            chosen = Format("auto")  # the mapping is for the folder's CSV exports; bank files are recognised
        # First pass: the whole file is checked (a control sum is only known at its end) and the payments a
        # pain.001 names are remembered in one write; nothing is published from a file that is refused.
        with self.ledger.transaction():
            checked = self._convert(path, chosen, LedgerIndex(self.ledger))
            for _ in checked[1]:
                pass
        conversion = checked[0]
        if conversion.refused is not None:
            where = conversion.rejections[-1].where if conversion.rejections else "file"
            return self._set_aside(path, f"{where}: {conversion.refused}")
        found: set[EventKey] = set()
        if self.ledger.status(digest) == "publishing":  # a restart in the middle of this file
            found = await self.sink.published_since(self.ledger.positions(digest))
        else:
            self.ledger.start(digest, path.name, sum(conversion.emitted.values()), await self.sink.positions())
        # Second pass: the same events again, published in batches as they stream.
        again, events = self._convert(path, chosen, LedgerIndex(self.ledger, read_only=True))
        published = total = batches = 0
        for batch in _batches(enumerate(events, start=1), self.options.batch):
            keys = [(str(e["type"]), str(e["event_id"])) for _, e in batch]
            total += len(keys)
            out_before = [key for key in keys if key in found]  # out before the crash, not yet recorded
            if out_before:
                self.ledger.record(digest, out_before, {})
            waiting = self.ledger.unpublished(keys)
            todo = [(seq, event) for (seq, event), key in zip(batch, keys, strict=True) if key in waiting]
            if not todo:
                continue
            batches += 1
            reached = await self.sink.publish(todo)
            self.fault("published", batches)
            self.ledger.record(digest, [(str(e["type"]), str(e["event_id"])) for _, e in todo], reached)
            published += len(todo)
        if again.refused is not None:  # the file changed between the passes: it is looked at again later
            raise RuntimeError(f"the file changed while it was converted: {again.refused}")
        if conversion.rejections:
            rejected = self._free(self.done / f"{path.name}.rejected")
            rejected.write_bytes(b"".join(orjson.dumps(r.to_dict()) + b"\n" for r in conversion.rejections))
        self.ledger.finish(digest)
        self._move(path, self.done)
        return FileOutcome(path.name, "published", published=published, already=total - published,
                           rejected=len(conversion.rejections), counts=dict(conversion.counts()))  # fmt: skip

    def _convert(self, path: Path, chosen: Format, index: LedgerIndex) -> tuple[Conversion, Iterator[dict[str, Any]]]:
        options = self.options
        return stream_path(path, chosen, tz=options.tz, limits=options.limits, index=index)

    def _set_aside(self, path: Path, reason: str) -> FileOutcome:
        reason = safe_reason(reason)
        moved = self._move(path, self.failed)
        if moved is not None:
            self._free(self.failed / f"{moved.name}.reason").write_text(reason + "\n", encoding="utf-8")
        return FileOutcome(path.name, "failed", reason=reason)

    def _move(self, path: Path, folder: Path) -> Path | None:
        target = self._free(folder / path.name)
        try:
            os.replace(path, target)
        except OSError:
            return None
        return target

    @staticmethod
    def _free(target: Path) -> Path:
        """`target`, or `target` with -1, -2, ... before its suffix when that name is taken."""
        candidate, number = target, 0
        while candidate.exists():
            number += 1
            candidate = target.with_name(f"{target.stem}-{number}{target.suffix}")
        return candidate


def file_digest(path: Path, limits: Limits) -> str:
    """SHA-256 of the file, read in chunks; FileRefused when it is larger than the limit."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        reader = BoundedReader(handle, limits.max_file_bytes)
        while chunk := reader.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _batches(items: Iterator[Seq], size: int) -> Iterator[list[Seq]]:
    batch: list[Seq] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
