"""A worker saves its online model to Redis; the next worker starts from it instead of warming up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from models.lifecycle import RedisSnapshots
from paysentry.simulate import SimulationConfig, write_simulation
from tests.stream.conftest import MODEL_KEY, StreamRig

pytestmark = pytest.mark.kafka


def test_the_next_worker_restores_the_model(stream_rig: StreamRig, redis_clean_url: str, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_simulation(SimulationConfig(days=4, seed=9), events, tmp_path / "labels.jsonl")
    stream_rig.produce(events)
    env = {"PAYSENTRY_REDIS_URL": redis_clean_url, "PAYSENTRY_MODEL_SNAPSHOT_SECONDS": "1"}
    first = stream_rig.worker("first", **env)
    store = RedisSnapshots(redis.Redis.from_url(redis_clean_url), MODEL_KEY.encode())
    deadline = time.monotonic() + 120
    saved = None
    while time.monotonic() < deadline:
        saved = store.load()
        if saved is not None and saved[0].learned > 100:
            break
        time.sleep(1)
    assert saved is not None and saved[0].learned > 100, first.log()[-2000:]
    first.stop()
    learned = store.load()[1].learned  # type: ignore[index]

    second = stream_rig.worker("second", **env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "model restored" not in second.log():
        time.sleep(0.5)
    assert f"learnt from {learned} payments" in second.log()
    second.stop()
