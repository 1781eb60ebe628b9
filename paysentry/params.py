"""Per-company parameters that risk teams set beside their rules (approval limits, timezone, hours).

They shape features (hour of day in the company's timezone, share of the approval limit), so the core
needs them as much as the rules do; the rules loader reads them from `companies.yaml`.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A settlement takes days, not months; the bound also keeps a payment's life after its last event finite,
# which is what lets routes expire (paysentry/sharding.py).
MAX_SETTLEMENT_SLA_HOURS = 30 * 24


class CompanyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str | None = Field(
        default=None, description="IANA zone; None means the offset the ERP stamped on the event"
    )
    currency: str | None = Field(default=None, description="currency of approval_limit; None = event's")
    approval_limit: Decimal | None = Field(default=None, gt=0)
    business_hours: tuple[int, int] = Field(default=(7, 20), description="local [start, end) hours")
    business_days: tuple[int, ...] = Field(default=(0, 1, 2, 3, 4), description="0 = Monday")
    settlement_sla_hours: float = Field(default=48.0, gt=0, le=MAX_SETTLEMENT_SLA_HOURS)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except Exception as exc:
                raise ValueError(f"unknown timezone {value!r} (expected an IANA name like 'Asia/Shanghai')") from exc
        return value

    @field_validator("business_hours")
    @classmethod
    def _hours_in_day(cls, value: tuple[int, int]) -> tuple[int, int]:
        start, end = value
        if not (0 <= start < end <= 24):
            raise ValueError(f"business_hours must be [start, end) with 0 <= start < end <= 24, got {value}")
        return value

    def zone(self) -> ZoneInfo | None:
        return _zone(self.timezone) if self.timezone else None


@lru_cache(maxsize=256)  # every feature computation asks; names are checked when the parameters load
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


DEFAULT_COMPANY = CompanyParams()
