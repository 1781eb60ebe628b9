"""Model lifecycle: signed snapshots of the online model, kept in Redis (shared by workers) or a file.

A worker restores the newest snapshot when it starts, so a restart does not send the model back to
warm-up, and saves one every few thousand payments. Snapshots are pickles, and unpickling runs code,
so each one carries an HMAC made with a key from the environment: a snapshot that was not written by
a holder of the key (or was altered) is refused, never loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from models.scorer import CalibratedHalfSpaceTrees

_MAGIC = b"PSMODEL1"
log = logging.getLogger(__name__)


class SnapshotRefused(ValueError):
    """The snapshot is not ours (bad signature), or not a model."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    version: str
    learned: int
    saved_at: float


def dump_model(model: CalibratedHalfSpaceTrees, key: bytes) -> bytes:
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    meta = orjson.dumps({"version": model.version, "learned": model.learned, "saved_at": time.time()})
    body = len(meta).to_bytes(4, "big") + meta + payload
    return _MAGIC + hmac.new(key, body, hashlib.sha256).digest() + body


def load_model(blob: bytes, key: bytes) -> tuple[CalibratedHalfSpaceTrees, SnapshotInfo]:
    if not blob.startswith(_MAGIC):
        raise SnapshotRefused("not a paysentry model snapshot")
    signature, body = blob[len(_MAGIC) : len(_MAGIC) + 32], blob[len(_MAGIC) + 32 :]
    if not hmac.compare_digest(signature, hmac.new(key, body, hashlib.sha256).digest()):
        raise SnapshotRefused("snapshot signature does not match: refusing to unpickle it")
    size = int.from_bytes(body[:4], "big")
    meta = orjson.loads(body[4 : 4 + size])
    model = pickle.loads(body[4 + size :])  # noqa: S301 - signed by a holder of the key, checked above
    if not isinstance(model, CalibratedHalfSpaceTrees):
        raise SnapshotRefused(f"snapshot holds a {type(model).__name__}, not a model")
    return model, SnapshotInfo(meta["version"], meta["learned"], meta["saved_at"])


class SnapshotStore(Protocol):
    def save(self, model: CalibratedHalfSpaceTrees) -> None: ...

    def load(self) -> tuple[CalibratedHalfSpaceTrees, SnapshotInfo] | None: ...


class FileSnapshots:
    def __init__(self, path: Path, key: bytes):
        self.path, self.key = path, key

    def save(self, model: CalibratedHalfSpaceTrees) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_bytes(dump_model(model, self.key))
        partial.replace(self.path)  # atomic: a reader never sees half a snapshot

    def load(self) -> tuple[CalibratedHalfSpaceTrees, SnapshotInfo] | None:
        return load_model(self.path.read_bytes(), self.key) if self.path.exists() else None


class RedisSnapshots:
    """Newest snapshot per model name; the previous one is kept for a rollback."""

    def __init__(self, client: Any, key: bytes, name: str = "default", prefix: str = "paysentry:model:"):
        self.client, self.key = client, key
        self.latest = f"{prefix}{name}:latest"
        self.previous = f"{prefix}{name}:previous"

    def save(self, model: CalibratedHalfSpaceTrees) -> None:
        self.save_blob(dump_model(model, self.key))

    def save_blob(self, blob: bytes) -> None:
        """Store an already dumped snapshot (dump on the thread that owns the model, write anywhere)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.copy(self.latest, self.previous, replace=True)
        pipe.set(self.latest, blob)
        pipe.execute()

    def load(self) -> tuple[CalibratedHalfSpaceTrees, SnapshotInfo] | None:
        blob = self.client.get(self.latest)
        return None if blob is None else load_model(blob, self.key)

    def rollback(self) -> bool:
        """Make the previous snapshot the newest again (after a bad model went out)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.exists(self.previous)
        pipe.copy(self.previous, self.latest, replace=True)
        exists, copied = pipe.execute()
        return bool(exists and copied)


def restore_or_new(store: SnapshotStore | None, **params: Any) -> CalibratedHalfSpaceTrees:
    """The newest good snapshot, or a fresh model when there is none (or it is refused)."""
    if store is not None:
        try:
            loaded = store.load()
        except SnapshotRefused as refused:
            log.error("model snapshot refused, starting a fresh model: %s", refused)
            loaded = None
        if loaded is not None:
            return loaded[0]
    return CalibratedHalfSpaceTrees(**params)
