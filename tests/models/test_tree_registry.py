"""A tree ensemble is a registry version like a logistic regression: signed, checked on load, its kind on
the card; a bad one is refused with a RegistryError and a worker keeps serving what it had."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from models.lifecycle import SnapshotRefused, sign_body
from models.registry import DirectoryStore, ModelRefused, ModelRegistry, RegistryError
from models.serving import ServedModels
from models.supervised import LinearModel
from models.tree_model import TreeEnsemble, export_hist_gradient_boosting
from tests.models.trees import NAMES, fitted_rows, small_tree_data

KEY = b"tree-registry-signing-key-32-bytes"
OTHER_KEY = b"another-deployment-signing-key-32"


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(DirectoryStore(tmp_path / "registry"), KEY, audit_log=tmp_path / "audit.jsonl")


def test_a_registered_tree_ensemble_scores_like_the_classifier_and_says_its_kind(registry: ModelRegistry) -> None:
    classifier, x = fitted_rows(count=800)
    model = export_hist_gradient_boosting(classifier, NAMES)
    card = registry.register(model, model_id="fraud-hgb", by="ana", metrics={"roc_auc": 0.91})
    registry.register(LinearModel({"amount": (0.0, 1.0, 1.0)}, 0.0), model_id="fraud-lr", by="ana")
    loaded = registry.load("fraud-hgb", 1)
    assert loaded.card == card and card.kind == "hgb" and card.inputs == tuple(NAMES)
    assert isinstance(loaded.model, TreeEnsemble) and registry.load("fraud-lr", 1).card.kind == "logistic"
    rows = [{n: float(v) for n, v in zip(NAMES, row, strict=True)} for row in x[:200]]
    expected = classifier.predict_proba(x[:200])[:, 1]
    assert np.abs(np.array([loaded.model.score_one(r) for r in rows]) - expected).max() < 1e-9


def test_a_tree_version_not_signed_with_the_key_or_altered_is_refused(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.register(TreeEnsemble.from_data(small_tree_data()), model_id="m", by="ana")
    path = tmp_path / "registry" / "m.v1.model"
    blob = path.read_bytes()
    path.write_bytes(blob.replace(b"-2.0", b"-9.0"))
    with pytest.raises(SnapshotRefused, match="signature"):
        registry.load("m", 1)
    path.write_bytes(blob)
    with pytest.raises(SnapshotRefused, match="signature"):
        ModelRegistry(DirectoryStore(tmp_path / "registry"), OTHER_KEY).load("m", 1)
    assert registry.load("m", 1).model.score_one({"amount": 5.0}) == TreeEnsemble.from_data(
        small_tree_data()).score_one({"amount": 5.0})  # fmt: skip


def signed(tmp_path: Path, model: dict, **card: object) -> None:
    fields = {"model_id": "m", "version": 1, "kind": "hgb", "inputs": ["amount", "hour"], "created_by": "a",
              "created_at": "2026-01-01T00:00:00Z", **card}  # fmt: skip
    body = orjson.dumps({"card": fields, "model": model})
    DirectoryStore(tmp_path / "registry").put("m.v1.model", sign_body(b"PSMODELV1", body, KEY))


def cyclic() -> dict:
    data = small_tree_data()
    data["trees"][1]["right"][0] = 0
    return data


def out_of_range() -> dict:
    data = small_tree_data()
    data["trees"][0]["feature"][0] = 7
    return data


@pytest.mark.parametrize(
    ("model", "card", "reason"),
    [
        (cyclic(), {}, "tree 1: node 0 has child 0"),
        (out_of_range(), {}, "reads input 7"),
        ({**small_tree_data(), "trees": small_tree_data()["trees"] * 1001}, {}, "1 to 2000 trees"),
        ({**small_tree_data(), "kind": "pickle"}, {}, "unknown model kind"),
        (small_tree_data(), {"kind": "logistic"}, "card does not describe"),
        (small_tree_data(), {"inputs": ["hour", "amount"]}, "card does not describe"),
        (small_tree_data(), {"kind": "xgboost"}, "card.kind"),
    ],
)
def test_signed_but_hostile_tree_versions_are_refused(registry: ModelRegistry, tmp_path: Path, model: dict,
                                                      card: dict, reason: str) -> None:  # fmt: skip
    signed(tmp_path, model, **card)
    with pytest.raises(RegistryError, match=reason) as refused:
        registry.load("m", 1)
    assert isinstance(refused.value, ModelRefused) and "model version m@v1" in str(refused.value)


def test_a_version_that_could_not_be_loaded_back_is_not_registered(registry: ModelRegistry,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    model = TreeEnsemble.from_data(small_tree_data())
    with pytest.raises(ModelRefused, match="cannot be registered: baseline"):
        registry.register(TreeEnsemble(model.inputs, float("nan"), model.trees), model_id="m", by="ana")
    monkeypatch.setattr("models.registry.MAX_MODEL_BYTES", 600)
    many = TreeEnsemble(model.inputs, model.baseline, model.trees * 20)
    with pytest.raises(ModelRefused, match="more than a version holds"):
        registry.register(many, model_id="m", by="ana")
    assert registry.register(model, model_id="m", by="ana").version == 1 and registry.versions() == [("m", 1)]


def test_a_worker_keeps_serving_when_a_promoted_tree_version_is_refused(registry: ModelRegistry,
                                                                          tmp_path: Path) -> None:  # fmt: skip
    registry.register(TreeEnsemble.from_data(small_tree_data()), model_id="m", by="ana")
    registry.promote("m", 1, by="ana", effective_from=0)
    served = ServedModels(registry, audit_log=tmp_path / "worker.jsonl")
    registry.register(TreeEnsemble.from_data(small_tree_data()), model_id="m", by="ana")
    registry.promote("m", 2, by="ana", effective_from=100)
    bad = small_tree_data()
    bad["trees"][0]["left"][0] = 0  # a cycle, signed with the right key
    body = orjson.dumps({"card": registry.load("m", 2).card.model_dump(mode="json"), "model": bad})
    DirectoryStore(tmp_path / "registry").put("m.v2.model", sign_body(b"PSMODELV1", body, KEY))
    assert not served.refresh()
    assert (served.live_at(200) or pytest.fail("nothing served")).name == "m@v1"
    fresh = ServedModels(registry, audit_log=tmp_path / "worker.jsonl")  # a worker starting now: none, no crash
    assert fresh.live_at(200) is None
    events = [orjson.loads(line)["event"] for line in (tmp_path / "worker.jsonl").read_bytes().splitlines()]
    assert events == ["model.switched", "model.switch_refused", "model.switch_refused"]
