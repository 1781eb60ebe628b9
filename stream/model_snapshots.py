"""The online model across restarts: each worker restores the newest signed snapshot from Redis when it
starts (so it does not go back to warm-up) and saves one every few minutes once it has learnt more.

Workers learn independently between snapshots; the newest save wins. Snapshots are signed with the
account hash key (models.lifecycle), so a snapshot someone else wrote into Redis is never unpickled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import redis
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.lifecycle import RedisSnapshots, SnapshotRefused, dump_model

if TYPE_CHECKING:
    from stream.app import StreamApp

log = logging.getLogger(__name__)


class SnapshotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYSENTRY_MODEL_", extra="ignore")

    snapshots: bool = True
    snapshot_seconds: float = 300.0
    name: str = "default"


def register_model_snapshots(stream_app: StreamApp, redis_url: str | None) -> None:
    options = SnapshotSettings()
    if not options.snapshots or not redis_url:
        log.info("model snapshots off (no Redis URL, or PAYSENTRY_MODEL_SNAPSHOTS=false)")
        return
    app, engine = stream_app.app, stream_app.decide.engine
    store = RedisSnapshots(redis.Redis.from_url(redis_url), stream_app.settings.require_hash_key(), options.name)
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
