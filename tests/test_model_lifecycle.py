"""Model snapshots: a restored model scores exactly like the one saved; snapshots that are not ours,
altered, cut short, malformed or in the old pickle format are refused without running anything; weak
signing keys are refused."""

from __future__ import annotations

import hashlib
import hmac
import pickle
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from models.lifecycle import (
    FileSnapshots,
    RedisSnapshots,
    SnapshotRefused,
    WeakSigningKey,
    dump_model,
    load_model,
    restore_or_new,
)
from models.model_state import model_state
from models.scorer import CalibratedHalfSpaceTrees

KEY = b"snapshot-signing-key-of-32-bytes!"
OTHER_KEY = b"another-deployment-signing-key-32"


def _trained(n: int = 400) -> CalibratedHalfSpaceTrees:
    model = CalibratedHalfSpaceTrees(warmup=100)
    rng = random.Random(11)
    for _ in range(n):
        model.learn_one({"a": rng.random(), "b": rng.gauss(0, 1)})
    return model


def _probe(model: CalibratedHalfSpaceTrees) -> list[float | None]:
    return [model.score_one({"a": x / 10, "b": x - 5}) for x in range(11)]


def _signed(body: bytes, magic: bytes = b"PSMODEL2", key: bytes = KEY) -> bytes:
    return magic + hmac.new(key, body, hashlib.sha256).digest() + body


def test_round_trip_scores_identically_on_a_stream() -> None:
    model = _trained()
    restored, info = load_model(dump_model(model, KEY), KEY)
    assert info.learned == 400 and info.version == model.version
    # both go on scoring and learning from the same stream: every score stays the same
    rng = random.Random(5)
    for _ in range(600):
        x = {"a": rng.random() * 1.5, "b": rng.gauss(0, 2)}
        assert restored.score_one(x) == model.score_one(x)
        model.learn_one(x)
        restored.learn_one(x)
    assert _probe(restored) == _probe(model)


def test_round_trip_of_a_fresh_model_and_of_an_unseen_feature() -> None:
    fresh = CalibratedHalfSpaceTrees(warmup=3)
    fresh.pipeline.score_one({"a": 1.0})  # the scaler now holds an infinite minimum for "a"
    restored, _ = load_model(dump_model(fresh, KEY), KEY)
    for n in range(20):
        x = {"a": n / 7, "c": (n * 3) % 5}
        assert restored.score_one(x) == fresh.score_one(x)
        fresh.learn_one(x)
        restored.learn_one(x)


def test_the_snapshot_is_data_not_a_pickle() -> None:
    blob = dump_model(_trained(50), KEY)
    body = orjson.loads(blob[8 + 32 :])
    assert body["model"]["params"]["n_trees"] == 25
    assert b"river" not in blob and b"\x80\x04" not in blob[:64]


def test_foreign_altered_and_truncated_snapshots_are_refused() -> None:
    blob = dump_model(_trained(), KEY)
    altered = bytearray(blob)
    altered[-5] ^= 0xFF
    with pytest.raises(SnapshotRefused, match="signature"):
        load_model(bytes(altered), KEY)
    with pytest.raises(SnapshotRefused, match="signature"):
        load_model(dump_model(_trained(), OTHER_KEY), KEY)
    for cut in (len(blob) - 1, len(blob) // 2, 40, 8, 3, 0):
        with pytest.raises(SnapshotRefused):
            load_model(blob[:cut], KEY)
    with pytest.raises(SnapshotRefused, match="not a paysentry"):
        load_model(b"\x80\x04junk", KEY)


class _CreatesAFile:
    """Unpickling this would create the file: the proof that a snapshot ran code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def test_a_signed_pickle_runs_nothing(tmp_path: Path) -> None:
    target = tmp_path / "created-by-the-snapshot"
    payload = pickle.dumps(_CreatesAFile(target))
    meta = orjson.dumps({"version": "hst-x", "learned": 1, "saved_at": 0.0})
    old_format = _signed(len(meta).to_bytes(4, "big") + meta + payload, magic=b"PSMODEL1")
    with pytest.raises(SnapshotRefused, match="older format"):
        load_model(old_format, KEY)
    with pytest.raises(SnapshotRefused, match="JSON"):
        load_model(_signed(payload), KEY)  # the current format, signed, holding a pickle
    assert not target.exists()


def _malformed(mutate: Any) -> bytes:
    model = _trained(300)
    state = model_state(model)
    mutate(state)
    body = {"version": model.version, "learned": model.learned, "saved_at": 1.0, "model": state}
    return _signed(orjson.dumps(body))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.update(format=99),
        lambda s: s["params"].update(n_trees=10**9),  # would build a billion trees
        lambda s: s["params"].update(height=60),
        lambda s: s["params"].update(window_size="250"),
        lambda s: s.update(recent=["x"] * 3),
        lambda s: s.update(recent=[0.5] * 10**5),  # longer than the calibration window
        lambda s: s["trees"]["nodes"].pop(),
        lambda s: s["trees"]["nodes"][0].pop(),
        lambda s: s["trees"]["nodes"][0][0].__setitem__(0, 10**6),  # a feature that does not exist
        lambda s: s["trees"]["nodes"][0][-1].append(1),
        lambda s: s["trees"].update(features=[{"__class__": "os.system"}]),
        lambda s: s["scaler"]["min"].update({"a": [1, 2]}),
        lambda s: s["scaler"].update(extra={}),
        lambda s: s.update(learned=-1),
        lambda s: s["trees"].update(first_window="no"),
    ],
)
def test_malformed_snapshots_are_refused(mutate: Any) -> None:
    with pytest.raises(SnapshotRefused, match="model state"):
        load_model(_malformed(mutate), KEY)


def test_a_snapshot_whose_header_does_not_match_its_model_is_refused() -> None:
    model = _trained(100)
    body = {"version": model.version, "learned": 5, "saved_at": 1.0, "model": model_state(model)}
    with pytest.raises(SnapshotRefused, match="header"):
        load_model(_signed(orjson.dumps(body)), KEY)


@pytest.mark.parametrize("key", [b"", b"k", b"x" * 31])
def test_weak_signing_keys_are_refused(key: bytes, tmp_path: Path) -> None:
    with pytest.raises(WeakSigningKey, match="PAYSENTRY_MODEL_SIGNING_KEY"):
        dump_model(_trained(10), key)
    with pytest.raises(WeakSigningKey):
        load_model(dump_model(_trained(10), KEY), key)
    with pytest.raises(WeakSigningKey):
        FileSnapshots(tmp_path / "m", key)
    with pytest.raises(WeakSigningKey):
        RedisSnapshots(None, key)


def test_file_snapshots(tmp_path: Path) -> None:
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


def test_restore_or_new_ignores_a_refused_snapshot(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    FileSnapshots(tmp_path / "m", OTHER_KEY).save(_trained())
    model = restore_or_new(FileSnapshots(tmp_path / "m", KEY), warmup=7)
    assert model.learned == 0 and model.warmup == 7
    assert "refused" in caplog.text
