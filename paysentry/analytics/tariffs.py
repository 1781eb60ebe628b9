"""Channel tariffs (`config/channels.yaml`): what each payment channel costs, when it cuts off, how fast
it settles and what it may carry. Read through the bounded YAML loader (paysentry/yamlsource.py) and
pydantic with unknown keys refused, so every problem is reported as `file:line:col: message`.

Fees are in the payment's currency: fee = clamp(fixed_fee + amount x percent_fee / 100, min_fee,
max_fee), plus amount x fx_margin_percent / 100 when the payment's currency is not the paying
company's own. A tariff is eligible for a payment when its currency, company, payee country and amount
limits allow it, and (for channels the payee must be enrolled in, like a wallet) when the vendor was
already paid through it.
"""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from paysentry.contract import Channel
from paysentry.yamlsource import load_model_file

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("1e15"), allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)]
_CUTOFF = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
MAX_TARIFFS = 500


class CompanyTerms(BaseModel):
    """What the strategy report needs to know about a paying company."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: Currency = Field(description="the company's own currency (FX margins apply to others)")
    timezone: str | None = Field(default=None, description="IANA zone for cut-off times; default: the event's offset")
    cost_of_capital_percent: Percent = Field(default=Decimal("5"), description="yearly, for paying early")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ValueError, KeyError, ZoneInfoNotFoundError):
                raise ValueError(
                    f"unknown timezone {value[:40]!r} (expected an IANA name like 'Europe/Berlin')"
                ) from None
        return value


class Tariff(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    channel: Channel
    currencies: list[Currency] = Field(min_length=1, max_length=50)
    companies: list[str] | None = Field(default=None, max_length=500, description="default: every company")
    payee_countries: list[Country] | None = Field(default=None, max_length=300, description="default: any")
    fixed_fee: Money = Decimal(0)
    percent_fee: Percent = Decimal(0)
    min_fee: Money = Decimal(0)
    max_fee: Money | None = None
    fx_margin_percent: Percent = Decimal(0)
    cutoff: str | None = Field(default=None, description="HH:MM in the company's local time")
    settlement_days: int = Field(default=1, ge=0, le=30)
    min_amount: Money | None = None
    max_amount: Money | None = None
    needs_enrolment: bool = Field(default=False, description="only for vendors already paid through it")

    @field_validator("cutoff")
    @classmethod
    def _clock_time(cls, value: str | None) -> str | None:
        if value is not None and not _CUTOFF.match(value):
            raise ValueError(f"cutoff must be a time like '15:30' (24 h), got {value[:20]!r}")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> Tariff:
        if self.max_fee is not None and self.max_fee < self.min_fee:
            raise ValueError("max_fee must not be below min_fee")
        if self.max_amount is not None and self.min_amount is not None and self.max_amount < self.min_amount:
            raise ValueError("max_amount must not be below min_amount")
        return self

    def cutoff_time(self) -> time | None:
        if self.cutoff is None:
            return None
        hours, minutes = self.cutoff.split(":")
        return time(int(hours), int(minutes))

    def fee(self, amount: Decimal, currency: str, company_currency: str | None) -> Decimal:
        fee = self.fixed_fee + amount * self.percent_fee / 100
        fee = max(fee, self.min_fee)
        if self.max_fee is not None:
            fee = min(fee, self.max_fee)
        if company_currency is not None and currency != company_currency:
            fee += amount * self.fx_margin_percent / 100
        return fee.quantize(Decimal("0.01"))

    def eligible(
        self, *, currency: str, company: str | None, country: str | None, amount: Decimal, enrolled: bool
    ) -> bool:
        if currency not in self.currencies:
            return False
        if self.companies is not None and company not in self.companies:
            return False
        if self.payee_countries is not None and country not in self.payee_countries:
            return False
        if self.min_amount is not None and amount < self.min_amount:
            return False
        if self.max_amount is not None and amount > self.max_amount:
            return False
        return enrolled or not self.needs_enrolment


class TariffBook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    amount_bands: list[Money] = Field(
        default_factory=lambda: [Decimal(1000), Decimal(10000), Decimal(100000)],
        max_length=20,
        description="upper bounds of the amount bands, ascending",
    )
    small_payment_below: Money = Field(default=Decimal(1000), description="for batching: what counts as small")
    companies: dict[str, CompanyTerms] = Field(default_factory=dict, max_length=500)
    channels: list[Tariff] = Field(min_length=1, max_length=MAX_TARIFFS)

    @field_validator("amount_bands")
    @classmethod
    def _ascending(cls, value: list[Decimal]) -> list[Decimal]:
        if any(b <= a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError("amount_bands must be strictly ascending")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> TariffBook:
        names = [t.name for t in self.channels]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tariff names must be unique; repeated: {', '.join(duplicates[:5])}")
        return self

    def band(self, amount: Decimal) -> str:
        low = Decimal(0)
        for bound in self.amount_bands:
            if amount < bound:
                return f"{low:,.0f}-{bound:,.0f}"
            low = bound
        return f"{low:,.0f}+"

    def for_channel(
        self, channel: str | None, currency: str, company: str | None, country: str | None, amount: Decimal
    ) -> Tariff | None:
        """The tariff that priced a payment made through `channel` (enrolment assumed: it was used)."""
        for tariff in self.channels:
            if tariff.channel == channel and tariff.eligible(
                currency=currency, company=company, country=country, amount=amount, enrolled=True
            ):
                return tariff
        return None


def default_tariffs_path() -> Path:
    """config/channels.yaml under the working directory, else the one shipped in the repository."""
    local = Path("config/channels.yaml")
    return local if local.is_file() else Path(__file__).resolve().parents[2] / "config" / "channels.yaml"


def load_tariffs(path: Path) -> TariffBook:
    """The tariff book at `path`, or InvalidSource with every problem as `file:line:col: message`."""
    return load_model_file(
        path, TariffBook, what="the tariffs file", expected="a mapping with amount_bands, companies and channels"
    )
