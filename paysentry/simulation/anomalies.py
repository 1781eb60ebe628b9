"""The injected, labelled anomalies: one function per typology, each building one incident.

Every injector picks its anchor day after the warm-up, touches only payments nothing else owns, and
labels each anomalous payment (`Simulation.mark`). It returns False when the day it drew offers no
suitable payment or vendor, and is then simply tried again on another day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from paysentry.simulation.config import MDM_USERS, TYPOLOGY_PLAN
from paysentry.simulation.engine import Simulation
from paysentry.simulation.payments import FAILED, OUTAGE_REASONS, UNSETTLED, Payment
from paysentry.simulation.world import (
    FOREIGN_POOL,
    Vendor,
    add_business_days,
    is_business_day,
    local_day,
    local_instant,
    money,
)
from paysentry.windows import HOUR

_SMALL_CHANNELS = frozenset({"alipay", "wechat_pay", "card", "check"})


def invoice_variant(sim: Simulation, invoice_id: str) -> str:
    """The same invoice reference keyed differently, as a second clerk (or a re-sent invoice) would."""
    digits = invoice_id.rsplit("-", 1)[-1]
    short = digits.lstrip("0") or "0"
    forms = [f"inv {short}", f"INV{digits}", f"INV {short}", f"inv-{short}", digits, f"INV/{short}", f"Inv.{digits}"]
    return sim.rng.choice([form for form in forms if form != invoice_id])


def _avoid_split_band(sim: Simulation, amount: Decimal, limit: Decimal) -> Decimal:
    if limit * Decimal("0.88") <= amount < limit:
        return money(float(limit) * sim.rng.uniform(1.02, 1.3))
    return amount


def _big_channel(vendor: Vendor) -> str:
    primary = vendor.channels[0][0]
    return vendor.company.main_channel if primary in _SMALL_CHANNELS else primary


def _business_days_within(day: date, days: int) -> list[date]:
    """Business days 1..`days` calendar days after `day` (the next business day if there are none)."""
    found = [day + timedelta(days=k) for k in range(1, days + 1) if is_business_day(day + timedelta(days=k))]
    return found or [add_business_days(day, 1)]


def _established(sim: Simulation, keep: Callable[[Vendor], bool], min_rate: float = 0.3) -> list[Vendor]:
    return [
        v
        for v in sim.vendors
        if v.payable_from is None and not v.tags and v.fixed_amount is None and v.rate >= min_rate and keep(v)
    ]


def _pick(sim: Simulation, lookahead: int, keep: Callable[[Payment], bool] | None = None) -> Payment | None:
    found = sim.candidates(sim.rng.choice(sim.anchor_days(lookahead)), keep)
    return sim.rng.choice(found) if found else None


# --- the typologies ---------------------------------------------------------------------------------


def bank_change_bec(sim: Simulation, _: int) -> bool:
    """The vendor's bank account is switched to a foreign one, then a large payment goes there."""
    rng = sim.rng
    pool = _established(sim, lambda v: v.domestic)
    if not pool:
        return False
    vendor = rng.choice(pool)
    company = vendor.company
    day = rng.choice(sim.anchor_days(6))
    change_at = sim.office_time(company, day)
    if sim.history(vendor, change_at) < 5:
        return False
    original = vendor.account_at(change_at)
    home = {country for country, _ in company.vendor_countries}
    fraud_account = sim.accounts.new(rng.choice([c for c in FOREIGN_POOL if c not in home]))
    amount = _avoid_split_band(sim, money(vendor.typical * rng.uniform(4.0, 10.0)), company.approval_limit)
    pay_day = rng.choice(_business_days_within(day, 4))  # released 1-5 days after the change
    payment = sim.new_payment(
        vendor, pay_day, amount=amount, channel=company.foreign_channel, po_id=None, lead=0, add=False
    )
    restore_day = add_business_days(local_day(company, payment.outcome_at), rng.randint(1, 3))
    restore_at = sim.office_time(company, restore_day)
    sim.clear_in_flight(vendor, change_at, restore_at)
    sim.change_account(vendor, change_at, fraud_account, rng.choice(MDM_USERS))
    sim.change_account(vendor, restore_at, original, rng.choice(MDM_USERS))
    vendor.blocked.append((change_at, restore_at))
    vendor.tags.add("bec")
    sim.payments.append(payment)
    sim.mark(payment, "fraud", "bank_change_bec")
    return True


