"""The decision core: features from state, idempotency, timers, determinism, bounded state."""

from __future__ import annotations

from typing import Any

import pytest

from paysentry.contract import Event, PaymentSummary, RuleHit
from paysentry.core import EmptyRuleset, Engine
from paysentry.event_time import epoch
from paysentry.params import CompanyParams
from paysentry.ports import RuleContext
from paysentry.replay import MemoryStateStore, Replayer
from paysentry.sharding import Route, shard_for
from paysentry.state import VendorProfile, decode_entity, encode_entity
from tests.builders import KEY, at, parse, raw, release, settle, vendor


class Capturing(EmptyRuleset):
    """Records every context it sees; flags payments when told to."""

    def __init__(self, flag: bool = False, companies: dict[str, CompanyParams] | None = None):
        self.seen: list[RuleContext] = []
        self.flag = flag
        self.companies = companies or {}

    def company(self, company_code: str | None) -> CompanyParams:
        return self.companies.get(company_code or "", CompanyParams())

    def evaluate(self, ctx: RuleContext) -> tuple[list[RuleHit], list[RuleHit]]:
        self.seen.append(ctx)
        if self.flag:
            return [RuleHit(rule_id="everything", severity="high", action="hold", reason="test")], []
        return [], []

    @property
    def last(self) -> dict[str, Any]:
        return dict(self.seen[-1].features)


def run(events: list[dict], ruleset: Capturing | None = None, **engine_args: Any) -> tuple[Replayer, list]:
    replayer = Replayer(Engine(ruleset or Capturing(), **engine_args), KEY)
    decisions = []
    for data in events:
        decisions.extend(replayer.feed(parse(data)))
    return replayer, decisions


def test_a_redelivered_event_decides_nothing_and_changes_nothing() -> None:
    event = release("P1", at(0))
    replayer, decisions = run([event])
    before = {k: encode_entity(v) for k, v in replayer.store.items()}
    assert replayer.feed(parse(event)) == []
    assert {k: encode_entity(v) for k, v in replayer.store.items()} == before
    assert len(decisions) == 1


def test_amount_far_above_the_vendors_history() -> None:
    rules = Capturing()
    history = [release(f"P{i}", at(days=i), amount=f"{1000 + 10 * i}.00") for i in range(10)]
    run([*history, release("BIG", at(days=10.5), amount="41000.00")], rules)
    f = rules.last
    assert f["vendor_payment_count_30d"] == 10
    assert f["amount_ratio_median_30d"] == pytest.approx(41000 / 1045, rel=0.05)
    assert f["amount_zscore_30d"] > 100
    assert f["vendor_amount_max_30d"] == 1090.0


def test_bank_detail_change_then_payment_to_the_new_account() -> None:
    rules = Capturing()
    events = [
        vendor("V1", at(days=-100), "111122223333"),
        release("P1", at(days=-1)),
        vendor("V1", at(days=0), "GB33BUKB20201555555555", type_="vendor.updated"),
        release("P2", at(days=2), payee_account="GB33BUKB20201555555555"),
    ]
    run(events, rules)
    f = rules.last
    assert f["days_since_bank_change"] == pytest.approx(2.0)
    assert f["account_matches_master"] is True
    assert f["vendor_age_days"] == pytest.approx(102.0)


def test_payment_to_an_account_that_belongs_to_another_vendor() -> None:
    rules = Capturing()
    run([vendor("V2", at(days=-50), "999988887777"), release("P1", at(0), payee_account="9999 8888 7777")], rules)
    assert rules.last["account_shared"] is True
    assert rules.last["account_vendor_count"] == 1
    assert rules.last["account_new_for_vendor"] is True


def test_duplicate_invoice_after_normalisation_and_not_after_cancel() -> None:
    rules = Capturing()
    run([release("P1", at(0), invoice_id="INV-0088812"), release("P2", at(days=2), invoice_id="inv 88812")], rules)
    assert rules.last["duplicate_invoice"] is True
    assert rules.last["duplicate_of"] == "P1"
    assert rules.last["duplicate_invoice_days"] == pytest.approx(2.0)

    rules = Capturing()
    cancel = raw("payment.cancelled", at(1), payment_id="P1", vendor_id="V1", amount="1000.00", currency="USD")
    run([release("P1", at(0), invoice_id="INV-0088812"), cancel, release("P2", at(2), invoice_id="INV88812")], rules)
    assert rules.last["duplicate_invoice"] is False


