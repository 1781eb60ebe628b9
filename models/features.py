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
    event, record = inputs.event, inputs.record
    at = inputs.at
    amount = event.amount if event is not None and event.amount is not None else None
    if amount is None and record is not None:
        known = record.amount or record.platform_amount  # an unmatched platform payment has only the latter
        amount = Decimal(known) if known else None
    currency = (event.currency if event is not None else None) or (record.currency if record else None)
    channel = (event.channel if event is not None else None) or (record.channel if record else None)
    vendor_id = (record.vendor_id if record else None) or (event.vendor_id if event is not None else None)
    created_by = (event.created_by if event is not None else None) or (record.created_by if record else None)
    approvers = (event.approved_by if event is not None else None) or (record.approved_by if record else [])
    local = local_time(inputs.moment, inputs.company)
    weekday = local.weekday()
    start_hour, end_hour = inputs.company.business_hours
    amount_base = float(to_base(amount, currency)) if amount is not None else None
    f: dict[str, Any] = {
        "event_type": inputs.event_type,
        "payment_id": record_or_event(record, event, "payment_id"),
        "vendor_id": vendor_id,
        "company_code": (record.company_code if record else None) or (event.company_code if event else None),
        "currency": currency,
        "channel": channel,
        "payee_country": event.payee_country if event is not None else None,
        "created_by": created_by,
        "amount": float(amount) if amount is not None else None,
        "amount_base": amount_base,
        "is_round_amount": amount is not None and amount % 1000 == 0,
        "hour_local": local.hour,
        "weekday_local": weekday,
        "is_weekend": weekday >= 5 or weekday not in inputs.company.business_days,
        "is_night": local.hour >= 22 or local.hour < 6,
        "is_business_hours": weekday in inputs.company.business_days and start_hour <= local.hour < end_hour,
        "approver_count": len(approvers),
        "self_approved": bool(created_by) and created_by in approvers,
    }
    f.update(_limit_features(inputs, amount, currency))
    f.update(_vendor_features(inputs, amount_base))
    f.update(_account_features(inputs, vendor_id))
    f.update(_duplicate_features(inputs, amount))
    f.update(_platform_features(inputs, amount, currency))
    f.update(typology_features(inputs, amount, currency, amount_base, f.get("vendor_amount_max_30d")))
    creator = inputs.creator
    f["creator_count_24h"] = creator.stats.stat("count", at, DAY) if creator else None
    return f


def record_or_event(record: PaymentRecord | None, event: Event | None, name: str) -> Any:
    value = getattr(event, name, None) if event is not None else None
    return value if value is not None else (getattr(record, name, None) if record else None)


def _limit_features(inputs: FeatureInputs, amount: Decimal | None, currency: str | None) -> dict[str, Any]:
    company = inputs.company
    if company.approval_limit is None or amount is None:
        return {"approval_limit": None, "amount_to_limit_ratio": None,
                "near_limit_count_24h": None, "near_limit_sum_24h": None}  # fmt: skip
    limit = convert(company.approval_limit, company.currency, currency)
    vendor = inputs.vendor
    prior_count = vendor.near_limit.stat("count", inputs.at, DAY) if vendor else 0.0
    prior_sum = vendor.near_limit.stat("sum", inputs.at, DAY) if vendor else 0.0
    return {
        "approval_limit": float(limit),
        "amount_to_limit_ratio": float(amount / limit),
        "near_limit_count_24h": prior_count,
        "near_limit_sum_24h": prior_sum + float(amount),
    }


def _vendor_features(inputs: FeatureInputs, amount_base: float | None) -> dict[str, Any]:
    vendor, master, at = inputs.vendor, inputs.vendor_master, inputs.at
    created = master.created_at if master else None
    first = min((t for t in (master.first_seen if master else None, vendor.first_seen if vendor else None)
                 if t is not None), default=None)  # fmt: skip
    since = created if created is not None else first
    known = {
        "vendor_known": since is not None,
        "vendor_age_days": _days(at, since),
        "days_since_bank_change": _days(at, master.last_bank_change if master else None),
    }
    if vendor is None:
        return {name: None for name in _VENDOR_FEATURES} | known
    month = 30 * DAY
    count_int, _, mean_value, std_value, largest = vendor.stats.summary(at, month)
    count = float(count_int)
    mean = mean_value if count else None
    std = std_value if count > 1 else None
    median = vendor.stats.median(at, month) if count else None
    day_count, day_sum, _, _, _ = vendor.stats.summary(at, DAY)
    zscore = None
    if amount_base is not None and mean is not None and std:
        zscore = (amount_base - mean) / std
    return known | {
        "vendor_payment_count_30d": count,
        "vendor_amount_mean_30d": mean,
        "vendor_amount_std_30d": std,
        "vendor_amount_median_30d": median,
        "vendor_amount_max_30d": largest if count else None,
        "amount_zscore_30d": zscore,
        "amount_ratio_median_30d": _ratio(amount_base, median),
        "vendor_count_1h": vendor.stats.stat("count", at, HOUR),
        "days_since_last_payment": _days(at, vendor.last_paid),
        "vendor_count_24h": float(day_count),
        "vendor_sum_24h": day_sum,
    }