def new_vendor_large(sim: Simulation, _: int) -> bool:
    """A vendor created mid-period and paid a large amount one to three days later."""
    rng = sim.rng
    company = rng.choice(sim.config.companies)
    days = sim.anchor_days(2)
    day = rng.choice([d for d in days if d.weekday() < 4] or days)  # not on a Friday: paid within 3 days
    created_at = sim.office_time(company, day)
    typical = sim.p95[company.code] * rng.uniform(1.5, 4.0)
    vendor = sim.make_vendor(
        company, country=company.country, typical=typical, since=created_at, created_on=day, payable_from=day
    )
    vendor.tags.add("injected")
    sim.vendor_event(created_at, "vendor.created", vendor)
    pay_days = _business_days_within(day, 2)  # so the payment leaves well within three days
    amount = _avoid_split_band(sim, money(typical), company.approval_limit)
    payment = sim.new_payment(vendor, rng.choice(pay_days), amount=amount, channel=_big_channel(vendor), lead=0)
    sim.mark(payment, "fraud", "new_vendor_large")
    return True


def shared_account(sim: Simulation, index: int) -> bool:
    """Even incidents: one payment to vendor A carries vendor B's account. Odd incidents: two new
    vendors share one personal (employee-like) account and are each paid ordinary amounts."""
    rng = sim.rng
    if index % 2 == 0:
        payment = _pick(sim, 1, lambda p: p.vendor is not None and p.vendor.domestic)
        if payment is None or payment.vendor is None:
            return False
        owner = payment.vendor
        others = [
            v
            for v in sim.vendors
            if v.company is owner.company and v is not owner and v.country == owner.country and not v.tags
        ]
        if not others:
            return False
        payment.account_override = rng.choice(others).account_at(payment.created_at)
        sim.mark(payment, "fraud", "shared_account")
        return True
    company = rng.choice(sim.config.companies)
    day = rng.choice(sim.anchor_days(5))
    personal = sim.accounts.new(company.country, personal=True)
    typical = sim.median[company.code] * rng.uniform(0.3, 0.9)
    for _ in range(2):
        at = sim.office_time(company, day)
        shell = sim.make_vendor(
            company, country=company.country, typical=typical * rng.uniform(0.8, 1.2),
            since=at, created_on=day, account=personal, payable_from=day,
        )  # fmt: skip
        shell.tags.add("injected")
        sim.vendor_event(at, "vendor.created", shell)
        for _ in range(rng.randint(1, 2)):
            payment = sim.new_payment(shell, add_business_days(day, rng.randint(2, 5)), lead=0)
            sim.mark(payment, "fraud", "shared_account")
    return True


def split_payment(sim: Simulation, _: int) -> bool:
    """Two to four payments to one vendor on one day, each just under the approval limit."""
    rng = sim.rng
    company = rng.choice(sim.config.companies)
    limit = float(company.approval_limit)
    # Vendors with big invoices (so the split parts are not also amount outliers), paid regularly.
    pool = _established(sim, lambda v: v.company is company and limit / 8 <= v.typical <= limit / 2, 0.1)
    if not pool:
        return False
    vendor = rng.choice(pool)
    vendor.tags.add("split")
    day = rng.choice(sim.anchor_days(1))
    clerk, approver = rng.choice(company.clerks), rng.choice(company.approvers)
    channel = _big_channel(vendor)
    for j in range(rng.randint(2, 4)):
        amount = money(limit * rng.uniform(0.90, 0.999))
        payment = sim.new_payment(
            vendor, day, amount=amount, channel=channel, clerk=clerk, approvers=[approver],
            lead=0, run=j % len(company.run_times),
        )  # fmt: skip
        sim.mark(payment, "fraud", "split_payment")
    return True


