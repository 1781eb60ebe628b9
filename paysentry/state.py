"""Per-entity state: what the core remembers between events, all of it bounded.

Entities are keyed by a short prefix and the entity id (`v:V10023`, `p:PAY-1`, ...), so any key-value
store can hold them: a dict in the embedded run, Faust tables in the stream. Each entity keeps small
accumulators and capped maps; what is older than the longest window is evicted as new events arrive.
Every entity serialises to plain JSON-able data (`to_data` / `entity_from_data`).

Eviction is by event time and semantic: every entity records the event time of its last write
(`touched_at`; the core writes back every entity an event or a timer reads, so a read counts as
activity), and one idle past its horizon behaves exactly as absent when the core reads it
(`Entity.idle_past`), whether or not a sweep has deleted it yet. Sweeps (replay's, and each stream
partition's) only delete what already reads as absent, so when they run cannot change a decision.

Horizons:
- company, user, channel, vendor and account profiles: `PROFILE_MEMORY` (35 days) after their last
  write; by then every window is empty and the invoice register has forgotten every invoice. A vendor
  or account idle that long is "new" again to the profile features (its master data still knows it).
- payments: `PROFILE_MEMORY` after their last write, and never while a timer is pending (the core
  checks that: `Engine.expired`). That covers payments created and never released, platform events
  for unknown payments (after the unmatched timer fired), labels for unknown payments, and payments
  released and never settled (after the settlement-SLA timer fired). An event redelivered after its
  payment expired is a new event to the engine: redelivery memory lasts as long as the payment.
- vendor master data (`VendorMaster`, `AccountMaster`, from vendor.* events) is never evicted: it is
  as large as the vendor master (accounts per vendor and vendors per account are capped), and forgetting
  a vendor's creation date or bank-account changes would make a long-dormant vendor whose account was
  just changed look unremarkable, which is exactly the takeover pattern the rules look for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import msgpack
import orjson

from paysentry.windows import DAY, HOUR, LONGEST_WINDOW, WindowedStats

MAX_ACCOUNTS_PER_VENDOR = 16
MAX_VENDORS_PER_ACCOUNT = 16
MAX_INVOICES_PER_VENDOR = 512
MAX_EVENT_IDS_PER_ENTITY = 64
MAX_RECENT_FAILURES = 16  # failures a channel remembers by payment id, all within FAILURE_MEMORY
FAILURE_MEMORY = HOUR
INVOICE_MEMORY = 35 * DAY
PROFILE_MEMORY = INVOICE_MEMORY  # idle this long, a profile holds nothing any window or register reads
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
    # None: never expires (master data), else how long after its last write an entity reads as absent
    memory: ClassVar[int | None] = PROFILE_MEMORY
    seen_event_ids: list[str] = field(default_factory=list)
    touched_at: int | None = None  # event time of the last write (absent in state written before it existed)

    def remember(self, event_id: str) -> bool:
        """Record an event id; False if it was already applied to this entity (a redelivery)."""
        if event_id in self.seen_event_ids:
            return False
        self.seen_event_ids.append(event_id)
        if len(self.seen_event_ids) > MAX_EVENT_IDS_PER_ENTITY:
            del self.seen_event_ids[0]
        return True

    def touch(self, at: int) -> None:
        self.touched_at = at if self.touched_at is None else max(self.touched_at, at)

    def last_active(self) -> int | None:
        """When this entity was last written; older state without `touched_at` falls back on its own
        timestamps."""
        return self.touched_at

    def idle_past(self, at: int) -> bool:
        """True if, at event time `at`, this entity has been idle longer than its horizon."""
        memory = self.memory
        if memory is None:
            return False
        touched = self.touched_at
        if touched is not None and at <= touched + memory:
            return False  # last_active() is never earlier than touched_at: no need to weigh the rest
        last = self.last_active()
        return last is not None and at > last + memory

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
    frauds: WindowedStats = field(default_factory=WindowedStats)  # confirmed frauds, by the verdict's time

    def last_active(self) -> int | None:
        return _latest(self.touched_at, self.last_seen, self.first_seen)


@dataclass(slots=True)
class CompanyProfile(ActivityProfile):
    prefix: ClassVar[str] = "c"


@dataclass(slots=True)
class UserProfile(ActivityProfile):
    prefix: ClassVar[str] = "u"


@dataclass(slots=True)
class ChannelProfile(ActivityProfile):
    prefix: ClassVar[str] = "ch"
    # [payment id, event time] of the latest failures and returns within the hour, oldest first, so a
    # flagged failure can name the ones before it (absent in state written before it existed)
    recent_failures: list[list[Any]] = field(default_factory=list)

    def add_failure(self, payment_id: str, at: int) -> None:
        """Remember a failed or returned payment (once per payment, at its latest failure)."""
        kept = [entry for entry in self.recent_failures if entry[0] != payment_id]
        newest = max((entry[1] for entry in kept), default=at)
        horizon = max(at, newest) - FAILURE_MEMORY
        kept = [entry for entry in kept if entry[1] > horizon]
        if at > horizon:
            kept.append([payment_id, at])
        kept.sort(key=lambda entry: entry[1])
        self.recent_failures = kept[-MAX_RECENT_FAILURES:]

    def failures_before(self, at: int, payment_id: str | None) -> list[str]:
        """Payment ids of the failures in the hour up to `at`, other than `payment_id`'s, oldest first."""
        return [pid for pid, when in self.recent_failures if at - FAILURE_MEMORY < when <= at and pid != payment_id]


