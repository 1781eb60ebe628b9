"""The rules through the real core: shadow mode, the default rulebook's own tests, and the CLI."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from paysentry.contract import parse_event
from paysentry.core import Engine
from paysentry.replay import Replayer
from rules.cli import rules_app
from rules.loader import DEFAULT_RULES_DIR, check_ruleset, load_ruleset
from rules.testing import run_tests
from tests.rules.helpers import one_rule

KEY = b"test-key"
runner = CliRunner()

EVENTS = [
    {
        "type": "vendor.created",
        "event_id": "v1",
        "event_time": "2026-08-01T09:00:00-04:00",
        "vendor_id": "V1",
        "payee_account": "US11100000000001",
    },
    {
        "type": "payment.released",
        "event_id": "e1",
        "event_time": "2026-10-06T11:00:00-04:00",
        "payment_id": "P1",
        "company_code": "US01",
        "vendor_id": "V1",
        "amount": "900.00",
        "currency": "USD",
        "created_by": "u1",
        "approved_by": ["u1"],
    },
]


def decide(ruleset) -> list:
    replayer = Replayer(Engine(ruleset), KEY)
    decisions = []
    for raw in EVENTS:
        decisions += replayer.feed(parse_event(raw, account_key=KEY))
    return decisions


def test_shadow_hits_are_recorded_but_change_neither_action_nor_score(tmp_path: Path) -> None:
    active_dir, shadow_dir = tmp_path / "active", tmp_path / "shadow"
    for folder, status in ((active_dir, "active"), (shadow_dir, "shadow")):
        folder.mkdir()
        (folder / "a.rules.yaml").write_text(one_rule("self_approved", status=status), encoding="utf-8")
    active = decide(load_ruleset(active_dir))[-1]
    shadow = decide(load_ruleset(shadow_dir))[-1]
    baseline = decide(None)[-1]
    assert [h.rule_id for h in active.rule_hits] == ["r"] and active.action == "hold"
    assert shadow.rule_hits == [] and [h.rule_id for h in shadow.shadow_hits] == ["r"]
    assert (shadow.action, shadow.risk_score, shadow.severity) == (baseline.action, baseline.risk_score, None)
    assert shadow.ruleset_version == load_ruleset(shadow_dir).version


def test_the_default_rulebook_checks_clean_and_passes_its_own_tests() -> None:
    ruleset, errors = check_ruleset(DEFAULT_RULES_DIR)
    assert errors == [] and ruleset is not None
    report = run_tests(DEFAULT_RULES_DIR)
    assert report.errors == []
    assert [r.failures for r in report.results if not r.ok] == []
    tested = {rule for r in report.results for e in r.test.expect for rule in [*e.fires, *e.shadow_fires]}
    typologies = {r.labels["typology"] for r in ruleset.rules if r.id in tested}
    assert {
        "duplicate_payment",
        "bank_change_bec",
        "shared_account",
        "amount_outlier",
        "split_payment",
        "new_vendor_large",
        "off_hours_release",
        "self_approval",
        "settlement_mismatch",
        "orphan_settlement",
        "unsettled_sla",
        "channel_failure_spike",
    } <= typologies


def test_cli_check_exit_codes(tmp_path: Path) -> None:
    ok = runner.invoke(rules_app, ["check", str(DEFAULT_RULES_DIR)])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("ok: ")
    (tmp_path / "a.rules.yaml").write_text(one_rule("amount_ratio > 1"), encoding="utf-8")
    bad = runner.invoke(rules_app, ["check", str(tmp_path)])
    assert bad.exit_code == 1
    assert bad.stdout.splitlines()[0] == (
        f"{tmp_path}/a.rules.yaml:9:16: unknown feature 'amount_ratio' — did you mean 'amount_ratio_median_30d'?"
    )
    missing = runner.invoke(rules_app, ["check", str(tmp_path / "nope")])
    assert missing.exit_code == 1


def test_cli_test_reports_failures(tmp_path: Path) -> None:
    (tmp_path / "a.rules.yaml").write_text(one_rule("self_approved"), encoding="utf-8")
    events = "\n".join(f"      - {orjson.dumps(e).decode()}" for e in EVENTS)
    (tmp_path / "a.tests.yaml").write_text(
        f"tests:\n  - name: t\n    events:\n{events}\n    expect:\n      - event_id: e1\n        not_fires: [r]\n",
        encoding="utf-8",
    )
    result = runner.invoke(rules_app, ["test", str(tmp_path)])
    assert result.exit_code == 1
    assert "FAILED: 1 of 1 tests" in result.stdout
    assert runner.invoke(rules_app, ["test", str(DEFAULT_RULES_DIR)]).exit_code == 0


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from paysentry.simulate import SimulationConfig, write_simulation

    folder = tmp_path_factory.mktemp("sim")
    events, labels = folder / "events.jsonl", folder / "labels.jsonl"
    write_simulation(SimulationConfig(days=14, seed=3, vendors=40), events, labels)
    return events, labels


def test_cli_backtest_with_labels_and_baseline(simulated: tuple[Path, Path], tmp_path: Path) -> None:
    events, labels = simulated
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    for path in DEFAULT_RULES_DIR.glob("*.yaml"):
        text = path.read_text(encoding="utf-8").replace("amount_ratio_median_30d >= 10", "amount_ratio_median_30d >= 4")
        (candidate / path.name).write_text(text, encoding="utf-8")
    out = tmp_path / "report.json"
    result = runner.invoke(
        rules_app,
        [
            "backtest",
            str(candidate),
            "--events",
            str(events),
            "--labels",
            str(labels),
            "--baseline",
            str(DEFAULT_RULES_DIR),
            "--warmup",
            "5",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "per typology" in result.stdout and "vs baseline" in result.stdout
    report = orjson.loads(out.read_bytes())
    summary = report["summary"]
    assert summary["warmup_days"] == 5 and summary["false_positive_rate"] is not None
    assert {r["rule_id"] for r in report["rules"]} >= {"duplicate_payment", "channel_failure_spike"}
    assert report["typologies"], "the simulator's labels are read"
    assert report["diff"]["lost_alerts"] == 0  # a lower threshold only adds alerts
    assert report["diff"]["new_alerts"] == sum(c["new"] for c in report["diff"]["by_rule"].values())
    as_json = runner.invoke(
        rules_app, ["backtest", str(DEFAULT_RULES_DIR), "--events", str(events), "--format", "json"]
    )
    assert as_json.exit_code == 0
    assert "precision" not in orjson.loads(as_json.stdout)["summary"]  # no labels given: label-free figures only
