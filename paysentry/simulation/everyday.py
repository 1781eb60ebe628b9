"""Everyday, legitimate life of the ledger: verified master-data changes, onboarded vendors, rejected
and returned payments (often paid again later with the same invoice), and cancellations."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from paysentry.simulation.config import MDM_USERS
from paysentry.simulation.engine import Simulation
from paysentry.simulation.payments import (
    CANCEL_REASONS,
    CANCELLED,
    FAIL_REASONS,
    FAILED,
    RETURN_REASONS,
    RETURNED,
    WRONG_AMOUNT,
)
from paysentry.simulation.world import add_business_days, money, poisson, renamed
from paysentry.windows import HOUR


def master_data_changes(sim: Simulation) -> None:
    """A few verified bank-detail changes (domestic, same country) and legal-form renames."""
    rng = sim.rng
    early = [d for d in sim.bdays if d < sim.warm_from] or sim.bdays[:1]
    later = [d for d in sim.bdays if d >= sim.warm_from] or sim.bdays
    plan = [(early, "account")] * max(2, sim.config.vendors // 25)
    plan += [(later, "account")] * max(1, sim.config.vendors // 40) + [(early, "name"), (later, "name")]
    for days, kind in plan:
        pool = [v for v in sim.vendors if v.payable_from is None and v.domestic and not v.tags]
        if not pool:
            return
        vendor, day = rng.choice(pool), rng.choice(days)
        vendor.tags.add("legit_change")
        at = sim.office_time(vendor.company, day)
        if kind == "account":
            old = vendor.account_at(at)
            sim.clear_in_flight(vendor, at, at)
            sim.change_account(vendor, at, sim.accounts.new(old.country, avoid_bank=old.bank), rng.choice(MDM_USERS))
        else:
            new_name = renamed(vendor.name_at(at))
            vendor.names.append((at, new_name))
            sim.vendor_event(at, "vendor.updated", vendor, None, vendor_name=new_name)


def onboard_vendors(sim: Simulation) -> None:
    """Vendors onboarded during the period: small first invoices, paid after a week or so."""
    rng = sim.rng
    days = [d for d in sim.bdays if d >= sim.config.start + timedelta(days=3)]
    for _ in range(max(2, sim.config.vendors // 25) if days else 0):
        company = rng.choice(sim.config.companies)
        day = rng.choice(days)
        at = sim.office_time(company, day)
        typical = sim.median[company.code] * rng.uniform(0.1, 0.6)
        country = company.domestic_countries[0]
        payable = add_business_days(day, rng.randint(4, 6))
        vendor = sim.make_vendor(
            company, country=country, typical=typical, rate=rng.uniform(0.2, 0.6),
            since=at, created_on=day, payable_from=payable,
        )  # fmt: skip
        vendor.tags.add("onboarded")
        sim.vendor_event(at, "vendor.created", vendor)
        for pay_day in sim.bdays:
            if pay_day >= payable:
                for _ in range(poisson(rng, vendor.rate)):
                    sim.new_payment(vendor, pay_day)


def failures(sim: Simulation) -> None:
    """~1.5 % rejected or returned, never clustered; half are paid again a few days later."""
    rng, reissue = sim.rng, []
    for payment in list(sim.payments):
        if rng.random() >= sim.config.failure_rate or not payment.normal or payment.seq in sim.used:
            continue
        returned = rng.random() < 0.4
        delay = rng.randint(20 * HOUR, 72 * HOUR) if returned else rng.randint(120, 3 * HOUR)
        at = payment.submitted_at + timedelta(seconds=delay)
        if not sim.space_ok(payment.channel, at):
            continue
        payment.outcome, payment.outcome_at = (RETURNED if returned else FAILED), at
        reasons = RETURN_REASONS if returned else FAIL_REASONS
        payment.status_reason = rng.choice(reasons.get(payment.channel, reasons["other"]))
        sim.note_failure(payment.channel, at)
        sim.used.add(payment.seq)
        if rng.random() < 0.5:
            reissue.append(payment)
    for payment in reissue:
        sim.pay_again(payment, payment.amount)


def cancellations(sim: Simulation) -> None:
    """A few withdrawn before release; about a third re-entered with a corrected amount."""
    rng = sim.rng
    for payment in list(sim.payments):
        if rng.random() >= sim.config.cancel_rate or not payment.normal or payment.seq in sim.used:
            continue
        assert payment.approved_at is not None
        if rng.random() < 0.3:  # withdrawn before anyone approved it
            gap = (payment.approved_at - payment.created_at).total_seconds()
            payment.approved_at = None
            payment.outcome_at = payment.created_at + timedelta(seconds=int(min(rng.randint(60, 3600), gap / 2)))
        else:
            gap = (payment.released_at - payment.approved_at).total_seconds()
            payment.outcome_at = payment.approved_at + timedelta(seconds=int(min(rng.randint(60, 3600), gap / 2)))
        payment.outcome = CANCELLED
        sim.used.add(payment.seq)
        if rng.random() < 0.35:
            payment.status_reason = WRONG_AMOUNT
            assert payment.vendor is not None
            corrected = money(float(payment.amount) * rng.uniform(0.9, 1.1))
            limit = payment.company.approval_limit
            if limit * Decimal("0.88") <= corrected < limit:
                corrected = payment.vendor.draw_amount(rng, limit)
            sim.pay_again(payment, corrected)
        else:
            payment.status_reason = rng.choice(CANCEL_REASONS)