def test_the_same_payments_lifecycle_is_not_its_own_duplicate() -> None:
    rules = Capturing()
    created = raw("payment.created", at(0), payment_id="P1", vendor_id="V1", amount="1000.00", currency="USD",
                  invoice_id="INV-1")  # fmt: skip
    run([created, release("P1", at(1), invoice_id="INV-1")], rules)
    assert rules.last["duplicate_invoice"] is False


def test_self_approval_and_local_time_in_the_companys_zone() -> None:
    rules = Capturing(companies={"US01": CompanyParams(timezone="America/New_York")})
    # 10:00 at +08:00 is 02:00 UTC, 21:00 the evening before in New York (EST)
    run([release("P1", at(0), created_by="u-1", approved_by=["u-1"])], rules)
    f = rules.last
    assert f["self_approved"] is True
    assert f["hour_local"] == 21
    assert f["is_business_hours"] is False


def test_split_payments_near_the_approval_limit() -> None:
    rules = Capturing(companies={"US01": CompanyParams(approval_limit=50_000, currency="USD")})
    run([release(f"S{i}", at(i), amount="48500.00") for i in range(3)], rules)
    f = rules.last
    assert f["amount_to_limit_ratio"] == pytest.approx(0.97)
    assert f["near_limit_count_24h"] == 2
    assert f["near_limit_sum_24h"] == pytest.approx(3 * 48500)


def test_settlement_that_differs_from_the_release() -> None:
    rules = Capturing()
    _, decisions = run([release("P1", at(0), amount="1000.00"), settle("P1", at(1), amount="950.00", fee="2.00")],
                       rules)  # fmt: skip
    f = rules.last
    assert f["payment_known"] is True
    assert f["settled_amount_diff"] == pytest.approx(50.0)
    assert f["settled_amount_diff_ratio"] == pytest.approx(0.05)
    assert f["hours_since_release"] == pytest.approx(1.0)
    assert [d.event_type for d in decisions] == ["payment.released", "psp.settled"]


def test_timers_raise_unsettled_and_unmatched_once_each_in_event_time() -> None:
    rules = Capturing(companies={"US01": CompanyParams(settlement_sla_hours=24)})
    events = [
        release("LATE", at(0)),
        settle("ORPHAN", at(1)),
        settle("EARLY", at(2)),  # its ERP release arrives within the grace period
        release("EARLY", at(2.5), company_code="XX"),
        release("TICK", at(days=3), vendor="V9"),
        release("TICK2", at(days=4), vendor="V9"),
    ]
    _, decisions = run(events, rules)
    timer = [(d.event_type, d.payment_id) for d in decisions if d.event_type in ("sla.unsettled", "psp.unmatched")]
    # EARLY was settled before its release arrived: matched within the grace period, and not unsettled.
    assert timer == [("psp.unmatched", "ORPHAN"), ("sla.unsettled", "LATE"), ("sla.unsettled", "TICK")]
    late = next(d for d in decisions if d.event_type == "sla.unsettled")
    assert late.event_id == "sla.unsettled:LATE"
    assert late.event_time.startswith("2026-11-03T02:00:00")  # due time: release + 24 h, in UTC


def _stream() -> list[dict]:
    events: list[dict] = [vendor(f"V{v}", at(days=-60), f"ACC{v:08d}") for v in range(5)]
    for i in range(400):
        v = i % 5
        events.append(release(f"P{i}", at(hours=i * 1.7), amount=f"{(i * 37) % 900 + 100}.25", vendor=f"V{v}",
                              payee_account=f"ACC{v:08d}", invoice_id=f"INV-{i % 150}"))  # fmt: skip
        if i % 3 == 0:
            events.append(settle(f"P{i}", at(hours=i * 1.7 + 0.5), amount=f"{(i * 37) % 900 + 100}.25"))
    return events


def test_same_events_give_byte_identical_decisions() -> None:
    events = _stream()
    first = [d.to_json() for d in run(events, model=None)[1]]
    second = [d.to_json() for d in run(events, model=None)[1]]
    assert first == second
    assert any(b'"model_score":0' in line or b'"model_score":1' in line for line in first)  # the model scored