_VENDOR_FEATURES = (
    "vendor_age_days", "vendor_payment_count_30d", "vendor_amount_mean_30d", "vendor_amount_std_30d",
    "vendor_amount_median_30d", "vendor_amount_max_30d", "amount_zscore_30d", "amount_ratio_median_30d",
    "vendor_count_1h", "vendor_count_24h", "vendor_sum_24h", "days_since_last_payment",
)  # fmt: skip


def _account_features(inputs: FeatureInputs, vendor_id: str | None) -> dict[str, Any]:
    event, vendor, master = inputs.event, inputs.vendor, inputs.vendor_master
    account_hash = event.payee_account_hash if event is not None else None
    if event is None or account_hash is None:
        return {"account_matches_master": None, "account_new_for_vendor": None, "account_age_days": None,
                "account_vendor_count": None, "account_shared": None, "iban_invalid": None,
                "iban_problem": None}  # fmt: skip
    owners = set(inputs.account_master.vendors) if inputs.account_master else set()
    owners |= set(inputs.account.vendors) if inputs.account else set()
    owners.discard(vendor_id or "")
    known_for_vendor = (master is not None and account_hash in master.accounts) or (
        vendor is not None and account_hash in vendor.accounts
    )
    first_seen = [p.first_seen for p in (inputs.account, inputs.account_master) if p and p.first_seen is not None]
    return {
        "account_matches_master": master is not None and master.master_account == account_hash,
        "account_new_for_vendor": not known_for_vendor,
        "account_age_days": _days(inputs.at, min(first_seen)) if first_seen else None,
        "account_vendor_count": len(owners),
        "account_shared": bool(owners),
        "iban_invalid": event.payee_account_problem is not None,
        "iban_problem": event.payee_account_problem,
    }


def _duplicate_features(inputs: FeatureInputs, amount: Decimal | None) -> dict[str, Any]:
    event, vendor = inputs.event, inputs.vendor
    invoice = event.invoice_id if event is not None and event.invoice_id else None
    if invoice is None and inputs.record is not None:
        norm = inputs.record.invoice_norm
    else:
        norm = normalise_invoice(invoice) if invoice else None
    result: dict[str, Any] = {"invoice_norm": norm, "duplicate_invoice": False,
                              "duplicate_invoice_days": None, "duplicate_of": None}  # fmt: skip
    if not norm or vendor is None or amount is None or not inputs.event_type.startswith("payment."):
        return result
    seen = vendor.invoices.get(norm)
    payment_id = event.payment_id if event is not None else None
    if seen is not None and seen[2] != payment_id and Decimal(seen[0]) == amount:
        result.update(duplicate_invoice=True, duplicate_invoice_days=abs(inputs.at - seen[1]) / DAY,
                      duplicate_of=seen[2])  # fmt: skip
    return result


def _platform_features(inputs: FeatureInputs, amount: Decimal | None, currency: str | None) -> dict[str, Any]:
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
    return {
        "payment_known": record.erp_known if record else False,
        "released_amount": float(released) if released is not None else None,
        "settled_amount_diff": diff,
        "settled_amount_diff_ratio": diff_ratio,
        "currency_mismatch": mismatch,
        "hours_since_release": (at - record.released_at) / HOUR if record and record.released_at else None,
        "settlement_sla_hours": inputs.company.settlement_sla_hours,
        "fee": float(fee) if fee is not None else None,
        "fee_ratio": float(fee / amount) if fee is not None and amount else None,
        "channel_failures_1h": failures,
        "channel_events_1h": outcomes,
        "channel_failure_rate_1h": _ratio(failures, outcomes),
    }
