"""Features from an event and the state it touches: one function for rules, models and notebooks.

`compute_features` reads state as it was *before* the event (the core records the event afterwards),
so "count in the last hour" means the payments before this one. Names and meanings:
paysentry/feature_catalog.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from models.typology_features import typology_features
from paysentry.contract import Event
from paysentry.event_time import local_time
from paysentry.invoices import normalise_invoice
from paysentry.money import convert, to_base
from paysentry.params import CompanyParams
from paysentry.state import (
    AccountMaster,
    AccountProfile,
    ChannelProfile,
    PaymentRecord,
    UserProfile,
    VendorMaster,
    VendorProfile,
)
from paysentry.windows import DAY, HOUR


@dataclass(slots=True)
class FeatureInputs:
    event_type: str
    event: Event | None
    at: int  # event time, epoch seconds
    moment: datetime
    company: CompanyParams
    record: PaymentRecord | None
    vendor: VendorProfile | None
    account: AccountProfile | None
    creator: UserProfile | None
    channel: ChannelProfile | None
    vendor_master: VendorMaster | None = None
    account_master: AccountMaster | None = None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _days(now: int, then: int | None) -> float | None:
    return None if then is None else (now - then) / DAY


def compute_features(inputs: FeatureInputs) -> dict[str, Any]:
    # One dict, filled in place family by family (the order of its keys is part of what a feature sink
    # sees, so it stays: base, limit, vendor, account, duplicates, platform, typologies, creator).
    event, record = inputs.event, inputs.record
    at, company = inputs.at, inputs.company
    if event is not None:
        amount = event.amount
        currency = event.currency or (record.currency if record else None)
        channel = event.channel or (record.channel if record else None)
        vendor_id = (record.vendor_id if record else None) or event.vendor_id
        created_by = event.created_by or (record.created_by if record else None)
        approvers = event.approved_by or (record.approved_by if record else [])
        payment_id = event.payment_id if event.payment_id is not None else (record.payment_id if record else None)
        company_code = (record.company_code if record else None) or event.company_code
    else:
        amount = None
        currency = record.currency if record else None
        channel = record.channel if record else None
        vendor_id = record.vendor_id if record else None
        created_by = record.created_by if record else None
        approvers = record.approved_by if record else []
        payment_id = record.payment_id if record else None
        company_code = record.company_code if record else None
    if amount is None and record is not None:
        known = record.amount or record.platform_amount  # an unmatched platform payment has only the latter
        amount = Decimal(known) if known else None
    local = local_time(inputs.moment, company)
    weekday = local.weekday()
    hour = local.hour
    start_hour, end_hour = company.business_hours
    business_days = company.business_days
    amount_base = float(to_base(amount, currency)) if amount is not None else None
    f: dict[str, Any] = {
        "event_type": inputs.event_type,
        "payment_id": payment_id,
        "vendor_id": vendor_id,
        "company_code": company_code,
        "currency": currency,
        "channel": channel,
        "payee_country": event.payee_country if event is not None else None,
        "created_by": created_by,
        "amount": float(amount) if amount is not None else None,
        "amount_base": amount_base,
        "is_round_amount": amount is not None and amount % 1000 == 0,
        "hour_local": hour,
        "weekday_local": weekday,
        "is_weekend": weekday >= 5 or weekday not in business_days,
        "is_night": hour >= 22 or hour < 6,
        "is_business_hours": weekday in business_days and start_hour <= hour < end_hour,
        "approver_count": len(approvers),
        "self_approved": bool(created_by) and created_by in approvers,
    }
    _limit_features(f, inputs, amount, currency)
    _vendor_features(f, inputs, amount_base)
    _account_features(f, inputs, vendor_id)
    _duplicate_features(f, inputs, amount)
    _platform_features(f, inputs, amount, currency)
    f.update(typology_features(inputs, amount, currency, amount_base, f["vendor_amount_max_30d"]))
    creator = inputs.creator
    f["creator_count_24h"] = creator.stats.stat("count", at, DAY) if creator else None
    return f


def record_or_event(record: PaymentRecord | None, event: Event | None, name: str) -> Any:
    value = getattr(event, name, None) if event is not None else None
    return value if value is not None else (getattr(record, name, None) if record else None)


def _limit_features(f: dict[str, Any], inputs: FeatureInputs, amount: Decimal | None, currency: str | None) -> None:
    company = inputs.company
    if company.approval_limit is None or amount is None:
        f["approval_limit"] = f["amount_to_limit_ratio"] = f["near_limit_count_24h"] = f["near_limit_sum_24h"] = None
        return
    limit = convert(company.approval_limit, company.currency, currency)
    vendor = inputs.vendor
    prior_count = vendor.near_limit.stat("count", inputs.at, DAY) if vendor else 0.0
    prior_sum = vendor.near_limit.stat("sum", inputs.at, DAY) if vendor else 0.0
    f["approval_limit"] = float(limit)
    f["amount_to_limit_ratio"] = float(amount / limit)
    f["near_limit_count_24h"] = prior_count
    f["near_limit_sum_24h"] = prior_sum + float(amount)


def _vendor_features(f: dict[str, Any], inputs: FeatureInputs, amount_base: float | None) -> None:
    vendor, master, at = inputs.vendor, inputs.vendor_master, inputs.at
    created = master.created_at if master else None
    first = min((t for t in (master.first_seen if master else None, vendor.first_seen if vendor else None)
                 if t is not None), default=None)  # fmt: skip
    since = created if created is not None else first
    bank_change = master.last_bank_change if master else None
    if vendor is None:
        for name in _VENDOR_FEATURES:
            f[name] = None
        f["vendor_age_days"] = None if since is None else (at - since) / DAY
        f["vendor_known"] = since is not None
        f["days_since_bank_change"] = None if bank_change is None else (at - bank_change) / DAY
        return
    f["vendor_known"] = since is not None
    f["vendor_age_days"] = None if since is None else (at - since) / DAY
    f["days_since_bank_change"] = None if bank_change is None else (at - bank_change) / DAY
    stats = vendor.stats
    count_int, _, mean_value, std_value, largest = stats.summary(at, _MONTH)
    count = float(count_int)
    mean = mean_value if count else None
    std = std_value if count > 1 else None
    median = stats.median(at, _MONTH) if count else None
    day_count, day_sum, _, _, _ = stats.summary(at, DAY)
    f["vendor_payment_count_30d"] = count
    f["vendor_amount_mean_30d"] = mean
    f["vendor_amount_std_30d"] = std
    f["vendor_amount_median_30d"] = median
    f["vendor_amount_max_30d"] = largest if count else None
    zscore = None
    if amount_base is not None and mean is not None and std:
        zscore = (amount_base - mean) / std
    f["amount_zscore_30d"] = zscore
    f["amount_ratio_median_30d"] = _ratio(amount_base, median)
    f["vendor_count_1h"] = stats.stat("count", at, HOUR)
    f["days_since_last_payment"] = _days(at, vendor.last_paid)
    f["vendor_count_24h"] = float(day_count)
    f["vendor_sum_24h"] = day_sum


_MONTH = 30 * DAY
_VENDOR_FEATURES = (
    "vendor_age_days", "vendor_payment_count_30d", "vendor_amount_mean_30d", "vendor_amount_std_30d",
    "vendor_amount_median_30d", "vendor_amount_max_30d", "amount_zscore_30d", "amount_ratio_median_30d",
    "vendor_count_1h", "vendor_count_24h", "vendor_sum_24h", "days_since_last_payment",
)  # fmt: skip


def _account_features(f: dict[str, Any], inputs: FeatureInputs, vendor_id: str | None) -> None:
    event, vendor, master = inputs.event, inputs.vendor, inputs.vendor_master
    account_hash = event.payee_account_hash if event is not None else None
    if event is None or account_hash is None:
        for name in _ACCOUNT_FEATURES:
            f[name] = None
        return
    owners = set(inputs.account_master.vendors) if inputs.account_master else set()
    owners |= set(inputs.account.vendors) if inputs.account else set()
    owners.discard(vendor_id or "")
    known_for_vendor = (master is not None and account_hash in master.accounts) or (
        vendor is not None and account_hash in vendor.accounts
    )
    first_seen = [p.first_seen for p in (inputs.account, inputs.account_master) if p and p.first_seen is not None]
    f["account_matches_master"] = master is not None and master.master_account == account_hash
    f["account_new_for_vendor"] = not known_for_vendor
    f["account_age_days"] = _days(inputs.at, min(first_seen)) if first_seen else None
    f["account_vendor_count"] = len(owners)
    f["account_shared"] = bool(owners)
    f["iban_invalid"] = event.payee_account_problem is not None
    f["iban_problem"] = event.payee_account_problem


_ACCOUNT_FEATURES = ("account_matches_master", "account_new_for_vendor", "account_age_days", "account_vendor_count",
                     "account_shared", "iban_invalid", "iban_problem")  # fmt: skip


def _duplicate_features(f: dict[str, Any], inputs: FeatureInputs, amount: Decimal | None) -> None:
    event, vendor = inputs.event, inputs.vendor
    invoice = event.invoice_id if event is not None and event.invoice_id else None
    if invoice is None and inputs.record is not None:
        norm = inputs.record.invoice_norm
    else:
        norm = normalise_invoice(invoice) if invoice else None
    f["invoice_norm"] = norm
    f["duplicate_invoice"] = False
    f["duplicate_invoice_days"] = f["duplicate_of"] = None
    if not norm or vendor is None or amount is None or not inputs.event_type.startswith("payment."):
        return
    seen = vendor.invoices.get(norm)
    payment_id = event.payment_id if event is not None else None
    if seen is not None and seen[2] != payment_id and Decimal(seen[0]) == amount:
        f["duplicate_invoice"] = True
        f["duplicate_invoice_days"] = abs(inputs.at - seen[1]) / DAY
        f["duplicate_of"] = seen[2]


def _platform_features(f: dict[str, Any], inputs: FeatureInputs, amount: Decimal | None, currency: str | None) -> None:
    record, event, at = inputs.record, inputs.event, inputs.at
    is_platform = inputs.event_type.startswith("psp.")
    released = Decimal(record.released_amount) if record and record.released_amount else None
    diff = diff_ratio = None
    mismatch = None
    if is_platform and released is not None and amount is not None:
        diff = float(abs(amount - released))
        diff_ratio = diff / float(released)
        mismatch = bool(record and record.released_currency and currency != record.released_currency)
    fee = event.fee if event is not None and event.fee is not None else None
    channel = inputs.channel
    failures = channel.stats.stat("failures", at, HOUR) if channel and is_platform else None
    outcomes = channel.stats.stat("count", at, HOUR) if channel and is_platform else None
    f["payment_known"] = record.erp_known if record else False
    f["released_amount"] = float(released) if released is not None else None
    f["settled_amount_diff"] = diff
    f["settled_amount_diff_ratio"] = diff_ratio
    f["currency_mismatch"] = mismatch
    f["hours_since_release"] = (at - record.released_at) / HOUR if record and record.released_at else None
    f["settlement_sla_hours"] = inputs.company.settlement_sla_hours
    f["fee"] = float(fee) if fee is not None else None
    f["fee_ratio"] = float(fee / amount) if fee is not None and amount else None
    f["channel_failures_1h"] = failures
    f["channel_events_1h"] = outcomes
    f["channel_failure_rate_1h"] = _ratio(failures, outcomes)
