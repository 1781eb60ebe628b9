"""The payment-stream simulator: contract-valid, deterministic, realistic, and labelled where (and only
where) it injects anomalies."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from paysentry.contract import parse_event
from paysentry.simulate import (
    DEFAULT_COMPANIES,
    TYPOLOGIES,
    SimulationConfig,
    normalise_invoice,
    simulate,
    write_simulation,
)
from paysentry.simulation.world import IBAN_COUNTRIES, iban

KEY = b"test-account-key"
LIMITS = {c.code: c.approval_limit for c in DEFAULT_COMPANIES}
ZONES = {c.code: c.timezone for c in DEFAULT_COMPANIES}
TERMINAL = {"psp.settled", "psp.failed", "psp.returned"}
STAGE = {
    "payment.created": 0,
    "payment.approved": 1,
    "payment.cancelled": 2,
    "payment.released": 2,
    "psp.submitted": 3,
    "psp.settled": 4,
    "psp.failed": 4,
    "psp.returned": 4,
}


def when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["event_time"])


class Run:
    """One simulated stream, indexed the ways the tests need."""

    def __init__(self, config: SimulationConfig):
        self.config = config
        self.events, self.labels = simulate(config)
        self.by_payment: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in self.events:
            if "payment_id" in event:
                self.by_payment[event["payment_id"]].append(event)
        self.typology = {label["payment_id"]: label["typology"] for label in self.labels}
        self.released = {e["payment_id"]: e for e in self.events if e["type"] == "payment.released"}

    def labelled(self, typology: str) -> list[str]:
        return [pid for pid, t in self.typology.items() if t == typology]

    def first(self, payment_id: str, kind: str) -> dict[str, Any]:
        return next(e for e in self.by_payment[payment_id] if e["type"] == kind)

    def vendor_amounts(self, vendor_id: str, exclude: str) -> list[Decimal]:
        return [
            Decimal(e["amount"])
            for pid, e in self.released.items()
            if e["vendor_id"] == vendor_id and pid != exclude and pid not in self.typology
        ]


@pytest.fixture(scope="module")
def run() -> Run:
    return Run(SimulationConfig())


# --- contract, determinism, order ---------------------------------------------------------------------


def test_every_event_and_label_is_contract_valid(run: Run) -> None:
    for event in run.events + run.labels:
        parse_event(event, account_key=KEY)
        parse_event(orjson.dumps(event), account_key=KEY)


def test_volume_fits_a_demo(run: Run) -> None:
    assert 10_000 <= len(run.events) <= 30_000
    counts = Counter(e["type"] for e in run.events)
    assert counts["payment.created"] > 2_000
    assert 0.005 < (counts["psp.failed"] + counts["psp.returned"]) / counts["payment.released"] < 0.04
    assert 5 <= counts["payment.cancelled"] < 60
    assert counts["vendor.created"] >= run.config.vendors


def test_same_config_same_output_and_seed_matters(run: Run) -> None:
    again = simulate(SimulationConfig())
    assert orjson.dumps(again) == orjson.dumps((run.events, run.labels))
    other, _ = simulate(SimulationConfig(seed=8))
    assert other != run.events


def test_sorted_by_time_with_unique_sequential_ids(run: Run) -> None:
    times = [when(e) for e in run.events]
    assert times == sorted(times)
    assert [e["event_id"] for e in run.events] == [f"sim-{i:06d}" for i in range(1, len(run.events) + 1)]
    label_times = [when(e) for e in run.labels]
    assert label_times == sorted(label_times)
    assert len({e["event_id"] for e in run.events + run.labels}) == len(run.events) + len(run.labels)


def test_times_carry_the_company_offset_including_dst(run: Run) -> None:
    offsets: dict[str, set[str]] = defaultdict(set)
    for event in run.events + run.labels:
        local = when(event)
        assert local.utcoffset() == local.astimezone(ZoneInfo(ZONES[event["company_code"]])).utcoffset(), event
        offsets[event["company_code"]].add(event["event_time"][-6:])
        assert len(event["event_time"]) == 25  # whole seconds, explicit offset
    assert offsets["CN01"] == {"+08:00"}
    assert {"+02:00", "+01:00"} == offsets["DE01"]  # CEST ends on 25 October 2026
    assert "-04:00" in offsets["US01"]


def test_money_is_two_decimal_strings(run: Run) -> None:
    for event in run.events:
        for name in ("amount", "fee"):
            if name in event:
                assert isinstance(event[name], str)
                assert event[name] == f"{Decimal(event[name]):.2f}"
        if event["type"] == "psp.settled":
            assert event["fee_currency"] == event["currency"]


# --- vendor master ------------------------------------------------------------------------------------


def test_vendor_master_snapshot_and_accounts(run: Run) -> None:
    first_payment = next(when(e) for e in run.events if e["type"].startswith("payment."))
    snapshot = [e for e in run.events if e["type"] == "vendor.created" and when(e) < first_payment]
    assert len(snapshot) == run.config.vendors
    assert all(date.fromisoformat(e["created_on"]) < run.config.start - timedelta(days=30) for e in snapshot)
    accounts = [e["payee_account"] for e in snapshot]
    assert len(set(accounts)) == len(accounts)
    for event in (e for e in run.events if "payee_account" in e and e["type"].startswith("vendor.")):
        account, country = event["payee_account"], event["payee_country"]
        if country in IBAN_COUNTRIES:
            assert account.startswith(country) and iban(country, account[4:]) == account
        else:
            assert account.isdigit()


def test_vendors_keep_their_habits(run: Run) -> None:
    channels: dict[str, set[str]] = {"CN01": set(), "US01": set(), "DE01": set()}
    for event in run.released.values():
        channels[event["company_code"]].add(event["channel"])
    assert {"cips", "alipay"} <= channels["CN01"] <= {"cips", "alipay", "wechat_pay"}
    assert {"ach", "wire", "check"} <= channels["US01"] <= {"ach", "wire", "check", "card"}
    assert {"sepa"} <= channels["DE01"] <= {"sepa", "swift"}
    per_vendor: dict[str, list[Decimal]] = defaultdict(list)
    for pid, event in run.released.items():
        if pid not in run.typology:
            per_vendor[event["vendor_id"]].append(Decimal(event["amount"]))
    medians = sorted(statistics.median(a) for a in per_vendor.values() if len(a) >= 5)
    assert medians[-1] > 10 * medians[len(medians) // 2]  # a few big vendors, many small ones


# --- lifecycle and controls ---------------------------------------------------------------------------


def test_lifecycle_order_per_payment(run: Run) -> None:
    for pid, events in run.by_payment.items():
        kinds = [e["type"] for e in events]
        stages = [STAGE[k] for k in kinds]
        assert stages == sorted(stages), (pid, kinds)
        assert len(kinds) == len(set(kinds)), (pid, kinds)
        times = [when(e) for e in events]
        assert times == sorted(times), pid
        if "payment.cancelled" in kinds:
            assert not set(kinds) & (TERMINAL | {"payment.released", "psp.submitted"}), pid
        elif "payment.created" in kinds:
            assert kinds[:3] == ["payment.created", "payment.approved", "payment.released"], pid
            assert "psp.submitted" in kinds, pid
            ends = set(kinds) & TERMINAL
            assert len(ends) == (0 if run.typology.get(pid) == "unsettled_sla" else 1), (pid, kinds)
        else:
            assert run.typology.get(pid) == "orphan_settlement", (pid, kinds)


def test_approvals_four_eyes_except_labelled_self_approval(run: Run) -> None:
    for pid, events in run.by_payment.items():
        if events[0]["type"] != "payment.created":
            continue
        creator = events[0]["created_by"]
        for event in (e for e in events if e["type"] == "payment.approved"):
            approvers = event["approved_by"]
            assert len(set(approvers)) == len(approvers)
            if creator in approvers:
                assert run.typology.get(pid) == "self_approval", pid
            elif run.typology.get(pid) is None and Decimal(event["amount"]) >= LIMITS[event["company_code"]]:
                assert len(approvers) == 2, pid
    assert run.labelled("self_approval")
    for pid in run.labelled("self_approval"):
        assert run.first(pid, "payment.approved")["approved_by"] == [run.first(pid, "payment.created")["created_by"]]


def test_people_work_office_hours_and_runs_are_on_business_days(run: Run) -> None:
    for event in run.events:
        kind = event["type"]
        if kind not in ("payment.created", "payment.approved", "payment.released"):
            continue
        local = when(event)
        if kind == "payment.released" and run.typology.get(event["payment_id"]) == "off_hours_release":
            continue
        assert local.weekday() < 5, event
        if kind == "payment.released":
            assert 9 * 60 + 30 <= local.hour * 60 + local.minute <= 16 * 60 + 35, event
            if "erp_batch" in event:
                assert event["erp_batch"].startswith(f"F110-{local:%Y%m%d}-{event['company_code']}-")
        else:
            assert 8 * 60 + 30 <= local.hour * 60 + local.minute < 18 * 60, event


def test_no_anomaly_during_the_warm_up(run: Run) -> None:
    warm = run.config.start + timedelta(days=run.config.warmup_days)
    for label in run.labels:
        first = run.by_payment[label["payment_id"]][0]
        assert when(first).date() >= warm, label
        assert when(label) > when(run.by_payment[label["payment_id"]][-1])


def test_everyday_failures_do_not_cluster(run: Run) -> None:
    failures = [
        e for e in run.events if e["type"] in ("psp.failed", "psp.returned") and e["payment_id"] not in run.typology
    ]
    assert failures
    for a in failures:
        near = [b for b in failures if b["channel"] == a["channel"] and abs(when(a) - when(b)) < timedelta(hours=2)]
        assert len(near) == 1, a


# --- the injected typologies --------------------------------------------------------------------------


def test_every_typology_is_injected_and_labels_point_at_real_payments(run: Run) -> None:
    counts = Counter(label["typology"] for label in run.labels)
    assert set(counts) == set(TYPOLOGIES)
    assert min(counts.values()) >= 2
    verdicts: dict[str, set[str]] = defaultdict(set)
    for label in run.labels:
        assert label["payment_id"] in run.by_payment
        verdicts[label["typology"]].add(label["verdict"])
    assert len(run.typology) == len(run.labels)  # one label per payment
    assert verdicts["duplicate_payment"] == {"error"} and verdicts["bank_change_bec"] == {"fraud"}
    assert verdicts["amount_outlier"] <= {"error", "fraud"}


def test_duplicate_payments(run: Run) -> None:
    for pid in run.labelled("duplicate_payment"):
        dup = run.released[pid]
        originals = [
            e
            for other, e in run.released.items()
            if other != pid
            and e["vendor_id"] == dup["vendor_id"]
            and e["amount"] == dup["amount"]
            and normalise_invoice(e["invoice_id"]) == normalise_invoice(dup["invoice_id"])
        ]
        assert len(originals) == 1, pid
        original = originals[0]
        assert original["invoice_id"] != dup["invoice_id"]
        assert timedelta(0) < when(dup) - when(original) < timedelta(days=6)
        assert any(e["type"] == "psp.settled" for e in run.by_payment[original["payment_id"]])


def test_bank_change_bec(run: Run) -> None:
    for pid in run.labelled("bank_change_bec"):
        payment = run.released[pid]
        change = [
            e
            for e in run.events
            if e["type"] == "vendor.updated"
            and e["vendor_id"] == payment["vendor_id"]
            and e.get("payee_account") == payment["payee_account"]
        ][0]
        home = next(e for e in run.events if e["type"] == "vendor.created" and e["vendor_id"] == payment["vendor_id"])
        assert change["payee_country"] != home["payee_country"]
        assert when(payment).date() > when(change).date()
        assert when(payment) - when(change) <= timedelta(days=5)
        usual = statistics.median(run.vendor_amounts(payment["vendor_id"], pid))
        assert Decimal(payment["amount"]) >= 3 * usual


def test_shared_accounts(run: Run) -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    for event in run.events:
        if event["type"] in ("vendor.created", "vendor.updated") and "payee_account" in event:
            owners[event["payee_account"]].add(event["vendor_id"])
    for pid in run.labelled("shared_account"):
        payment = run.released[pid]
        assert owners[payment["payee_account"]] - {payment["vendor_id"]}, pid
    for account, vendors in owners.items():
        if len(vendors) > 1:
            paid = [pid for pid, e in run.released.items() if e["payee_account"] == account]
            assert all(run.typology.get(pid) == "shared_account" for pid in paid)


def test_amount_outliers(run: Run) -> None:
    for pid in run.labelled("amount_outlier"):
        payment = run.released[pid]
        usual = statistics.median(run.vendor_amounts(payment["vendor_id"], pid))
        assert Decimal(payment["amount"]) >= 12 * usual, pid


def test_split_payments(run: Run) -> None:
    groups: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
    for pid in run.labelled("split_payment"):
        payment = run.released[pid]
        groups[(payment["vendor_id"], when(payment).date())].append(payment)
    assert len(groups) >= 2
    for parts in groups.values():
        limit = LIMITS[parts[0]["company_code"]]
        assert 2 <= len(parts) <= 4
        assert all(Decimal("0.9") * limit <= Decimal(p["amount"]) < limit for p in parts)
        assert all(len(p["approved_by"]) == 1 for p in parts)
        assert sum(Decimal(p["amount"]) for p in parts) > Decimal("1.5") * limit
    # Nothing else sits in that band with a single approver twice on one day for one vendor.
    band: Counter[tuple[str, date]] = Counter()
    for pid, payment in run.released.items():
        limit = LIMITS[payment["company_code"]]
        if pid not in run.typology and Decimal("0.88") * limit <= Decimal(payment["amount"]) < limit:
            band[(payment["vendor_id"], when(payment).date())] += 1
    assert not band


def test_new_vendor_large(run: Run) -> None:
    for pid in run.labelled("new_vendor_large"):
        payment = run.released[pid]
        vendor_id = payment["vendor_id"]
        created = next(e for e in run.events if e["type"] == "vendor.created" and e["vendor_id"] == vendor_id)
        assert timedelta(hours=12) < when(payment) - when(created) < timedelta(days=3)
        company = sorted(
            Decimal(e["amount"]) for e in run.released.values() if e["company_code"] == payment["company_code"]
        )
        assert Decimal(payment["amount"]) >= company[int(len(company) * 0.95)]


def test_off_hours_releases(run: Run) -> None:
    for pid in run.labelled("off_hours_release"):
        local = when(run.released[pid])
        assert local.weekday() >= 5 or local.hour < 5, pid
        assert "erp_batch" not in run.released[pid]


def test_settlement_mismatch(run: Run) -> None:
    for pid, events in run.by_payment.items():
        settled = [e for e in events if e["type"] == "psp.settled"]
        if not settled or pid not in run.released:
            continue
        released, paid = Decimal(run.released[pid]["amount"]), Decimal(settled[0]["amount"])
        if run.typology.get(pid) == "settlement_mismatch":
            assert Decimal("0.009") <= abs(paid - released) / released <= Decimal("0.101"), pid
        else:
            assert paid == released, pid


def test_orphan_settlements_and_unsettled_payments(run: Run) -> None:
    for pid in run.labelled("orphan_settlement"):
        kinds = {e["type"] for e in run.by_payment[pid]}
        assert "psp.settled" in kinds and not any(k.startswith("payment.") for k in kinds)
        assert pid.startswith("PAY-")
    for pid in run.labelled("unsettled_sla"):
        sequence = [e["type"] for e in run.by_payment[pid]]
        assert sequence[-2:] == ["payment.released", "psp.submitted"]
        assert when(run.events[-1]) - when(run.by_payment[pid][-1]) > timedelta(days=2)


def test_channel_failure_spikes(run: Run) -> None:
    spikes = [run.by_payment[pid][-1] for pid in run.labelled("channel_failure_spike")]
    assert all(e["type"] == "psp.failed" for e in spikes)
    for failure in spikes:
        burst = [
            e
            for e in spikes
            if e["channel"] == failure["channel"] and abs(when(e) - when(failure)) <= timedelta(hours=2)
        ]
        assert len(burst) >= 4
        assert len({e["status_reason"] for e in burst}) == 1


# --- helpers and small configs ------------------------------------------------------------------------


def test_normalise_invoice() -> None:
    assert normalise_invoice("INV-0088812") == normalise_invoice("inv 88812") == "88812"
    assert normalise_invoice("INV/88812") == normalise_invoice("0088812") == normalise_invoice("Inv.0088812")
    assert normalise_invoice("INV-0088813") != normalise_invoice("INV-0088812")


def test_write_simulation_round_trips(tmp_path: Any) -> None:
    config = SimulationConfig(days=12, seed=3, vendors=30)
    events_path, labels_path = tmp_path / "out" / "events.jsonl", tmp_path / "out" / "labels.jsonl"
    counts = write_simulation(config, events_path, labels_path)
    events, labels = simulate(config)
    assert counts == (len(events), len(labels))
    assert [orjson.loads(line) for line in events_path.read_bytes().splitlines()] == events
    assert [orjson.loads(line) for line in labels_path.read_bytes().splitlines()] == labels
    assert events_path.read_bytes().count(b"\n") == len(events)


def test_small_and_quiet_configs() -> None:
    events, labels = simulate(SimulationConfig(days=3, vendors=12))
    assert events and not labels  # all inside the warm-up
    for event in events:
        parse_event(event, account_key=KEY)
    _, labels = simulate(SimulationConfig(days=20, anomaly_rate=0.0))
    assert labels == []


@pytest.mark.parametrize(
    "bad", [{"days": 0}, {"vendors": 3}, {"anomaly_rate": -1.0}, {"companies": ()}, {"payments_per_vendor_day": 0}]
)
def test_config_rejects_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SimulationConfig(**bad)