def channel_failure_spike(sim: Simulation, _: int) -> bool:
    """One channel of one company fails four to eight payments of a run within an hour or two."""
    rng = sim.rng
    company = rng.choice(sim.config.companies)
    found = sim.candidates(rng.choice(sim.anchor_days(1)), lambda p: p.company is company and p.batch is not None)
    groups: dict[tuple[str, str], list[Payment]] = {}
    for p in found:
        groups.setdefault((p.batch or "", p.channel), []).append(p)
    if not groups:
        return False
    (_batch, channel), group = max(groups.items(), key=lambda item: (len(item[1]), item[0]))
    if len(group) < 4:
        return False
    chosen = rng.sample(group, min(len(group), rng.randint(4, 8)))
    start = min(p.submitted_at for p in chosen) + timedelta(minutes=rng.randint(3, 20))
    span = rng.randint(40 * 60, 110 * 60)
    for p in sorted(chosen, key=lambda p: p.seq):
        p.outcome, p.status_reason = FAILED, OUTAGE_REASONS.get(channel, OUTAGE_REASONS["other"])
        p.outcome_at = max(p.submitted_at + timedelta(seconds=60), start + timedelta(seconds=rng.randint(0, span)))
        sim.note_failure(channel, p.outcome_at)
        sim.mark(p, "error", "channel_failure_spike")
    for p in sorted(chosen, key=lambda p: p.seq):
        if rng.random() < 0.7:
            sim.pay_again(p, p.amount)
    return True


def duplicate_payment(sim: Simulation, _: int) -> bool:
    """The same invoice (keyed differently), same vendor and amount, paid again a few days later."""
    rng = sim.rng
    original = _pick(sim, 3, lambda p: p.vendor is not None and p.vendor.fixed_amount is None)
    if original is None or original.vendor is None:
        return False
    day = add_business_days(local_day(original.company, original.released_at), rng.randint(1, 3))
    duplicate = sim.new_payment(
        original.vendor, day, amount=original.amount, invoice_id=invoice_variant(sim, original.invoice_id),
        po_id=original.po_id, channel=original.channel, add=False,
    )  # fmt: skip
    if duplicate.created_at <= original.created_at or not sim.fits(original.vendor, duplicate):
        return False
    sim.used.add(original.seq)  # the original must settle, or the second payment is a legitimate retry
    sim.payments.append(duplicate)
    sim.mark(duplicate, "error", "duplicate_payment")
    return True


def amount_outlier(sim: Simulation, _: int) -> bool:
    """A payment 20-60x the vendor's usual amount (a keying error, or padding)."""
    rng = sim.rng
    payment = _pick(sim, 1, lambda p: p.vendor is not None and p.vendor.fixed_amount is None)
    if payment is None or payment.vendor is None or sim.history(payment.vendor, payment.created_at) < 5:
        return False
    company = payment.company
    payment.amount = _avoid_split_band(
        sim, money(payment.vendor.typical * rng.uniform(20.0, 60.0)), company.approval_limit
    )
    if payment.amount >= company.approval_limit and len(payment.approved_by) < 2:
        payment.approved_by = rng.sample(company.approvers, 2)
    sim.mark(payment, "error" if rng.random() < 0.5 else "fraud", "amount_outlier")
    return True


