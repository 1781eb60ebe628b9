"""Per-entity state: what the core remembers between events, all of it bounded.

Entities are keyed by a short prefix and the entity id (`v:V10023`, `p:PAY-1`, ...), so any key-value
store can hold them: a dict in the embedded run, Faust tables in the stream. Each entity keeps small
accumulators and capped maps; what is older than the longest window is evicted as new events arrive.
Every entity serialises to plain JSON-able data (`to_data` / `entity_from_data`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import orjson

from paysentry.windows import DAY, LONGEST_WINDOW, WindowedStats

MAX_ACCOUNTS_PER_VENDOR = 16
MAX_VENDORS_PER_ACCOUNT = 16
MAX_INVOICES_PER_VENDOR = 512
MAX_EVENT_IDS_PER_ENTITY = 64
INVOICE_MEMORY = 35 * DAY
assert INVOICE_MEMORY >= LONGEST_WINDOW


def _cap_oldest(mapping: dict[str, Any], limit: int, age_of: Any) -> None:
    """Drop the oldest entries of a dict until it holds `limit`."""
    if len(mapping) > limit:
        for key in sorted(mapping, key=age_of)[: len(mapping) - limit]:
            del mapping[key]


@dataclass(slots=True)
class Entity:
    prefix: ClassVar[str] = ""
    # Sharded entities live with their paying company's shard; master data is shared by all shards.
    sharded: ClassVar[bool] = True
    seen_event_ids: list[str] = field(default_factory=list)

    def remember(self, event_id: str) -> bool:
        """Record an event id; False if it was already applied to this entity (a redelivery)."""
        if event_id in self.seen_event_ids:
            return False
        self.seen_event_ids.append(event_id)
        if len(self.seen_event_ids) > MAX_EVENT_IDS_PER_ENTITY:
            del self.seen_event_ids[0]
        return True

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.prefix}
        for f in fields(self):
            value = getattr(self, f.name)
            data[f.name] = value.to_data() if isinstance(value, WindowedStats) else value
        return data


@dataclass(slots=True)
class ActivityProfile(Entity):
    """A company, a creating user or a channel: just rolling aggregates."""

    prefix: ClassVar[str] = "c"
    stats: WindowedStats = field(default_factory=WindowedStats)
    first_seen: int | None = None
    last_seen: int | None = None


@dataclass(slots=True)
class CompanyProfile(ActivityProfile):
    prefix: ClassVar[str] = "c"


@dataclass(slots=True)
class UserProfile(ActivityProfile):
    prefix: ClassVar[str] = "u"


@dataclass(slots=True)
class ChannelProfile(ActivityProfile):
    prefix: ClassVar[str] = "ch"


@dataclass(slots=True)
class VendorMaster(Entity):
    """The vendor master data (from vendor.* events): the same for every paying company."""

    prefix: ClassVar[str] = "vm"
    sharded: ClassVar[bool] = False
    created_at: int | None = None
    first_seen: int | None = None
    master_account: str | None = None
    master_masked: str | None = None
    last_bank_change: int | None = None
    # account hash -> first time it was registered for this vendor
    accounts: dict[str, int] = field(default_factory=dict)

    def add_account(self, account: str, at: int) -> None:
        self.accounts.setdefault(account, at)
        _cap_oldest(self.accounts, MAX_ACCOUNTS_PER_VENDOR, self.accounts.__getitem__)


@dataclass(slots=True)
class AccountMaster(Entity):
    """Which vendors' master data names this account."""

    prefix: ClassVar[str] = "am"
    sharded: ClassVar[bool] = False
    first_seen: int | None = None
    vendors: dict[str, int] = field(default_factory=dict)

    def add_vendor(self, vendor_id: str, at: int) -> None:
        self.vendors.setdefault(vendor_id, at)
        _cap_oldest(self.vendors, MAX_VENDORS_PER_ACCOUNT, self.vendors.__getitem__)


