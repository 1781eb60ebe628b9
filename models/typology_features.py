"""Features for the default typologies' harder cases (names and meanings: paysentry/feature_catalog.py).

- Sparse vendors: a vendor paid fewer than five times in 30 days has no usable median, so an outlier is
  measured against the largest payment it did get (`amount_over_vendor_max_30d`); rules compare it with the
  paying company's own payments too (`avg_over_time(company[30d])`).
- Splits spread over days: prior payments to the vendor in the current and the previous business day
  of the company (so Friday + Monday is one window), near the approval limit. The band is the rule's
  choice: `split_prior_max_ratio_2bd` is the largest share of the limit among those payments (below the
  limit), so `split_prior_max_ratio_2bd >= 0.85` reads "another payment at 85-100 % of the limit".
  They come from the vendor's invoice register (exact amounts and times of its live payments, 35 days).
- Bank changes: whether this payment goes to the account a bank-detail change registered, whether
  the company has ever paid the vendor there before, and whether that account is outside the area
  where the payment's currency is the local one (EUR to Singapore: the classic takeover switch).
- Business hours: whether the company's parameters name business hours that leave some time out, so
  an off-hours rule stays silent for companies that pay around the clock (card portfolios) or that
  nobody configured.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from paysentry.event_time import local_time
from paysentry.money import convert
from paysentry.params import CompanyParams

if TYPE_CHECKING:
    from models.features import FeatureInputs

SPLIT_RATIO_FLOOR = Decimal("0.5")  # prior payments below half the limit never count as a split part
_EURO_AREA = ("AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV", "MT",
              "NL", "PT", "SI", "SK")  # fmt: skip
# Where a currency is the local one (ISO 4217 users), for the currencies paysentry.money converts.
CURRENCY_AREAS: dict[str, frozenset[str]] = {
    "EUR": frozenset(_EURO_AREA), "USD": frozenset({"US", "PR", "EC", "SV", "PA"}),
    "GBP": frozenset({"GB", "IM", "JE", "GG"}), "CNY": frozenset({"CN"}), "JPY": frozenset({"JP"}),
    "CHF": frozenset({"CH", "LI"}), "HKD": frozenset({"HK"}), "SGD": frozenset({"SG"}), "CAD": frozenset({"CA"}),
    "AUD": frozenset({"AU"}), "INR": frozenset({"IN"}), "KRW": frozenset({"KR"}), "MXN": frozenset({"MX"}),
    "BRL": frozenset({"BR"}), "SEK": frozenset({"SE"}), "PLN": frozenset({"PL"}),
}  # fmt: skip


def typology_features(
    inputs: FeatureInputs,
    amount: Decimal | None,
    currency: str | None,
    amount_base: float | None,
    vendor_max_30d: float | None,
) -> dict[str, Any]:
    """`vendor_max_30d` is the vendor's largest payment in 30 days (reporting currency), already read."""
    out: dict[str, Any] = {"business_hours_configured": business_hours_configured(inputs.company)}
    largest = vendor_max_30d or 0.0
    out["amount_over_vendor_max_30d"] = amount_base / largest if amount_base is not None and largest > 0 else None
    out.update(_split_features(inputs, amount, currency))
    out.update(_bank_change_features(inputs))
    country = inputs.event.payee_country if inputs.event is not None else None
    area = CURRENCY_AREAS.get(currency or "")
    out["payee_outside_currency_area"] = None if country is None or area is None else country not in area
    return out


def business_hours_configured(company: CompanyParams) -> bool:
    """The company's parameters set business hours (its own entry or `default` in companies.yaml) and
    they leave part of the week out: a company open 24/7 has no off hours."""
    if "business_hours" not in company.model_fields_set:
        return False
    start, end = company.business_hours
    return (start, end) != (0, 24) or len(set(company.business_days)) < 7


def _window_start(inputs: FeatureInputs) -> int:
    """Local midnight of the business day before the payment's (so two business days are in view)."""
    local = local_time(inputs.moment, inputs.company)
    days = set(inputs.company.business_days) or set(range(7))
    day = local.date() - timedelta(days=1)
    for _ in range(7):
        if day.weekday() in days:
            break
        day -= timedelta(days=1)
    midnight = datetime(day.year, day.month, day.day, tzinfo=local.tzinfo)
    return int(midnight.timestamp())


def _split_features(inputs: FeatureInputs, amount: Decimal | None, currency: str | None) -> dict[str, Any]:
    company, vendor, event = inputs.company, inputs.vendor, inputs.event
    none = {"split_prior_count_2bd": None, "split_prior_sum_2bd": None, "split_prior_max_ratio_2bd": None}
    if company.approval_limit is None or amount is None or vendor is None:
        return none
    limit = convert(company.approval_limit, company.currency, currency)
    if limit <= 0 or amount < SPLIT_RATIO_FLOOR * limit or not inputs.event_type.startswith("payment."):
        return none  # only a payment that could itself be a split part reads the register (it costs a scan)
    payment_id = (event.payment_id if event is not None else None) or (
        inputs.record.payment_id if inputs.record else None
    )
    since = _window_start(inputs)
    count, total, largest = 0, Decimal(0), Decimal(0)
    for amount_text, at, other in vendor.invoices.values():
        if other == payment_id or not since <= at <= inputs.at:
            continue
        prior = Decimal(amount_text)
        ratio = prior / limit
        if SPLIT_RATIO_FLOOR <= ratio < 1:
            count, total, largest = count + 1, total + prior, max(largest, ratio)
    return {
        "split_prior_count_2bd": float(count),
        "split_prior_sum_2bd": float(total + amount),
        "split_prior_max_ratio_2bd": float(largest) if count else None,
    }


def _bank_change_features(inputs: FeatureInputs) -> dict[str, Any]:
    event, master, vendor = inputs.event, inputs.vendor_master, inputs.vendor
    account = event.payee_account_hash if event is not None else None
    if account is None:
        return {"paid_to_changed_account": None, "account_first_payment": None}
    registered = master.accounts.get(account) if master is not None else None
    changed = master is not None and master.last_bank_change is not None
    return {
        # the account the latest bank-detail change registered (not an older one paid again)
        "paid_to_changed_account": bool(
            changed and registered is not None and master is not None and registered >= (master.last_bank_change or 0)
        ),
        "account_first_payment": vendor is None or account not in vendor.accounts,
    }