def off_hours_release(sim: Simulation, index: int) -> bool:
    """Released in the night (00:00-05:00 local) or on a weekend instead of in a payment run."""
    rng = sim.rng
    payment = _pick(sim, 1)
    if payment is None:
        return False
    company = payment.company
    day = local_day(company, payment.released_at)
    if index % 2 == 0:
        release_day, seconds = day + timedelta(days=1), rng.randint(0, 5 * HOUR - 1)
    else:
        release_day = day + timedelta(days=5 - day.weekday() + rng.randint(0, 1))
        seconds = rng.randint(9 * HOUR, 20 * HOUR)
    payment.released_at, payment.batch = local_instant(company, release_day, seconds), None
    payment.schedule_platform(rng)
    sim.mark(payment, "fraud", "off_hours_release")
    return True


def self_approval(sim: Simulation, _: int) -> bool:
    payment = _pick(sim, 1, lambda p: p.amount < p.company.approval_limit)
    if payment is None:
        return False
    payment.approved_by = [payment.created_by]
    sim.mark(payment, "fraud", "self_approval")
    return True


def settlement_mismatch(sim: Simulation, _: int) -> bool:
    """The platform settles 1-10 % more or less than the ERP released."""
    rng = sim.rng
    payment = _pick(sim, 1)
    if payment is None:
        return False
    change = rng.uniform(0.01, 0.10) * rng.choice((-1, 1))
    payment.settled_amount = money(float(payment.amount) * (1 + change))
    sim.mark(payment, "error", "settlement_mismatch")
    return True


def unsettled_sla(sim: Simulation, _: int) -> bool:
    """Released and submitted, then nothing: no settlement, no failure."""
    payment = _pick(sim, 3)
    if payment is None:
        return False
    payment.outcome = UNSETTLED
    sim.mark(payment, "error", "unsettled_sla")
    return True


def orphan_settlement(sim: Simulation, _: int) -> bool:
    """The platform settles a payment id the ERP never created (a payment keyed outside the ERP)."""
    rng = sim.rng
    company = rng.choice(sim.config.companies)
    day = rng.choice(sim.anchor_days(1))
    settled_at = local_instant(company, day, rng.randint(9 * HOUR, 20 * HOUR))
    sim.seq += 1
    payment = Payment(
        seq=sim.seq, company=company, vendor=None,
        amount=money(sim.median[company.code] * rng.uniform(0.5, 3.0)), channel=company.main_channel,
        invoice_id="", po_id=None, created_by="", approved_by=[], created_at=settled_at, approved_at=None,
        released_at=settled_at, batch=None, due_date=day, erp=False,
        account_override=sim.accounts.new(company.country, personal=rng.random() < 0.5),
        psp_submitted=rng.random() < 0.5,
    )  # fmt: skip
    payment.submitted_at = settled_at - timedelta(seconds=rng.randint(60, 1800))
    payment.outcome_at = settled_at
    sim.payments.append(payment)
    sim.mark(payment, "fraud", "orphan_settlement")
    return True


# Master-data incidents first (they reshape a vendor's payments), then whole-run incidents, then the
# ones that alter a single payment.
INJECTORS: dict[str, Callable[[Simulation, int], bool]] = {
    "bank_change_bec": bank_change_bec,
    "new_vendor_large": new_vendor_large,
    "shared_account": shared_account,
    "split_payment": split_payment,
    "channel_failure_spike": channel_failure_spike,
    "duplicate_payment": duplicate_payment,
    "amount_outlier": amount_outlier,
    "off_hours_release": off_hours_release,
    "self_approval": self_approval,
    "settlement_mismatch": settlement_mismatch,
    "unsettled_sla": unsettled_sla,
    "orphan_settlement": orphan_settlement,
}


def inject_all(sim: Simulation) -> None:
    eligible = sim.anchor_days(0)
    if sim.config.anomaly_rate <= 0 or not [d for d in eligible if d >= sim.warm_from]:
        return
    for typology, inject in INJECTORS.items():
        weight = TYPOLOGY_PLAN[typology][1]
        count = max(2, round(sim.config.anomaly_rate * len(eligible) * weight))
        for index in range(count):
            for _ in range(12):
                if inject(sim, index):
                    break