@dataclass(slots=True)
class VendorMaster(Entity):
    """The vendor master data (from vendor.* events): the same for every paying company."""

    prefix: ClassVar[str] = "vm"
    sharded: ClassVar[bool] = False
    memory: ClassVar[int | None] = None
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
    memory: ClassVar[int | None] = None
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
    frauds: WindowedStats = field(default_factory=WindowedStats)  # confirmed frauds, by the verdict's time
    # normalised invoice reference -> [amount as text, epoch, payment id]
    invoices: dict[str, list[Any]] = field(default_factory=dict)

    def last_active(self) -> int | None:
        return _latest(self.touched_at, self.last_paid, self.first_seen)

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
    frauds: WindowedStats = field(default_factory=WindowedStats)  # confirmed frauds, by the verdict's time

    def last_active(self) -> int | None:
        return _latest(self.touched_at, self.last_seen, self.first_seen)

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
    fraud_counted: bool = False  # a fraud verdict was counted in the label features (once per payment)

    @property
    def erp_known(self) -> bool:
        return self.created_at is not None or self.released_at is not None

    @property
    def finished(self) -> bool:
        return self.status in ("settled", "failed", "returned", "cancelled")

    def last_activity(self) -> int:
        return max(t for t in (self.created_at, self.released_at, self.platform_first_at, self.settled_at, 0)
                   if t is not None)  # fmt: skip

    def last_active(self) -> int | None:
        return self.touched_at if self.touched_at is not None else self.last_activity()


def _latest(*times: int | None) -> int | None:
    latest = None
    for t in times:
        if t is not None and (latest is None or t > latest):
            latest = t
    return latest


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
_STATS_FIELDS = ("stats", "near_limit", "frauds")
_FIELD_NAMES = {cls: tuple(f.name for f in fields(cls)) for cls in ENTITY_TYPES.values()}


def entity_from_data(data: dict[str, Any]) -> Entity:
    cls = ENTITY_TYPES[data["kind"]]
    known = _FIELD_NAMES[cls]
    # A field an older version stored and this one dropped is ignored, so its tables still decode.
    values = {k: v for k, v in data.items() if k in known}
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


# -- packed form, for an in-process store only ----------------------------------------------------
# Field values in declaration order, without names, in MessagePack (a third smaller than JSON), behind
# an 8-byte expiry hint: a few hundred bytes per entity instead of a few thousand as live objects. The
# layout follows the code, so it must never be persisted (snapshots and tables use `encode_entity`).
_HINT_BYTES = 8
NEVER = 2**62


def expiry_hint(entity: Entity) -> int:
    """A bound for `idle_past`: an entity is not idle past its horizon at any time <= this."""
    if entity.memory is None:
        return NEVER
    last = entity.last_active()
    return -NEVER if last is None else last + entity.memory


def pack_entity(entity: Entity) -> bytes:
    values: list[Any] = [entity.prefix]
    for name in _FIELD_NAMES[type(entity)]:
        value = getattr(entity, name)
        values.append(value.to_data() if isinstance(value, WindowedStats) else value)
    hint = expiry_hint(entity).to_bytes(_HINT_BYTES, "little", signed=True)
    return hint + msgpack.packb(values)


def unpack_entity(data: bytes) -> Entity:
    prefix, *values = msgpack.unpackb(memoryview(data)[_HINT_BYTES:], strict_map_key=False)
    cls = ENTITY_TYPES[prefix]
    arguments = dict(zip(_FIELD_NAMES[cls], values, strict=True))
    for name in _STATS_FIELDS:
        if name in arguments:
            arguments[name] = WindowedStats.from_data(arguments[name])
    return cls(**arguments)


def packed_expiry_hint(data: bytes) -> int:
    return int.from_bytes(data[:_HINT_BYTES], "little", signed=True)
