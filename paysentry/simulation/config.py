"""What a simulation run looks like: the paying companies, their people and habits, and the run's knobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal


@dataclass(frozen=True)
class ChannelHabit:
    """A payment channel a company's vendors may use, and for which typical invoice sizes."""

    channel: str
    weight: float
    min_typical: float = 0.0
    max_typical: float = float("inf")


@dataclass(frozen=True)
class SimulatedCompany:
    """One paying company code: where it sits, what it pays in, who works its AP, how it pays."""

    code: str
    timezone: str
    currency: str
    country: str
    approval_limit: Decimal
    clerks: tuple[str, ...]
    approvers: tuple[str, ...]
    run_times: tuple[time, ...]
    channels: tuple[ChannelHabit, ...]
    foreign_channel: str
    vendor_countries: tuple[tuple[str, float], ...]
    domestic_countries: tuple[str, ...]
    vendor_share: float
    typical_amount: float
    typical_spread: float

    @property
    def main_channel(self) -> str:
        return max(self.channels, key=lambda habit: habit.weight).channel


CN01 = SimulatedCompany(
    code="CN01",
    timezone="Asia/Shanghai",
    currency="CNY",
    country="CN",
    approval_limit=Decimal("500000.00"),
    clerks=("u-cn-ap-01", "u-cn-ap-02", "u-cn-ap-03", "u-cn-ap-04"),
    approvers=("u-cn-fin-01", "u-cn-fin-02", "u-cn-fin-03"),
    run_times=(time(10, 0), time(15, 30)),
    channels=(
        ChannelHabit("cips", 0.5),
        ChannelHabit("alipay", 0.3, max_typical=60_000),
        ChannelHabit("wechat_pay", 0.2, max_typical=20_000),
    ),
    foreign_channel="cips",
    vendor_countries=(("CN", 0.9), ("HK", 0.1)),
    domestic_countries=("CN",),
    vendor_share=0.35,
    typical_amount=20_000.0,
    typical_spread=1.2,
)

US01 = SimulatedCompany(
    code="US01",
    timezone="America/New_York",
    currency="USD",
    country="US",
    approval_limit=Decimal("50000.00"),
    clerks=("u-us-ap-01", "u-us-ap-02", "u-us-ap-03", "u-us-ap-04"),
    approvers=("u-us-fin-01", "u-us-fin-02", "u-us-fin-03"),
    run_times=(time(11, 0), time(16, 0)),
    channels=(
        ChannelHabit("ach", 0.55),
        ChannelHabit("wire", 0.2, min_typical=8_000),
        ChannelHabit("check", 0.15, max_typical=20_000),
        ChannelHabit("card", 0.1, max_typical=5_000),
    ),
    foreign_channel="wire",
    vendor_countries=(("US", 0.9), ("CA", 0.06), ("MX", 0.04)),
    domestic_countries=("US",),
    vendor_share=0.35,
    typical_amount=3_000.0,
    typical_spread=1.2,
)

DE01 = SimulatedCompany(
    code="DE01",
    timezone="Europe/Berlin",
    currency="EUR",
    country="DE",
    approval_limit=Decimal("50000.00"),
    clerks=("u-de-ap-01", "u-de-ap-02", "u-de-ap-03"),
    approvers=("u-de-fin-01", "u-de-fin-02", "u-de-fin-03"),
    run_times=(time(10, 30), time(14, 30)),
    channels=(ChannelHabit("sepa", 1.0),),
    foreign_channel="swift",
    vendor_countries=(("DE", 0.72), ("AT", 0.1), ("NL", 0.08), ("FR", 0.06), ("TR", 0.04)),
    domestic_countries=("DE", "AT", "NL", "FR"),
    vendor_share=0.30,
    typical_amount=2_500.0,
    typical_spread=1.1,
)

DEFAULT_COMPANIES: tuple[SimulatedCompany, ...] = (CN01, US01, DE01)

MDM_USERS: tuple[str, ...] = ("u-mdm-01", "u-mdm-02", "u-mdm-03")
RISK_USERS: tuple[str, ...] = ("u-risk-01", "u-risk-02", "u-risk-03")

# Injected typologies: verdict ("fraud", "error", or "mixed" for either) and relative frequency.
TYPOLOGY_PLAN: dict[str, tuple[str, float]] = {
    "duplicate_payment": ("error", 1.5),
    "bank_change_bec": ("fraud", 1.0),
    "shared_account": ("fraud", 1.0),
    "amount_outlier": ("mixed", 1.2),
    "split_payment": ("fraud", 0.8),
    "new_vendor_large": ("fraud", 0.8),
    "off_hours_release": ("fraud", 1.0),
    "self_approval": ("fraud", 1.0),
    "settlement_mismatch": ("error", 1.2),
    "orphan_settlement": ("fraud", 0.8),
    "unsettled_sla": ("error", 1.0),
    "channel_failure_spike": ("error", 0.6),
}
TYPOLOGIES: tuple[str, ...] = tuple(TYPOLOGY_PLAN)


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of one run. The same config always produces the same events, byte for byte.

    `anomaly_rate` is the number of injected incidents per typology per business day after the
    warm-up (scaled by each typology's relative frequency, and at least two of each): the default
    gives two to six incidents of each typology over 30 days.
    """

    days: int = 30
    seed: int = 7
    start: date = date(2026, 10, 1)
    vendors: int = 80
    companies: tuple[SimulatedCompany, ...] = DEFAULT_COMPANIES
    anomaly_rate: float = 0.2
    warmup_days: int = 5
    payments_per_vendor_day: float = 1.8
    failure_rate: float = 0.015
    cancel_rate: float = 0.006

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if not self.companies:
            raise ValueError("at least one company is needed")
        if self.vendors < 2 * len(self.companies):
            raise ValueError(f"need at least {2 * len(self.companies)} vendors for {len(self.companies)} companies")
        if self.anomaly_rate < 0 or self.failure_rate < 0 or self.cancel_rate < 0:
            raise ValueError("rates must not be negative")
        if self.payments_per_vendor_day <= 0:
            raise ValueError("payments_per_vendor_day must be positive")
