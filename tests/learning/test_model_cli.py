"""`paysentry model ...` end to end on a directory registry: train on a card-like stream with delayed
verdicts, evaluate, shadow, promote, list, roll back; each change in the audit log."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from models.cli import model_app
from models.registry import DirectoryStore, ModelRegistry
from tests.learning.cardlike import CardConfig, write

KEY = "model-cli-signing-key-of-32-bytes!"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("PAYSENTRY_MODEL_SIGNING_KEY", KEY)
    monkeypatch.setenv("PAYSENTRY_MODEL_REGISTRY", str(tmp_path / "registry"))
    events = write(CardConfig(weeks=3, payers=120, payees=30, compromised_payees_per_week=2), tmp_path / "card.jsonl")
    return {"events": events, "registry": tmp_path / "registry", "audit": tmp_path / "audit.jsonl"}


def invoke(*args: str) -> str:
    result = CliRunner().invoke(model_app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_the_data_scientists_loop(env: dict[str, Path]) -> None:
    audit = ["--audit-log", str(env["audit"])]
    trained = invoke("train", str(env["events"]), "--model-id", "card-lr", "--test-from", "2026-01-19", "--by", "ana",
                     *audit)  # fmt: skip
    assert "registered card-lr@v1" in trained
    invoke("train", str(env["events"]), "--model-id", "card-lr", "--until", "2026-01-19", *audit)
    compared = invoke("evaluate", str(env["events"]), "card-lr@v1", "card-lr@v2", "--since", "2026-01-19",
                      "--json", str(env["registry"] / "eval.json"))  # fmt: skip
    assert "card-lr@v1" in compared and "card-lr@v2" in compared
    figures = orjson.loads((env["registry"] / "eval.json").read_bytes())
    assert [f["model"] for f in figures] == ["card-lr@v1", "card-lr@v2"] and all(f["frauds"] > 0 for f in figures)
    assert "shadow model is card-lr@v2" in invoke("shadow", "card-lr@v2", *audit)
    assert "live model is card-lr@v1 from 2026-01-01" in invoke("promote", "card-lr@v1", "--effective-from",
                                                                 "2026-01-01", "--by", "bo", *audit)  # fmt: skip
    listed = invoke("list")
    assert "card-lr@v1" in listed and "live" in listed and "shadow" in listed
    assert "live model is none" in invoke("rollback", "--reason", "too many holds", *audit)
    registry = ModelRegistry(DirectoryStore(env["registry"]), KEY.encode())
    assert [(e.action, e.name) for e in registry.history()] == [("shadow", "card-lr@v2"), ("promote", "card-lr@v1"),
                                                               ("rollback", None)]  # fmt: skip
    records = [orjson.loads(line) for line in env["audit"].read_bytes().splitlines()]
    assert [r["event"] for r in records] == ["model.register", "model.register", "model.shadow", "model.promote",
                                             "model.rollback"]  # fmt: skip
    assert records[3]["by"] == "bo" and records[0]["by"] == "ana"


def test_bad_requests_are_refused_plainly(env: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(model_app, ["promote", "card-lr@v9", "--audit-log", str(env["audit"])])
    assert result.exit_code == 1 and "no model card-lr@v9" in result.output
    result = CliRunner().invoke(model_app, ["promote", "card-lr", "--audit-log", str(env["audit"])])
    assert result.exit_code == 2 and "MODEL@vN" in result.output
    result = CliRunner().invoke(model_app, ["rollback", "--audit-log", str(env["audit"])])
    assert result.exit_code == 1 and "no promotion left" in result.output
    monkeypatch.setenv("PAYSENTRY_MODEL_SIGNING_KEY", "k3y!")
    result = CliRunner().invoke(model_app, ["list"])
    assert result.exit_code == 2 and "too short" in result.output and "k3y!" not in result.output
