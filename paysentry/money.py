"""Amounts across currencies: the reporting currency, conversions between currencies, minor units."""

from __future__ import annotations

from decimal import Decimal

# Reference rates to the reporting currency (USD), for comparing amounts across currencies in
# baselines. Static on purpose: baselines need stable units, not treasury-grade conversion.
USD_PER_UNIT: dict[str, Decimal] = {
    "USD": Decimal("1"), "EUR": Decimal("1.08"), "GBP": Decimal("1.27"), "CNY": Decimal("0.14"),
    "JPY": Decimal("0.0067"), "CHF": Decimal("1.12"), "HKD": Decimal("0.128"), "SGD": Decimal("0.74"),
    "CAD": Decimal("0.73"), "AUD": Decimal("0.66"), "INR": Decimal("0.012"), "KRW": Decimal("0.00074"),
    "MXN": Decimal("0.058"), "BRL": Decimal("0.18"), "SEK": Decimal("0.095"), "PLN": Decimal("0.25"),
}  # fmt: skip


def to_base(amount: Decimal, currency: str | None) -> Decimal:
    """Amount in the reporting currency; an unknown currency is taken at par (flagged by no feature,
    but visible in the explanation as amount_base == amount)."""
    return amount * USD_PER_UNIT.get(currency or "USD", Decimal(1))


def convert(amount: Decimal, from_currency: str | None, to_currency: str | None) -> Decimal:
    if from_currency == to_currency or not from_currency or not to_currency:
        return amount
    rate_from = USD_PER_UNIT.get(from_currency)
    rate_to = USD_PER_UNIT.get(to_currency)
    if rate_from is None or rate_to is None:
        return amount
    return amount * rate_from / rate_to


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())
