"""The online model across restarts: each worker restores the newest signed snapshot from Redis when it
starts (so it does not go back to warm-up) and saves one every few minutes once it has learnt more.

Workers learn independently between snapshots; the newest save wins. Snapshots are model state as data,
signed with PAYSENTRY_MODEL_SIGNING_KEY (models.lifecycle): with snapshots on (a Redis URL and
PAYSENTRY_MODEL_SNAPSHOTS not false) a worker refuses to start without a key of 32 bytes or more.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import redis
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.lifecycle import RedisSnapshots, SnapshotRefused, WeakSigningKey, check_signing_key, dump_model

if TYPE_CHECKING:
    from stream.app import StreamApp
    from stream.settings import StreamSettings

log = logging.getLogger(__name__)


class SnapshotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYSENTRY_MODEL_", extra="ignore")

    snapshots: bool = True
    snapshot_seconds: float = 300.0
    name: str = "default"


def snapshot_signing_key(settings: StreamSettings) -> bytes | None:
    """The key snapshots are signed with; None when snapshots are off; WeakSigningKey when they are on
    and the key is missing or short (checked before the worker starts anything)."""
    if not SnapshotSettings().snapshots or settings.redis_url is None:
        return None
    secret = settings.model_signing_key
    try:
        return check_signing_key(secret.get_secret_value().encode() if secret is not None else None)
    except WeakSigningKey as exc:
        raise WeakSigningKey(f"{exc} (or turn snapshots off: PAYSENTRY_MODEL_SNAPSHOTS=false)") from None


def register_model_snapshots(stream_app: StreamApp, redis_url: str | None) -> None:
    options = SnapshotSettings()
    key = snapshot_signing_key(stream_app.settings)
    if key is None or not redis_url:
        log.info("model snapshots off (no Redis URL, or PAYSENTRY_MODEL_SNAPSHOTS=false)")
        return
    app, engine = stream_app.app, stream_app.decide.engine
    store = RedisSnapshots(redis.Redis.from_url(redis_url), key, options.name)
    saved_at = {"learned": -1}

    @app.task
    async def _restore() -> None:
        try:
            loaded = await asyncio.to_thread(store.load)
        except (SnapshotRefused, redis.RedisError) as exc:
            log.error("model snapshot not restored, starting a fresh model: %s", exc)
            return
        if loaded is not None:
            engine.model, info = loaded
            saved_at["learned"] = info.learned
            log.info("model restored: %s, learnt from %d payments", info.version, info.learned)

    @app.timer(interval=options.snapshot_seconds, name="model-snapshot")
    async def _save() -> None:
        if engine.model.learned == saved_at["learned"]:
            return
        blob = dump_model(engine.model, store.key)  # here, on the loop: the model is not changing meanwhile
        try:
            await asyncio.to_thread(store.save_blob, blob)
        except redis.RedisError as exc:  # the next timer tries again
            log.warning("model snapshot not saved: %s", exc)
            return
        saved_at["learned"] = engine.model.learned
