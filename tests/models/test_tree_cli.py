"""`paysentry model register FILE` signs a model a notebook exported; `model list` shows each version's
kind; `model train --kind hgb` trains one from labelled history; a bad file is refused plainly."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from models import cli
from models.cli import model_app
from models.offline import read_model_file, save_model_file
from models.registry import DirectoryStore, ModelRefused, ModelRegistry
from models.supervised import LinearModel
from models.tree_model import TreeEnsemble, export_hist_gradient_boosting
from tests.learning.cardlike import CardConfig, write
from tests.models.trees import NAMES, fitted_rows, small_tree_data

KEY = "tree-cli-signing-key-of-32-bytes!!"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAYSENTRY_MODEL_SIGNING_KEY", KEY)
    monkeypatch.setenv("PAYSENTRY_MODEL_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setattr(cli.out, "_width", 200)  # tables on one line each: no terminal under the runner
    return tmp_path


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(model_app, list(args))
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())  # messages wrapped at the console width read as one line


def test_a_notebook_model_file_is_registered_listed_with_its_kind_and_served_unchanged(env: Path) -> None:
    classifier, x = fitted_rows(count=600)
    exported = export_hist_gradient_boosting(classifier, NAMES)
    audit = ["--audit-log", str(env / "audit.jsonl")]
    save_model_file(env / "hgb.json", exported, metrics={"roc_auc": 0.93}, trained_to="2026-02-01", notes="nb")
    save_model_file(env / "lr.json", LinearModel({"amount": (0.0, 1.0, 1.0)}, -1.0))
    assert "registered card-hgb@v1 (hgb, 5 inputs)" in invoke("register", str(env / "hgb.json"), "--model-id",
                                                             "card-hgb", "--by", "ana", *audit)  # fmt: skip
    registered = invoke("register", str(env / "lr.json"), "--model-id", "card-lr", *audit)
    assert "registered card-lr@v1 (logistic" in registered
    invoke("shadow", "card-hgb@v1", *audit)
    listed = invoke("list", *audit)
    assert "card-hgb@v1" in listed and "hgb" in listed and "logistic" in listed and "shadow" in listed
    registry = ModelRegistry(DirectoryStore(env / "registry"), KEY.encode())
    loaded = registry.load("card-hgb", 1)
    assert loaded.card.metrics == {"roc_auc": 0.93} and loaded.card.trained_to == "2026-02-01"
    assert loaded.card.notes == "nb" and loaded.model.to_data() == exported.to_data()
    records = [orjson.loads(line) for line in (env / "audit.jsonl").read_bytes().splitlines()]
    assert [(r["event"], r["model"]) for r in records] == [("model.register", "card-hgb@v1"),
                                                          ("model.register", "card-lr@v1"),
                                                          ("model.shadow", "card-hgb@v1")]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x80\x04pickle", "not JSON"),
        (b'{"format": "paysentry-model/1"}', "model: Field required"),
        (orjson.dumps({"format": "paysentry-model/0", "model": small_tree_data()}), "format"),
        (orjson.dumps({"format": "paysentry-model/1", "model": small_tree_data(), "code": "x"}), "code"),
        (orjson.dumps({"format": "paysentry-model/1", "model": {**small_tree_data(), "baseline": None}}), "baseline"),
        (b" " * (16 * 1024 * 1024 + 1), "larger than"),
    ],
)
def test_a_bad_model_file_is_refused_plainly(env: Path, content: bytes, reason: str) -> None:
    (env / "bad.json").write_bytes(content)
    with pytest.raises(ModelRefused, match=reason):
        read_model_file(env / "bad.json")
    output = invoke("register", str(env / "bad.json"), "--model-id", "m", "--audit-log", str(env / "a"), code=1)
    assert reason.split(":")[0] in output and not (env / "registry").exists()


def test_a_missing_model_file_is_refused_plainly(env: Path) -> None:
    output = invoke("register", str(env / "nowhere.json"), "--model-id", "m", "--audit-log", str(env / "a"), code=1)
    assert "cannot be read" in output


def test_train_hgb_learns_offline_from_labelled_history(env: Path) -> None:
    events = write(CardConfig(weeks=3, payers=120, payees=30, compromised_payees_per_week=2), env / "card.jsonl")
    trained = invoke("train", str(events), "--model-id", "card-hgb", "--kind", "hgb", "--max-iter", "30",
                     "--until", "2026-01-19", "--test-from", "2026-01-19", "--audit-log", str(env / "a"))  # fmt: skip
    assert "registered card-hgb@v1 (hgb, " in trained
    registry = ModelRegistry(DirectoryStore(env / "registry"), KEY.encode())
    card = registry.load("card-hgb", 1).card
    assert card.kind == "hgb" and card.trained_to == "2026-01-19" and card.metrics["frauds"] > 0
    # measured on the held-out week (this tiny stream's frauds there are mostly new compromises: no quality bar)
    assert 0.0 <= card.metrics["roc_auc"] <= 1.0 and card.metrics["scored"] > 100
    model = registry.load("card-hgb", 1).model
    assert isinstance(model, TreeEnsemble) and 1 <= len(model.trees) <= 30
    compared = invoke("evaluate", str(events), "card-hgb@v1", "--since", "2026-01-19", "--audit-log", str(env / "a"))
    assert "card-hgb@v1" in compared
    # before the first verdict there is nothing to learn from
    refused = invoke("train", str(events), "--model-id", "x", "--kind", "hgb", "--until", "2026-01-06",
                     "--audit-log", str(env / "a"), code=1)  # fmt: skip
    assert "frauds confirmed before the cut-off" in refused
