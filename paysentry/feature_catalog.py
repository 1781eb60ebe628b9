"""The feature catalog: every feature the core computes, with its kind and meaning.

Rules may only name features listed here (the rules checker refuses others), the model scores the
numeric ones, notebooks read the descriptions. A feature is None when it does not apply to the event
(e.g. settlement features on an ERP event, vendor history for an unknown vendor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["number", "bool", "text"]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    kind: Kind
    description: str


def _f(kind: Kind, description: str) -> FeatureSpec:
    return FeatureSpec(kind, description)


FEATURES: dict[str, FeatureSpec] = {
    # The event itself
    "event_type": _f("text", "inbound event type, or a timer pseudo-event (sla.unsettled, psp.unmatched)"),
    "payment_id": _f("text", "payment id"),
    "vendor_id": _f("text", "vendor id (for platform events, from the ERP payment when known)"),
    "company_code": _f("text", "paying company code"),
    "currency": _f("text", "ISO 4217 currency of the amount"),
    "channel": _f("text", "payment channel (wire, ach, sepa, cips, swift, ...)"),
    "payee_country": _f("text", "ISO 3166-1 alpha-2 country of the payee account"),
    "created_by": _f("text", "ERP user who created the payment"),
    "amount": _f("number", "amount in the event's currency"),
    "amount_base": _f("number", "amount in the reporting currency (USD), static reference rates"),
    "is_round_amount": _f("bool", "amount is a whole multiple of 1,000 with no cents"),
    # Time, in the company's timezone (or the offset the ERP stamped when the company has none)
    "hour_local": _f("number", "hour of day 0-23 in the company's timezone"),
    "weekday_local": _f("number", "day of week, 0 = Monday"),
    "is_weekend": _f("bool", "Saturday or Sunday, or outside the company's business days"),
    "is_night": _f("bool", "between 22:00 and 06:00 local time"),
    "is_business_hours": _f("bool", "inside the company's business hours on a business day"),
    # Approval
    "approver_count": _f("number", "number of approvers on the event (0 when none)"),
    "self_approved": _f("bool", "the creator is among the approvers"),
    "approval_limit": _f("number", "the company's approval limit, in the payment's currency when known"),
    "amount_to_limit_ratio": _f("number", "amount / approval limit"),
    "near_limit_count_24h": _f("number", "prior payments to this vendor in 24 h at 90-100 % of the approval limit"),
    "near_limit_sum_24h": _f("number", "their amounts plus this one, in the payment's currency"),
    # Vendor baseline (released payments before this event; reporting currency)
    "vendor_known": _f("bool", "the vendor was seen before (master data or payments)"),
    "vendor_age_days": _f("number", "days since the vendor was created or first seen"),
    "vendor_payment_count_30d": _f("number", "released payments to the vendor in 30 days"),
    "vendor_amount_mean_30d": _f("number", "mean released amount over 30 days (reporting currency)"),
    "vendor_amount_std_30d": _f("number", "standard deviation of released amounts over 30 days"),
    "vendor_amount_median_30d": _f("number", "approximate median released amount over 30 days"),
    "vendor_amount_max_30d": _f("number", "largest released amount over 30 days"),
    "amount_zscore_30d": _f("number", "(amount - 30-day mean) / 30-day std of the vendor"),
    "amount_ratio_median_30d": _f("number", "amount / the vendor's 30-day median"),
    "days_since_last_payment": _f("number", "days since this company last paid the vendor (dormant vendors)"),
    "vendor_count_1h": _f("number", "released payments to the vendor in the last hour"),
    "vendor_count_24h": _f("number", "released payments to the vendor in the last 24 h"),
    "vendor_sum_24h": _f("number", "sum released to the vendor in the last 24 h (reporting currency)"),
    "creator_count_24h": _f("number", "payments released that the same user created, last 24 h"),
    # Bank details
    "days_since_bank_change": _f("number", "days since the vendor's payee account last changed"),
    "account_matches_master": _f("bool", "payee account equals the vendor's current master-data account"),
    "account_new_for_vendor": _f("bool", "payee account never used by or registered for this vendor"),
    "account_age_days": _f("number", "days since this payee account was first seen"),
    "account_vendor_count": _f("number", "other vendors that this payee account belongs to or was paid as"),
    "account_shared": _f("bool", "the payee account belongs to another vendor too"),
    "iban_invalid": _f(
        "bool", "the payee account is written as an IBAN but fails its check (check digits, length, structure)"
    ),
    "iban_problem": _f("text", "what fails the IBAN check: iban_checksum, iban_length, iban_structure, ..."),
    # Duplicates
    "duplicate_invoice": _f(
        "bool", "another payment to the vendor has the same normalised invoice reference and amount"
    ),
    "duplicate_invoice_days": _f("number", "days between this and that other payment"),
    "duplicate_of": _f("text", "the payment id of that other payment"),
    "invoice_norm": _f("text", "invoice reference after normalisation (case, spaces, punctuation, zeros)"),
    # ERP <-> payment platform
    "payment_known": _f("bool", "the ERP payment for this platform event is known (released or created)"),
    "released_amount": _f("number", "amount the ERP released for this payment"),
    "settled_amount_diff": _f("number", "abs(platform amount - released amount), payment currency"),
    "settled_amount_diff_ratio": _f("number", "settled_amount_diff / released amount"),
    "currency_mismatch": _f("bool", "platform currency differs from the released currency"),
    "hours_since_release": _f("number", "hours since the ERP released the payment"),
    "settlement_sla_hours": _f("number", "the company's settlement SLA in hours"),
    "fee": _f("number", "fee charged by the platform"),
    "fee_ratio": _f("number", "fee / amount"),
    # Channel health (platform events)
    "channel_failures_1h": _f("number", "failed or returned platform events on the channel, last hour"),
    "channel_events_1h": _f("number", "platform outcomes (settled, failed, returned) on the channel, 1 h"),
    "channel_failure_rate_1h": _f("number", "failures / outcomes on the channel in the last hour"),
    # Harder cases of the default typologies (models/typology_features.py)
    "business_hours_configured": _f(
        "bool", "the company's parameters set business hours that leave part of the week out (not 24/7)"
    ),
    "amount_over_vendor_max_30d": _f("number", "amount / the vendor's largest payment in 30 days (sparse vendors)"),
    "split_prior_count_2bd": _f(
        "number",
        "prior payments to the vendor this and the previous business day at 50-100 % of the limit (None"
        " unless this ERP payment is at 50 % of the limit or more)",
    ),
    "split_prior_sum_2bd": _f("number", "their amounts plus this one, in the payment's currency"),
    "split_prior_max_ratio_2bd": _f("number", "the largest share of the approval limit among them (below 1)"),
    "paid_to_changed_account": _f("bool", "payee account is the one the vendor's latest bank-detail change set"),
    "account_first_payment": _f("bool", "the company never released a payment to this vendor at this account"),
    "payee_outside_currency_area": _f(
        "bool", "payee account's country does not use the payment's currency as its own (EUR to SG)"
    ),
}

# Learnt from verdicts (label.confirmed, counted from the verdict's own event time; models/label_features.py)
_LABELLED = {
    "vendor": "payments to the vendor",
    "account": "payments into the payee account",
    "company": "payments of the paying company",
    "creator": "payments the creating user created",
}
for _entity, _what in _LABELLED.items():
    for _days in (7, 30):
        FEATURES[f"{_entity}_fraud_count_{_days}d"] = _f(
            "number", f"{_what} confirmed as fraud by a verdict that arrived in the last {_days} days"
        )
    FEATURES[f"{_entity}_fraud_rate_30d"] = _f(
        "number", f"{_entity}_fraud_count_30d / released {_what} in 30 days (None when there were none)"
    )
# Model scores (payment events; None when not scored)
FEATURES["model_score"] = _f(
    "number", "probability of fraud from the promoted supervised model (None when none is live); replay-stable"
)
FEATURES["anomaly_score"] = _f(
    "number", "Half-Space Trees anomaly score in [0, 1], learnt online by each worker: not replay-stable"
)

NUMERIC_FEATURES: tuple[str, ...] = tuple(n for n, s in FEATURES.items() if s.kind in ("number", "bool"))
