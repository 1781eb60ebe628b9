"""Model snapshots: a restored model scores exactly like the one saved; tampered snapshots are refused."""

from __future__ import annotations

import random

import pytest
import redis

from models.lifecycle import FileSnapshots, RedisSnapshots, SnapshotRefused, dump_model, load_model, restore_or_new
from models.scorer import CalibratedHalfSpaceTrees

KEY = b"snapshot-key"


def _trained(n: int = 400) -> CalibratedHalfSpaceTrees:
    model = CalibratedHalfSpaceTrees(warmup=100)
    rng = random.Random(11)
    for _ in range(n):
        model.learn_one({"a": rng.random(), "b": rng.gauss(0, 1)})
    return model


def _probe(model: CalibratedHalfSpaceTrees) -> list[float | None]:
    return [model.score_one({"a": x / 10, "b": x - 5}) for x in range(11)]


def test_round_trip_scores_identically() -> None:
    model = _trained()
    restored, info = load_model(dump_model(model, KEY), KEY)
    assert _probe(restored) == _probe(model)
    assert info.learned == 400 and info.version == model.version


def test_tampered_or_foreign_snapshots_are_refused() -> None:
    blob = bytearray(dump_model(_trained(), KEY))
    blob[-5] ^= 0xFF
    with pytest.raises(SnapshotRefused, match="signature"):
        load_model(bytes(blob), KEY)
    with pytest.raises(SnapshotRefused, match="signature"):
        load_model(dump_model(_trained(), b"someone else"), KEY)
    with pytest.raises(SnapshotRefused, match="not a paysentry"):
        load_model(b"\x80\x04junk", KEY)


def test_file_snapshots(tmp_path) -> None:
    store = FileSnapshots(tmp_path / "model.snapshot", KEY)
    assert store.load() is None
    model = _trained()
    store.save(model)
    loaded = store.load()
    assert loaded is not None and _probe(loaded[0]) == _probe(model)


def test_redis_snapshots_shared_by_workers_with_rollback(redis_clean_url: str) -> None:
    client = redis.Redis.from_url(redis_clean_url)
    writer, reader = RedisSnapshots(client, KEY), RedisSnapshots(redis.Redis.from_url(redis_clean_url), KEY)
    first, second = _trained(200), _trained(400)
    writer.save(first)
    writer.save(second)
    loaded = reader.load()
    assert loaded is not None and loaded[1].learned == 400
    assert reader.rollback()
    loaded = reader.load()
    assert loaded is not None and loaded[1].learned == 200


def test_restore_or_new_ignores_a_refused_snapshot(tmp_path, caplog) -> None:
    FileSnapshots(tmp_path / "m", b"other key").save(_trained())
    model = restore_or_new(FileSnapshots(tmp_path / "m", KEY), warmup=7)
    assert model.learned == 0 and model.warmup == 7
    assert "refused" in caplog.text
