"""KPIs on the simulator's stream, checked against figures computed here straight from the JSON lines and
from the simulator's own labels (its ground truth), not through the KPI code."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import orjson
import pytest

from paysentry.analytics import compute_kpis
from tests.analytics.conftest import SimFiles


def _lines(path: Any) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def kpis(sim_files: SimFiles) -> dict[str, Any]:
    return compute_kpis(sim_files.events, labels_path=sim_files.labels)


@pytest.fixture(scope="module")
def raw(sim_files: SimFiles) -> list[dict[str, Any]]:
    return _lines(sim_files.events)


def test_volumes_match_the_raw_stream(kpis: dict[str, Any], raw: list[dict[str, Any]]) -> None:
    released: dict[str, dict[str, Any]] = {}
    for event in raw:
        if event["type"] == "payment.released":
            released.setdefault(event["payment_id"], event)
    amounts: defaultdict[str, Decimal] = defaultdict(Decimal)
    by_company: Counter[str] = Counter()
    for event in released.values():
        amounts[event["currency"]] += Decimal(event["amount"])
        by_company[event["company_code"]] += 1
    assert kpis["payments"]["released"] == len(released)
    assert {c: Decimal(v) for c, v in kpis["amount_by_currency"].items()} == dict(amounts)
    assert {c: v["payments"] for c, v in kpis["by"]["company"].items()} == dict(by_company)


def test_failures_and_fees_match_the_raw_stream(kpis: dict[str, Any], raw: list[dict[str, Any]]) -> None:
    outcomes: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    fees: defaultdict[str, Decimal] = defaultdict(Decimal)
    for event in raw:
        if event["type"] in ("psp.settled", "psp.failed", "psp.returned"):
            outcomes[event["channel"]] += 1
            failures[event["channel"]] += event["type"] != "psp.settled"
        if Decimal(event.get("fee", "0")):
            fees[event["channel"]] += Decimal(event["fee"])
    by_channel = kpis["failure_rate"]["by_channel"]
    assert {c: v["outcomes"] for c, v in by_channel.items()} == dict(outcomes)
    assert {c: v["failed"] + v["returned"] for c, v in by_channel.items()} == dict(failures)
    assert kpis["failure_rate"]["overall"]["rate"] == pytest.approx(
        sum(failures.values()) / sum(outcomes.values()), abs=1e-6
    )
    paid = {c: sum(Decimal(v) for v in f["fees_by_currency"].values()) for c, f in kpis["fees_by_channel"].items()}
    assert {c: v for c, v in paid.items() if v} == dict(fees)


def test_reconciliation_matches_the_ground_truth(kpis: dict[str, Any], sim_files: SimFiles) -> None:
    typologies = Counter(label.get("typology") for label in _lines(sim_files.labels))
    recon = kpis["reconciliation"]
    assert typologies["settlement_mismatch"] > 0
    assert recon["amount_mismatch"] == typologies["settlement_mismatch"]
    assert recon["orphan_settlements"] == typologies["orphan_settlement"]
    assert recon["unsettled_past_sla"] == typologies["unsettled_sla"]
    assert recon["matched"] + recon["amount_mismatch"] + recon["orphan_settlements"] == kpis["payments"]["settled"]


def test_invariants(kpis: dict[str, Any]) -> None:
    for stage, summary in kpis["processing_seconds"].items():
        assert summary["count"] > 0, stage
        assert 0 <= summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["max"], stage
        assert summary["count"] <= kpis["payments"]["created"], stage
    assert kpis["exceptions"] == {
        "rejected": 0,
        "rejected_by_reason": {},
        "duplicates": 0,
        "out_of_order_stages": 0,
        "unreadable_decision_lines": 0,
    }
    tracking = kpis["tracking"]
    assert tracking["open_at_end"] == 0
    assert "capacity" not in tracking["closed_by_reason"] and "horizon" not in tracking["closed_by_reason"]
    assert tracking["peak_open"] < kpis["payments"]["created"] / 3  # payments leave as they settle