def test_micro_batches_decide_like_single_events() -> None:
    events = [parse(e) for e in _stream()]
    single_engine, batch_engine = Engine(Capturing()), Engine(Capturing())
    single_store, batch_store = MemoryStateStore(), MemoryStateStore()
    routes: dict[str, Route] = {}
    sharded = [(e, shard_for(e, routes, epoch(e.event_time))) for e in events]
    single = [d for e, s in sharded if (d := single_engine.process(e, single_store, shard=s)) is not None]
    batched = []
    for start in range(0, len(sharded), 37):
        batched.extend(batch_engine.process_batch(sharded[start : start + 37], batch_store))
    assert [d.to_json() for d in batched] == [d.to_json() for d in single]


def test_state_survives_serialisation_mid_stream() -> None:
    """What a Faust table does to state (bytes out, bytes in) must not change any decision."""
    events = [parse(e) for e in _stream()]
    direct_engine, copied_engine = Engine(Capturing()), Engine(Capturing())
    direct_store, copied_store = MemoryStateStore(), MemoryStateStore()
    direct, copied = [], []
    routes: dict[str, Route] = {}
    for event in events:
        shard = shard_for(event, routes, epoch(event.event_time))
        direct.append(direct_engine.process(event, direct_store, shard=shard))
        copied.append(copied_engine.process(event, copied_store, shard=shard))
        for key, entity in list(copied_store.items()):
            copied_store[key] = decode_entity(encode_entity(entity))
    assert [d and d.to_json() for d in copied] == [d and d.to_json() for d in direct]


def test_vendor_state_is_bounded_and_evicts_old_invoices() -> None:
    events = [release(f"P{i}", at(hours=i * 6), invoice_id=f"INV-{i}", amount="100.00") for i in range(600)]
    replayer, _ = run(events)
    profile = replayer.store["US01/v:V1"]
    assert isinstance(profile, VendorProfile)
    oldest_kept = min(when for _, when, _ in profile.invoices.values())
    newest = max(when for _, when, _ in profile.invoices.values())
    assert newest - oldest_kept <= 35 * 86400
    assert len(profile.invoices) <= 512
    assert len(encode_entity(profile)) < 64_000


def test_model_warms_up_then_scores_and_never_learns_flagged_payments() -> None:
    from models.scorer import CalibratedHalfSpaceTrees

    model = CalibratedHalfSpaceTrees(warmup=50)
    _, decisions = run(_stream(), model=model)
    scores = [d.model_score for d in decisions if d.event_type == "payment.released"]
    assert scores[:50] == [None] * 50
    assert all(s is not None and 0 <= s <= 1 for s in scores[51:])

    flagged_model = CalibratedHalfSpaceTrees(warmup=50)
    run(_stream(), Capturing(flag=True), model=flagged_model)
    assert flagged_model.learned == 0


def test_a_payment_keeps_the_shard_of_its_first_event() -> None:
    routes: dict[str, Route] = {}

    def shard_of(event: Event, routes: dict[str, Route]) -> str:
        return shard_for(event, routes, epoch(event.event_time))

    assert shard_of(parse(release("P1", at(0), company_code="CN01")), routes) == "CN01"
    assert shard_of(parse(settle("P1", at(1))), routes) == "CN01"  # platform events carry no company
    assert shard_of(parse(settle("P2", at(1))), routes) == "_"
    assert shard_of(parse(release("P2", at(2), company_code="DE01")), routes) == "_"


def test_vendor_master_data_is_seen_by_every_company() -> None:
    rules = Capturing()
    events = [
        vendor("V1", at(days=-90), "111122223333"),
        vendor("V2", at(days=-90), "999988887777"),
        release("P1", at(0), company_code="CN01", payee_account="999988887777"),
        release("P2", at(1), company_code="DE01"),
    ]
    run(events, rules)
    cn, de = (dict(ctx.features) for ctx in rules.seen)
    assert cn["account_shared"] is True  # V2's account, known from master data
    assert de["account_matches_master"] is True and de["vendor_age_days"] == pytest.approx(90, abs=0.1)


def test_finished_payments_are_forgotten_after_the_longest_window() -> None:
    events = [release(f"P{i}", at(days=i)) for i in range(60)]
    events += [settle(f"P{i}", at(days=i, hours=1)) for i in range(60)]
    events.sort(key=lambda e: e["event_time"])
    replayer, _ = run(events)
    kept = sorted(int(k.split(":P")[1]) for k in replayer.store if "/p:" in k)
    assert kept[0] >= 60 - 36 and kept[-1] == 59
    assert set(replayer.routes) == {f"P{i}" for i in range(60)}  # routes outlive records (tests/test_routes.py)


