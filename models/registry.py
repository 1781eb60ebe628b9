"""The model registry: versioned, signed supervised models and the history of which one is live.

A version is a frozen model (plain numbers, never a pickle) with its card: the kind of model (`logistic`,
a `LinearModel`, or `hgb`, a boosted `TreeEnsemble` exported from scikit-learn), the inputs it reads, the
training window, its metrics, who made it and when. Each version is stored as one blob signed like the
online model's snapshots (models.lifecycle, PAYSENTRY_MODEL_SIGNING_KEY): a blob that is not signed with
the key, or was altered, is refused before it is parsed, and the parsed data is checked (types, finite
numbers, sizes, tree shapes) before a model is built from it (`ModelRefused`).

The promotion history is a signed list of entries (model, version, role, effective from, who, when):
`promote` and `rollback` append a `live` entry, `shadow` a `shadow` entry; nothing is ever rewritten.
An entry takes effect at an *event time*, so the engine picks the live model for each payment from the
history by the payment's own time: `paysentry replay` over the same events and the same registry gives
the same scores as the stream, whatever the number of workers (models.serving).

Two backends with the same layout: a directory (`DirectoryStore`) and Redis (`RedisStore`, shared by the
workers, which switch together on the message `promote`/`rollback` publish).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.lifecycle import SnapshotRefused, check_signing_key, open_signed, sign_body
from models.supervised import LinearModel
from models.tree_model import TreeEnsemble, TreeRefused
from paysentry.audit import AuditLog, now_text, os_user

_VERSION_MAGIC = b"PSMODELV1"
_HISTORY_MAGIC = b"PSMODELH1"
MAX_MODEL_BYTES = 16 * 1024 * 1024  # a tree ensemble of a few hundred trees is a few MB of JSON
MAX_HISTORY_BYTES = 16 * 1024 * 1024
MAX_INPUTS = 1000
MAX_HISTORY = 10_000
SWITCH_CHANNEL = "paysentry:models:switch"
MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
Role = Literal["live", "shadow"]
ModelKind = Literal["logistic", "hgb"]
FrozenModel = LinearModel | TreeEnsemble


class RegistryError(ValueError):
    """A request the registry cannot carry out (unknown model or version, nothing to roll back to)."""


class ModelRefused(SnapshotRefused, RegistryError):
    """A signed model version whose content is malformed, of an unknown kind, or beyond the limits."""


def _frozen() -> ConfigDict:
    return ConfigDict(extra="forbid", frozen=True)


class ModelCard(BaseModel):
    model_config = _frozen()
    model_id: str = Field(max_length=64)
    version: int = Field(ge=1, le=10**9)
    kind: ModelKind = "logistic"
    inputs: tuple[str, ...] = Field(max_length=MAX_INPUTS)
    trained_from: str | None = Field(default=None, max_length=40)
    trained_to: str | None = Field(default=None, max_length=40)
    metrics: dict[str, float] = Field(default_factory=dict, max_length=64)
    created_by: str = Field(max_length=128)
    created_at: str = Field(max_length=40)
    notes: str = Field(default="", max_length=2000)

    @field_validator("model_id")
    @classmethod
    def _model_id(cls, value: str) -> str:
        if not MODEL_ID.match(value):
            raise ValueError("a model id is 1-64 lowercase letters, digits, '.', '_' or '-'")
        return value

    @property
    def name(self) -> str:
        return f"{self.model_id}@v{self.version}"


class _LinearData(BaseModel):
    model_config = _frozen()
    kind: Literal["logistic"]
    intercept: float
    inputs: dict[str, tuple[float, float, float]] = Field(max_length=MAX_INPUTS)

    @field_validator("inputs")
    @classmethod
    def _finite(cls, value: dict[str, tuple[float, float, float]]) -> dict[str, tuple[float, float, float]]:
        for name, (mean, scale, weight) in value.items():
            if not 0 < len(name) <= 200:
                raise ValueError("input names are 1-200 characters")
            if not all(math.isfinite(v) for v in (mean, scale, weight)) or scale <= 0:
                raise ValueError(f"input {name!r}: mean, scale and weight must be finite, scale positive")
        return value


class _VersionData(BaseModel):
    model_config = _frozen()
    card: ModelCard
    model: dict[str, Any]  # read by its kind (model_from_data)


def model_from_data(data: Any) -> FrozenModel:
    """The frozen model a version holds, checked; ValueError (pydantic's or TreeRefused) if malformed."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "logistic":
        linear = _LinearData.model_validate(data)
        return LinearModel(dict(linear.inputs), linear.intercept)
    if kind == "hgb":
        return TreeEnsemble.from_data(data)
    raise TreeRefused(f"unknown model kind {str(kind)[:40]!r}: expected 'logistic' or 'hgb'")


class Promotion(BaseModel):
    model_config = _frozen()
    role: Role
    model_id: str | None = Field(max_length=64)  # None: no model in this role from then on
    version: int | None = Field(ge=1, le=10**9)
    effective_from: int = Field(ge=-(2**62), le=2**62)  # event time, epoch seconds
    action: Literal["promote", "rollback", "shadow", "retire"]
    by: str = Field(max_length=128)
    os_user: str = Field(max_length=128)
    at: str = Field(max_length=40)
    reason: str = Field(default="", max_length=500)

    @property
    def name(self) -> str | None:
        return None if self.model_id is None else f"{self.model_id}@v{self.version}"


class _History(BaseModel):
    model_config = _frozen()
    entries: tuple[Promotion, ...] = Field(max_length=MAX_HISTORY)


class BlobStore(Protocol):
    def get(self, name: str) -> bytes | None: ...

    def put(self, name: str, blob: bytes) -> None: ...

    def names(self) -> list[str]: ...


class DirectoryStore:
    """One file per blob in a directory (written atomically: a reader never sees half a file)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def get(self, name: str) -> bytes | None:
        path = self.root / name
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_HISTORY_BYTES:
            raise SnapshotRefused(f"{path} is larger than {MAX_HISTORY_BYTES} bytes")
        return path.read_bytes()

    def put(self, name: str, blob: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / f".{name}.partial"
        partial.write_bytes(blob)
        partial.replace(self.root / name)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.glob("*.model")) if self.root.is_dir() else []


class RedisStore:
    """The same blobs under `<prefix><name>` keys in Redis."""

    def __init__(self, client: Any, prefix: str = "paysentry:models:"):
        self.client, self.prefix = client, prefix

    def get(self, name: str) -> bytes | None:
        if (self.client.strlen(self.prefix + name) or 0) > MAX_HISTORY_BYTES:
            raise SnapshotRefused(f"{self.prefix}{name} is larger than {MAX_HISTORY_BYTES} bytes")
        value = self.client.get(self.prefix + name)
        return None if value is None else bytes(value)

    def put(self, name: str, blob: bytes) -> None:
        self.client.set(self.prefix + name, blob)

    def names(self) -> list[str]:
        keys = self.client.scan_iter(match=f"{self.prefix}*.model", count=500)
        return sorted((k.decode() if isinstance(k, bytes) else k)[len(self.prefix) :] for k in keys)


HISTORY = "history.signed"


def _version_name(model_id: str, version: int) -> str:
    return f"{model_id}.v{version}.model"


@dataclass(frozen=True)
class Registered:
    card: ModelCard
    model: FrozenModel


class ModelRegistry:
    def __init__(self, store: BlobStore, key: bytes, *, audit_log: Path | None = None,
                 publisher: Any = None, channel: str = SWITCH_CHANNEL):  # fmt: skip
        self.store, self.key = store, check_signing_key(key)
        self.audit_log, self.publisher, self.channel = audit_log, publisher, channel

    # -- versions ---------------------------------------------------------------------------------
    def versions(self) -> list[tuple[str, int]]:
        out = []
        for name in self.store.names():
            model_id, _, rest = name.removesuffix(".model").rpartition(".v")
            if MODEL_ID.match(model_id) and rest.isdigit():
                out.append((model_id, int(rest)))
        return sorted(out)

    def register(self, model: FrozenModel, *, model_id: str, by: str, metrics: dict[str, float] | None = None,
                 trained_from: str | None = None, trained_to: str | None = None,
                 notes: str = "") -> ModelCard:  # fmt: skip
        version = 1 + max((v for m, v in self.versions() if m == model_id), default=0)
        card = ModelCard(model_id=model_id, version=version, kind=model.kind, inputs=tuple(model.inputs),
                         trained_from=trained_from, trained_to=trained_to,
                         metrics={k: float(v) for k, v in (metrics or {}).items()},
                         created_by=by, created_at=now_text(), notes=notes)  # fmt: skip
        data = model.to_data()
        try:
            model_from_data(data)  # refuse to sign what could not be read back
        except ValueError as exc:
            raise ModelRefused(f"model {card.name} cannot be registered: {_reason(exc)}") from None
        blob = sign_body(_VERSION_MAGIC, orjson.dumps({"card": card.model_dump(mode="json"), "model": data}), self.key)
        if len(blob) > MAX_MODEL_BYTES:
            raise ModelRefused(f"model {card.name} is {len(blob)} bytes, more than a version holds ({MAX_MODEL_BYTES})")
        self.store.put(_version_name(model_id, version), blob)
        self._audit({"action": "register", "model": card.name, "by": by, "metrics": card.metrics})
        return card

    def load(self, model_id: str, version: int) -> Registered:
        blob = self.store.get(_version_name(model_id, version))
        if blob is None:
            raise RegistryError(f"no model {model_id}@v{version} in the registry")
        data = open_signed(_VERSION_MAGIC, blob, self.key, "model version", MAX_MODEL_BYTES)
        try:
            parsed = _VersionData.model_validate(data)
            model = model_from_data(parsed.model)
        except ValueError as exc:
            raise ModelRefused(f"model version {model_id}@v{version}: {_reason(exc)}") from None
        if (parsed.card.model_id, parsed.card.version) != (model_id, version):
            raise ModelRefused(f"model version {model_id}@v{version} holds {parsed.card.name}")
        if (parsed.card.kind, parsed.card.inputs) != (model.kind, tuple(model.inputs)):
            raise ModelRefused(f"model version {model_id}@v{version}: its card does not describe its model")
        return Registered(parsed.card, model)

    # -- promotions -------------------------------------------------------------------------------
    def history(self) -> list[Promotion]:
        blob = self.store.get(HISTORY)
        if blob is None:
            return []
        data = open_signed(_HISTORY_MAGIC, blob, self.key, "promotion history", MAX_HISTORY_BYTES)
        try:
            return list(_History.model_validate(data).entries)
        except ValidationError as exc:
            raise SnapshotRefused(f"promotion history: {_first_error(exc)}") from None

    def current(self, role: Role = "live") -> Promotion | None:
        entries = [e for e in self.history() if e.role == role]
        return entries[-1] if entries else None

    def promote(self, model_id: str, version: int, *, by: str, effective_from: int | None = None,
                reason: str = "") -> Promotion:  # fmt: skip
        self.load(model_id, version)  # refuses an unknown or tampered version before it can go live
        return self._append("live", model_id, version, "promote", by, effective_from, reason)

    def shadow(self, model_id: str | None, version: int | None, *, by: str, reason: str = "") -> Promotion:
        if model_id is not None and version is not None:
            self.load(model_id, version)
        return self._append("shadow", model_id, version, "shadow", by, None, reason)

    def rollback(self, *, by: str, effective_from: int | None = None, reason: str = "") -> Promotion:
        """Make the live model the one that was live before the current one (or none)."""
        stack: list[Promotion] = []  # promotions not rolled back yet, the live one on top
        for entry in self.history():
            if entry.role == "live" and entry.action == "promote":
                stack.append(entry)
            elif entry.role == "live" and entry.action == "rollback" and stack:
                stack.pop()
        if not stack:
            raise RegistryError("no promotion left to roll back")
        stack.pop()
        target = stack[-1] if stack else None
        model_id, version = (target.model_id, target.version) if target else (None, None)
        return self._append("live", model_id, version, "rollback", by, effective_from, reason)

    def _append(self, role: Role, model_id: str | None, version: int | None, action: Any, by: str,
                effective_from: int | None, reason: str) -> Promotion:  # fmt: skip
        entry = Promotion(role=role, model_id=model_id, version=version, action=action, by=by, os_user=os_user(),
                          effective_from=int(time.time()) if effective_from is None else effective_from,
                          at=now_text(), reason=reason)  # fmt: skip
        entries = [*self.history(), entry]
        body = orjson.dumps({"entries": [e.model_dump(mode="json") for e in entries]})
        self.store.put(HISTORY, sign_body(_HISTORY_MAGIC, body, self.key))
        self._audit({"action": action, "role": role, "model": entry.name, "by": by,
                     "effective_from": entry.effective_from, "reason": reason})  # fmt: skip
        if self.publisher is not None:
            self.publisher.publish(self.channel, orjson.dumps({"action": action, "model": entry.name}))
        return entry

    def _audit(self, record: dict[str, Any]) -> None:
        if self.audit_log is not None:
            AuditLog(self.audit_log).append({"event": "model." + str(record.pop("action")), **record})


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}"[:300]


def _reason(exc: ValueError) -> str:
    return _first_error(exc) if isinstance(exc, ValidationError) else str(exc)[:300]


def registry_from_location(location: str, key: bytes, *, audit_log: Path | None = None) -> ModelRegistry:
    """A directory path, or a redis:// / rediss:// URL (whose clients also get the switch message)."""
    if location.startswith(("redis://", "rediss://", "unix://")):
        import redis

        client = redis.Redis.from_url(location)
        return ModelRegistry(RedisStore(client), key, audit_log=audit_log, publisher=client)
    return ModelRegistry(DirectoryStore(Path(location)), key, audit_log=audit_log)


def describe(entries: Iterable[Promotion]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") for e in entries]