@dataclass(slots=True)
class VendorProfile(Entity):
    """What one paying company's payments to a vendor look like."""

    prefix: ClassVar[str] = "v"
    first_seen: int | None = None
    last_paid: int | None = None
    # account hash -> first time this company paid the vendor there
    accounts: dict[str, int] = field(default_factory=dict)
    stats: WindowedStats = field(default_factory=lambda: WindowedStats(with_histogram=True))
    near_limit: WindowedStats = field(default_factory=WindowedStats)
    # normalised invoice reference -> [amount as text, epoch, payment id]
    invoices: dict[str, list[Any]] = field(default_factory=dict)

    def add_account(self, account: str, at: int) -> None:
        self.accounts.setdefault(account, at)
        _cap_oldest(self.accounts, MAX_ACCOUNTS_PER_VENDOR, self.accounts.__getitem__)

    def add_invoice(self, reference: str, amount: str, at: int, payment_id: str) -> None:
        self.invoices[reference] = [amount, at, payment_id]
        horizon = at - INVOICE_MEMORY
        for key in [k for k, v in self.invoices.items() if v[1] < horizon]:
            del self.invoices[key]
        _cap_oldest(self.invoices, MAX_INVOICES_PER_VENDOR, lambda k: self.invoices[k][1])


@dataclass(slots=True)
class AccountProfile(Entity):
    """One paying company's payments into a payee account."""

    prefix: ClassVar[str] = "a"
    first_seen: int | None = None
    last_seen: int | None = None
    # vendor id -> first time this account was seen for that vendor
    vendors: dict[str, int] = field(default_factory=dict)
    stats: WindowedStats = field(default_factory=WindowedStats)

    def add_vendor(self, vendor_id: str, at: int) -> None:
        self.vendors.setdefault(vendor_id, at)
        _cap_oldest(self.vendors, MAX_VENDORS_PER_ACCOUNT, self.vendors.__getitem__)


@dataclass(slots=True)
class PaymentRecord(Entity):
    """One payment's life across the ERP and the payment platform (for reconciliation and timers)."""

    prefix: ClassVar[str] = "p"
    payment_id: str | None = None
    vendor_id: str | None = None
    company_code: str | None = None
    currency: str | None = None
    channel: str | None = None
    amount: str | None = None  # latest ERP amount, decimal text
    created_by: str | None = None
    approved_by: list[str] = field(default_factory=list)
    invoice_norm: str | None = None
    payee_account_hash: str | None = None
    payee_account_masked: str | None = None
    created_at: int | None = None
    released_at: int | None = None
    released_amount: str | None = None
    released_currency: str | None = None
    status: str | None = None  # last lifecycle step: created, approved, released, settled, failed, ...
    platform_first_at: int | None = None  # first platform event, for unmatched detection
    platform_amount: str | None = None
    settled_at: int | None = None
    settled_amount: str | None = None
    fee: str | None = None
    counted: bool = False  # added to the rolling aggregates (once per payment)
    sla_flagged: bool = False
    unmatched_flagged: bool = False
    label: str | None = None
    typology: str | None = None
    last_event_time: str | None = None

    @property
    def erp_known(self) -> bool:
        return self.created_at is not None or self.released_at is not None

    @property
    def finished(self) -> bool:
        return self.status in ("settled", "failed", "returned", "cancelled")

    def last_activity(self) -> int:
        return max(t for t in (self.created_at, self.released_at, self.platform_first_at, self.settled_at, 0)
                   if t is not None)  # fmt: skip


ENTITY_TYPES: dict[str, type[Entity]] = {
    cls.prefix: cls
    for cls in (
        CompanyProfile,
        UserProfile,
        ChannelProfile,
        VendorProfile,
        AccountProfile,
        PaymentRecord,
        VendorMaster,
        AccountMaster,
    )
}
_STATS_FIELDS = ("stats", "near_limit")


def entity_from_data(data: dict[str, Any]) -> Entity:
    cls = ENTITY_TYPES[data["kind"]]
    values = {k: v for k, v in data.items() if k != "kind"}
    for name in _STATS_FIELDS:
        if name in values:
            values[name] = WindowedStats.from_data(values[name])
    return cls(**values)


def key_for(cls: type[Entity], entity_id: str, shard: str) -> str:
    """`CN01/v:V10023` for a shard's entity, `vm:V10023` for master data."""
    return f"{shard}/{cls.prefix}:{entity_id}" if cls.sharded else f"{cls.prefix}:{entity_id}"


def shard_of(key: str) -> str | None:
    head, _, _ = key.partition("/")
    return head if "/" in key else None


def encode_entity(entity: Entity) -> bytes:
    """Bytes for a table or snapshot (histogram keys are ints, hence OPT_NON_STR_KEYS)."""
    return orjson.dumps(entity.to_data(), option=orjson.OPT_NON_STR_KEYS)


def decode_entity(data: bytes) -> Entity:
    return entity_from_data(orjson.loads(data))