def test_invoice_register_keeps_the_first_payment_and_forgets_failed_ones() -> None:
    rules = Capturing()
    created = raw("payment.created", at(1), payment_id="P2", vendor_id="V1", amount="1000.00", currency="USD",
                  company_code="US01", invoice_id="6387633")  # fmt: skip
    run([release("P1", at(0), invoice_id="INV-6387633"), created, release("P2", at(2), invoice_id="6387633")], rules)
    assert rules.last["duplicate_invoice"] is True and rules.last["duplicate_of"] == "P1"

    rules = Capturing()
    failed = settle("P1", at(1), type_="psp.failed", status_reason="account closed")
    run([release("P1", at(0), invoice_id="INV-7"), failed, release("P2", at(3), invoice_id="INV-7")], rules)
    assert rules.last["duplicate_invoice"] is False  # a retry after a failure is not a duplicate


def test_an_unmatched_platform_payment_shows_its_amount() -> None:
    rules = Capturing()
    _, decisions = run([settle("GHOST", at(0), amount="777.00"), release("LATER", at(3), vendor="V2")], rules)
    unmatched = next(d for d in decisions if d.event_type == "psp.unmatched")
    assert unmatched.explanation["payment"]["amount"] == "777.00"
    assert rules.seen[-2].features["amount"] == 777.0


def test_time_amount_velocity_and_channel_features() -> None:
    rules = Capturing(companies={"US01": CompanyParams(timezone="Asia/Shanghai")})
    saturday_night = "2026-11-07T23:30:00+08:00"
    events = [
        release("P1", at(0), amount="1234.56", created_by="u-7"),
        release("P2", at(0.5), amount="2000.00", created_by="u-7"),
        settle("P1", at(0.6), type_="psp.failed"),
        settle("P2", at(0.7), amount="2000.00", fee="4.00"),
        settle("P3", at(0.8), type_="psp.returned", company_code="US01"),  # channel health is per company
        release("P4", saturday_night, amount="5000.00", created_by="u-7"),
        settle("P4", saturday_night, amount="5000.00", currency="EUR"),
    ]
    run(events, rules)
    by_event = {(ctx.event_type, ctx.features["payment_id"]): dict(ctx.features) for ctx in rules.seen}
    second = by_event[("payment.released", "P2")]
    assert second["vendor_count_1h"] == 1 and second["creator_count_24h"] == 1
    assert second["days_since_last_payment"] == pytest.approx(0.5 / 24)
    assert by_event[("payment.released", "P1")]["is_round_amount"] is False
    assert second["is_round_amount"] is True  # 2,000.00
    settled = by_event[("psp.settled", "P2")]
    assert settled["fee_ratio"] == pytest.approx(0.002)
    assert (settled["channel_failures_1h"], settled["channel_events_1h"]) == (1, 1)
    returned = by_event[("psp.returned", "P3")]
    assert returned["channel_failure_rate_1h"] == pytest.approx(0.5)
    assert returned["payment_known"] is False
    weekend = by_event[("payment.released", "P4")]
    assert (weekend["weekday_local"], weekend["hour_local"]) == (5, 23)
    assert weekend["is_weekend"] and weekend["is_night"] and not weekend["is_business_hours"]
    assert by_event[("psp.settled", "P4")]["currency_mismatch"] is True


def test_a_released_payment_carries_its_summary_with_an_rfc3339_release_time() -> None:
    event = release("P1", at(0), payee_bank="Commerzbank", po_id="PO-1", due_date="2026-11-30", invoice_id="INV-1")
    _, (released, settled) = run([event, settle("P1", at(hours=20))])
    assert "released_at" not in released.explanation["payment"], "the release is recorded after its own decision"
    payment = released.explanation["payment"] | settled.explanation["payment"]
    assert PaymentSummary.model_validate(settled.explanation["payment"]).to_dict() == settled.explanation["payment"]
    assert payment["released_at"] == "2026-11-02T02:00:00+00:00"
    assert payment["released_amount"] == "1000.00" and payment["approved_by"] == ["u-boss"]
    assert (payment["payee_bank"], payment["po_id"], payment["due_date"]) == ("Commerzbank", "PO-1", "2026-11-30")
    assert payment["payee_account_masked"].endswith("3333") and "111122223333" not in str(payment)
