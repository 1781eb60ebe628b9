"""Model lifecycle: signed snapshots of the online model, kept in Redis (shared by workers) or a file.

A worker restores the newest snapshot when it starts, so a restart does not send the model back to
warm-up, and saves one every few minutes. A snapshot is the model's state as JSON data
(models.model_state), never a pickle: loading one rebuilds a fresh model from checked numbers and names,
so even a snapshot written by someone holding the key cannot run code. Each snapshot also carries an
HMAC-SHA256 made with its own signing key (PAYSENTRY_MODEL_SIGNING_KEY, 32 bytes or more, shared by the
workers and by nothing else): a snapshot that was not written by a holder of the key, or was altered or
cut short, is refused before it is even parsed.

The embedded run (`paysentry replay`, `demo`) takes no snapshots: it starts a fresh model every run.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from models.model_state import StateRefused, model_from_state, model_state
from models.scorer import CalibratedHalfSpaceTrees

_MAGIC = b"PSMODEL2"  # PSMODEL1 was a pickle: refused
_SIGNATURE_BYTES = 32
MIN_KEY_BYTES = 32
MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024
log = logging.getLogger(__name__)


class SnapshotRefused(ValueError):
    """The snapshot is not ours (bad signature), or not a model."""


class WeakSigningKey(ValueError):
    """The signing key is missing or too short to be a secret."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    version: str
    learned: int
    saved_at: float


def check_signing_key(key: bytes | None) -> bytes:
    """The key itself, or WeakSigningKey (the message never shows the key)."""
    if not key:
        raise WeakSigningKey("PAYSENTRY_MODEL_SIGNING_KEY is not set: model snapshots need a signing key")
    if len(key) < MIN_KEY_BYTES:
        raise WeakSigningKey(
            f"PAYSENTRY_MODEL_SIGNING_KEY is too short ({len(key)} bytes): use {MIN_KEY_BYTES} bytes or more "
            "(e.g. `openssl rand -hex 32`)"
        )
    return key


def sign_body(magic: bytes, body: bytes, key: bytes) -> bytes:
    """`magic` + HMAC-SHA256 of `body` with `key` + `body`: what every signed model blob looks like."""
    return magic + hmac.new(check_signing_key(key), body, hashlib.sha256).digest() + body


def open_signed(magic: bytes, blob: bytes, key: bytes, what: str = "snapshot", limit: int = MAX_SNAPSHOT_BYTES) -> Any:
    """The JSON data inside a blob made by `sign_body`; SnapshotRefused if it is too large, of another
    kind, not signed with `key`, altered, or not JSON. Nothing is parsed before the signature matches."""
    key = check_signing_key(key)
    if len(blob) > limit:
        raise SnapshotRefused(f"{what} of {len(blob)} bytes is larger than {limit}")
    if not blob.startswith(magic):
        raise SnapshotRefused(f"not a paysentry model {what} (or one in an older format)")
    signature, body = blob[len(magic) : len(magic) + _SIGNATURE_BYTES], blob[len(magic) + _SIGNATURE_BYTES :]
    if not hmac.compare_digest(signature, hmac.new(key, body, hashlib.sha256).digest()):
        raise SnapshotRefused(f"{what} signature does not match: not written with this signing key, or altered")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SnapshotRefused(f"{what} is not valid JSON: {exc}") from None


def dump_model(model: CalibratedHalfSpaceTrees, key: bytes) -> bytes:
    body = orjson.dumps({"version": model.version, "learned": model.learned, "saved_at": time.time(),
                         "model": model_state(model)})  # fmt: skip
    return sign_body(_MAGIC, body, key)


def load_model(blob: bytes, key: bytes) -> tuple[CalibratedHalfSpaceTrees, SnapshotInfo]:
    data = open_signed(_MAGIC, blob, key)
    if not isinstance(data, dict) or set(data) != {"version", "learned", "saved_at", "model"}:
        raise SnapshotRefused("snapshot does not have the fields version, learned, saved_at, model")
    try:
        model = model_from_state(data["model"])
    except StateRefused as exc:
        raise SnapshotRefused(str(exc)) from None
    saved_at = data["saved_at"]
    if type(saved_at) not in (int, float) or data["version"] != model.version or data["learned"] != model.learned:
        raise SnapshotRefused("snapshot header does not match the model it holds")
    return model, SnapshotInfo(model.version, model.learned, float(saved_at))


class SnapshotStore(Protocol):
    def save(self, model: CalibratedHalfSpaceTrees) -> None: ...

    def load(self) -> tuple[CalibratedHalfSpaceTrees, SnapshotInfo] | None: ...


class FileSnapshots:
    def __init__(self, path: Path, key: bytes):
        self.path, self.key = path, check_signing_key(key)

    def save(self, model: CalibratedHalfSpaceTrees) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_bytes(dump_model(model, self.key))
        partial.replace(self.path)  # atomic: a reader never sees half a snapshot

    def load(self) -> tuple[CalibratedHalfSpaceTrees, SnapshotInfo] | None:
        if not self.path.exists():
            return None
        if self.path.stat().st_size > MAX_SNAPSHOT_BYTES:
            raise SnapshotRefused(f"snapshot file is larger than {MAX_SNAPSHOT_BYTES} bytes")
        return load_model(self.path.read_bytes(), self.key)


class RedisSnapshots:
    """Newest snapshot per model name; the previous one is kept for a rollback."""

    def __init__(self, client: Any, key: bytes, name: str = "default", prefix: str = "paysentry:model:"):
        self.client, self.key = client, check_signing_key(key)
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
        if (self.client.strlen(self.latest) or 0) > MAX_SNAPSHOT_BYTES:
            raise SnapshotRefused(f"snapshot in Redis is larger than {MAX_SNAPSHOT_BYTES} bytes")
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
