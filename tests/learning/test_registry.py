"""The model registry: versions are signed and checked before use, promotions and rollbacks are kept as
a signed history, every change is audited, and workers switch together on the Redis message."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
import redis

from models.lifecycle import SnapshotRefused, WeakSigningKey, sign_body
from models.registry import DirectoryStore, ModelRegistry, RedisStore, RegistryError
from models.serving import Served, ServedModels, SwitchListener, served_from_environment
from models.supervised import LinearModel

KEY = b"registry-signing-key-of-32-bytes!"
OTHER_KEY = b"another-deployment-signing-key-32"


def linear(weight: float = 2.0) -> LinearModel:
    return LinearModel({"x": (0.0, 1.0, weight), "y": (1.0, 2.0, -1.0)}, intercept=-1.0)


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(DirectoryStore(tmp_path / "registry"), KEY, audit_log=tmp_path / "audit.jsonl")


def test_a_registered_version_scores_exactly_like_the_model_it_was_made_from(registry: ModelRegistry) -> None:
    model = linear()
    card = registry.register(model, model_id="fraud-lr", by="ana", metrics={"roc_auc": 0.9},
                             trained_from="2026-01-01", trained_to="2026-02-26")  # fmt: skip
    loaded = registry.load("fraud-lr", 1)
    assert card.version == 1 and loaded.card == card and loaded.card.inputs == ("x", "y")
    for x in ({"x": 0.3, "y": 4.0}, {"x": -2.0}, {}):
        assert loaded.model.score_one(x) == model.score_one(x)
    assert registry.register(linear(3.0), model_id="fraud-lr", by="ana").version == 2
    assert registry.versions() == [("fraud-lr", 1), ("fraud-lr", 2)]


def test_a_version_not_signed_with_the_key_or_altered_is_refused(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.register(linear(), model_id="m", by="ana")
    path = tmp_path / "registry" / "m.v1.model"
    blob = path.read_bytes()
    path.write_bytes(blob.replace(b'"intercept":-1.0', b'"intercept":9.0'))
    with pytest.raises(SnapshotRefused, match="signature"):
        registry.load("m", 1)
    path.write_bytes(blob[:-10])
    with pytest.raises(SnapshotRefused, match="signature"):
        registry.load("m", 1)
    path.write_bytes(blob)
    with pytest.raises(SnapshotRefused, match="signature"):
        ModelRegistry(DirectoryStore(tmp_path / "registry"), OTHER_KEY).load("m", 1)
    with pytest.raises(SnapshotRefused, match="not a paysentry model"):
        path.write_bytes(b"\x80\x04pickle")
        registry.load("m", 1)


@pytest.mark.parametrize(
    "model",
    [
        {"kind": "logistic", "intercept": 0.0, "inputs": {"x": [0.0, 0.0, 1.0]}},  # zero scale
        {"kind": "logistic", "intercept": 0.0, "inputs": {"x": [0.0, 1.0, "inf"]}},
        {"kind": "logistic", "intercept": 0.0, "inputs": {"x": [0.0, 1.0]}},
        {"kind": "pickle", "intercept": 0.0, "inputs": {}},
        {"kind": "logistic", "intercept": 0.0, "inputs": {f"x{i}": [0, 1, 1] for i in range(1001)}},
        {"kind": "logistic", "intercept": 0.0, "inputs": {}, "code": "__import__('os')"},
    ],
)
def test_signed_but_malformed_versions_are_refused(registry: ModelRegistry, tmp_path: Path, model: dict) -> None:
    card = {"model_id": "m", "version": 1, "kind": "logistic", "inputs": ["x"], "created_by": "a",
            "created_at": "2026-01-01T00:00:00Z"}  # fmt: skip
    body = orjson.dumps({"card": card, "model": model})
    DirectoryStore(tmp_path / "registry").put("m.v1.model", sign_body(b"PSMODELV1", body, KEY))
    with pytest.raises(SnapshotRefused, match="model version m@v1"):
        registry.load("m", 1)


def test_a_version_stored_under_another_name_is_refused(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.register(linear(), model_id="m", by="ana")
    store = DirectoryStore(tmp_path / "registry")
    store.put("n.v1.model", store.get("m.v1.model") or b"")
    with pytest.raises(SnapshotRefused, match="holds m@v1"):
        registry.load("n", 1)


def test_weak_keys_and_bad_model_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WeakSigningKey):
        ModelRegistry(DirectoryStore(tmp_path), b"short")
    registry = ModelRegistry(DirectoryStore(tmp_path), KEY)
    with pytest.raises(ValueError, match="model id"):
        registry.register(linear(), model_id="../etc/passwd", by="ana")


def test_promote_rollback_and_shadow_keep_a_history_and_an_audit(registry: ModelRegistry, tmp_path: Path) -> None:
    for weight in (1.0, 2.0, 3.0):
        registry.register(linear(weight), model_id="m", by="ana")
    with pytest.raises(RegistryError, match="no promotion left"):
        registry.rollback(by="ana")
    with pytest.raises(RegistryError, match="no model m@v9"):
        registry.promote("m", 9, by="ana")
    registry.promote("m", 1, by="ana", effective_from=100)
    registry.promote("m", 2, by="bo", effective_from=200)
    registry.shadow("m", 3, by="cy")
    back = registry.rollback(by="dee", effective_from=300, reason="v2 holds too much")
    assert (back.model_id, back.version, back.action) == ("m", 1, "rollback")
    assert registry.current("live") == back and (registry.current("shadow") or back).version == 3
    assert registry.rollback(by="dee", effective_from=400).model_id is None  # before v1: no model
    audit = [orjson.loads(line) for line in (tmp_path / "audit.jsonl").read_bytes().splitlines()]
    events = [(a["event"], a.get("model"), a["by"]) for a in audit]
    assert events[-5:] == [("model.promote", "m@v1", "ana"), ("model.promote", "m@v2", "bo"),
                           ("model.shadow", "m@v3", "cy"), ("model.rollback", "m@v1", "dee"),
                           ("model.rollback", None, "dee")]  # fmt: skip


def test_the_live_model_is_chosen_by_event_time(registry: ModelRegistry) -> None:
    registry.register(linear(1.0), model_id="m", by="ana")
    registry.register(linear(2.0), model_id="m", by="ana")
    registry.promote("m", 1, by="ana", effective_from=100)
    registry.promote("m", 2, by="ana", effective_from=200)
    served = ServedModels(registry)
    names = [(s.name if s else None) for s in (served.live_at(t) for t in (99, 100, 199, 200, 10**9))]
    assert names == [None, "m@v1", "m@v1", "m@v2", "m@v2"]
    registry.rollback(by="ana", effective_from=150)  # a later entry overrides from its own time on
    assert served.refresh()
    assert [(s.name if s else None) for s in (served.live_at(t) for t in (120, 150, 250))] == ["m@v1"] * 3


def test_a_tampered_history_is_refused_and_the_worker_keeps_serving(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.register(linear(), model_id="m", by="ana")
    registry.promote("m", 1, by="ana", effective_from=0)
    served = ServedModels(registry, audit_log=tmp_path / "worker-audit.jsonl")
    history = tmp_path / "registry" / "history.signed"
    history.write_bytes(history.read_bytes().replace(b'"version":1', b'"version":7'))
    assert not served.refresh()
    assert (served.live_at(5) or Served("none", linear())).name == "m@v1"
    audit = [orjson.loads(line) for line in (tmp_path / "worker-audit.jsonl").read_bytes().splitlines()]
    assert [a["event"] for a in audit] == ["model.switched", "model.switch_refused"]


def test_workers_switch_together_on_promote_through_redis(redis_url: str, redis_key_prefix: str,
                                                         tmp_path: Path) -> None:  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    channel = redis_key_prefix + "switch"
    registry = ModelRegistry(RedisStore(client, redis_key_prefix), KEY, publisher=client, channel=channel,
                             audit_log=tmp_path / "audit.jsonl")  # fmt: skip
    registry.register(linear(1.0), model_id="m", by="ana")
    registry.register(linear(2.0), model_id="m", by="ana")
    registry.promote("m", 1, by="ana", effective_from=0)
    workers = [ServedModels(ModelRegistry(RedisStore(redis.Redis.from_url(redis_url), redis_key_prefix), KEY),
                            audit_log=tmp_path / f"w{i}.jsonl", worker=f"w{i}") for i in range(2)]  # fmt: skip
    assert [(w.live_at(10) or Served("-", linear())).name for w in workers] == ["m@v1", "m@v1"]
    listeners = [SwitchListener(redis.Redis.from_url(redis_url), w, channel).start() for w in workers]
    try:
        time.sleep(0.3)  # the subscriptions are in place before the message goes out
        registry.promote("m", 2, by="bo", effective_from=5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(listener.received == 0 for listener in listeners):
            time.sleep(0.05)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any((w.live_at(10) or Served("-", linear())).name != "m@v2"
                                                  for w in workers):  # fmt: skip
            time.sleep(0.05)
    finally:
        for listener in listeners:
            listener.stop()
    assert [(w.live_at(10) or Served("-", linear())).name for w in workers] == ["m@v2", "m@v2"]
    for i in range(2):
        switches = [orjson.loads(line) for line in (tmp_path / f"w{i}.jsonl").read_bytes().splitlines()]
        assert [s["trigger"] for s in switches] == ["startup", "redis"] and switches[-1]["worker"] == f"w{i}"


def test_the_environment_names_the_registry_or_pins_one_version(
    registry: ModelRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register(linear(1.0), model_id="m", by="ana")
    registry.register(linear(2.0), model_id="m", by="ana")
    registry.promote("m", 1, by="ana", effective_from=1000)
    assert served_from_environment() is None
    monkeypatch.setenv("PAYSENTRY_MODEL_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("PAYSENTRY_MODEL_SIGNING_KEY", KEY.decode())
    served = served_from_environment()
    assert served is not None and served.live_at(999) is None and (served.live_at(1000) or SENTINEL).name == "m@v1"
    monkeypatch.setenv("PAYSENTRY_MODEL_PIN", "m@v2")  # a backtest of v2 over all of history
    pinned = served_from_environment()
    assert pinned is not None and (pinned.live_at(-(10**12)) or SENTINEL).name == "m@v2"
    monkeypatch.setenv("PAYSENTRY_MODEL_PIN", "m@v7")
    with pytest.raises(RegistryError, match="no model m@v7"):
        served_from_environment()


SENTINEL = Served("none", linear())
