"""The event contract (../shared/contract/) as pydantic models.

Everything that crosses the engine's edges goes through here: inbound events are parsed and checked by
`parse_event`, which also replaces the clear payee account with a keyed hash and a masked form, so the
clear value never travels further than this module. Decisions are built as `Decision` and written with
`Decision.to_json` (deterministic bytes: same decision, same bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

EventType = Literal[
    "payment.created",
    "payment.approved",
    "payment.released",
    "payment.cancelled",
    "psp.submitted",
    "psp.settled",
    "psp.failed",
    "psp.returned",
    "vendor.created",
    "vendor.updated",
    "label.confirmed",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
Channel = Literal["wire", "ach", "sepa", "cips", "swift", "alipay", "wechat_pay", "card", "check", "other"]
CHANNELS: tuple[str, ...] = Channel.__args__  # type: ignore[attr-defined]
Action = Literal["allow", "review", "hold", "block"]
ACTIONS: tuple[str, ...] = ("allow", "review", "hold", "block")
Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
Verdict = Literal["fraud", "legit", "error"]

MAX_MONEY = Decimal("1e15")
_MONEY_TEXT = re.compile(r"^[0-9]{1,15}(\.[0-9]{1,4})?$")


def _money(value: Any, *, allow_zero: bool) -> Decimal:
    """Money arrives as a decimal string or a JSON number; inside the engine it is always a Decimal."""
    if isinstance(value, bool):
        raise ValueError("must be a decimal string or a number, not a boolean")
    if isinstance(value, str):
        if value.startswith("-"):
            raise ValueError(f"must be positive, got {value!r}")
        if not _MONEY_TEXT.match(value):
            raise ValueError(f"{value!r} is not a decimal amount like '125000.00' (no signs, no separators)")
        amount = Decimal(value)
    elif isinstance(value, int | float):
        try:
            amount = Decimal(str(value))
        except InvalidOperation as exc:  # pragma: no cover - str() of a number always parses
            raise ValueError(f"{value!r} is not a number") from exc
        if not amount.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
    else:
        raise ValueError("must be a decimal string or a number")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ValueError(f"must be positive, got {value!r}")
    if amount > MAX_MONEY:
        raise ValueError(f"{value!r} is larger than the contract's maximum of 1e15")
    return amount


def _positive_money(value: Any) -> Decimal:
    return _money(value, allow_zero=False)


def _money_or_zero(value: Any) -> Decimal:
    return _money(value, allow_zero=True)


def _rfc3339_text(value: Any) -> Any:
    # pydantic would take a Unix timestamp too; the contract says RFC 3339 text with an offset.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 time string with an offset")
    return value


Money = Annotated[Decimal, BeforeValidator(_positive_money)]
MoneyOrZero = Annotated[Decimal, BeforeValidator(_money_or_zero)]
EventTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


def _text(max_length: int, min_length: int = 0) -> Any:
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length)]


_REQUIRED_BY_FAMILY: dict[str, tuple[str, ...]] = {
    "payment.": ("payment_id", "vendor_id", "amount", "currency"),
    "psp.": ("payment_id", "amount", "currency"),
    "vendor.": ("vendor_id",),
    "label.confirmed": ("payment_id", "verdict"),
}


class InvalidEvent(ValueError):
    """An event that breaks the contract. `reason` names the field and what is wrong with it."""

    def __init__(self, reason: str, event_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


class Event(BaseModel):
    """One inbound event, after the ingest boundary (no clear payee account inside)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    type: EventType
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    event_time: EventTime
    payment_id: _text(128, 1) | None = None  # type: ignore[valid-type]
    company_code: _text(32) | None = None  # type: ignore[valid-type]
    vendor_id: _text(64, 1) | None = None  # type: ignore[valid-type]
    vendor_name: _text(256) | None = None  # type: ignore[valid-type]
    invoice_id: _text(128) | None = None  # type: ignore[valid-type]
    po_id: _text(128) | None = None  # type: ignore[valid-type]
    amount: Money | None = None
    currency: Currency | None = None
    channel: Channel | None = None
    payee_account_hash: str | None = None
    payee_account_masked: str | None = None
    payee_bank: _text(128) | None = None  # type: ignore[valid-type]
    payee_country: Country | None = None
    created_by: _text(64) | None = None  # type: ignore[valid-type]
    approved_by: list[_text(64)] | None = None  # type: ignore[valid-type]
    due_date: date | None = None
    fee: MoneyOrZero | None = None
    fee_currency: Currency | None = None
    status_reason: _text(512) | None = None  # type: ignore[valid-type]
    changed_by: _text(64) | None = None  # type: ignore[valid-type]
    verdict: Verdict | None = None
    typology: _text(64) | None = None  # type: ignore[valid-type]
    labeled_by: _text(64) | None = None  # type: ignore[valid-type]
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _family_requirements(self) -> Event:
        for prefix, required in _REQUIRED_BY_FAMILY.items():
            if self.type.startswith(prefix):
                missing = [name for name in required if getattr(self, name) is None]
                if missing:
                    raise ValueError(f"{', '.join(missing)} required for a {self.type} event")
        return self

    @property
    def family(self) -> str:
        return self.type.split(".", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with money as decimal strings and the extras kept under `extra`."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)


_KNOWN_FIELDS = frozenset(Event.model_fields) - {"payee_account_hash", "payee_account_masked", "extra"}


def normalise_account(account: str) -> str:
    """Accounts are compared without spaces, dashes or case: 'gb33 bukb-2020' is 'GB33BUKB2020'."""
    return re.sub(r"[\s\-]", "", account).upper()


def hash_account(account: str, key: bytes) -> str:
    """Keyed hash (HMAC-SHA256, 128 bits shown) so the same account links across events without
    the clear number ever being stored; without the key the hash cannot be brute-forced offline."""
    return hmac.new(key, normalise_account(account).encode(), hashlib.sha256).hexdigest()[:32]


def mask_account(account: str) -> str:
    return "****" + normalise_account(account)[-4:]


def _format_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
        # pydantic nests the loc of Annotated before-validators under the type's name; drop that noise.
        loc = re.sub(r"\.(decimal|str|list|constrained-str|function-before\[.*?\])", "", loc)
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts)


def parse_event(raw: bytes | str | dict[str, Any], *, account_key: bytes) -> Event:
    """Decode and validate one inbound event, or raise InvalidEvent with a reason naming the field."""
    if isinstance(raw, bytes | str):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent(f"not valid JSON: {exc}") from None
    else:
        data = raw
    if not isinstance(data, dict):
        raise InvalidEvent(f"an event is a JSON object, got {type(data).__name__}")
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = dict(data.get("extra") or {}) if isinstance(data.get("extra"), dict) else {}
    for name, value in data.items():
        if name in _KNOWN_FIELDS:
            fields[name] = value
        elif name in ("extra", "payee_account", "payee_account_hash", "payee_account_masked"):
            continue
        else:
            extra[name] = value
    account = data.get("payee_account")
    if account is not None:
        if not isinstance(account, str) or not 4 <= len(account) <= 64:
            raise InvalidEvent("payee_account: must be a string of 4 to 64 characters", event_id)
        fields["payee_account_hash"] = hash_account(account, account_key)
        fields["payee_account_masked"] = mask_account(account)
    elif isinstance(data.get("payee_account_hash"), str):
        # Already past an ingest boundary (e.g. a decision log re-read): keep the hash as it is.
        fields["payee_account_hash"] = data["payee_account_hash"]
        fields["payee_account_masked"] = data.get("payee_account_masked")
    fields["extra"] = extra
    try:
        return Event.model_validate(fields)
    except ValidationError as exc:
        raise InvalidEvent(_format_error(exc), event_id) from None


class RuleHit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: str
    severity: Severity
    action: Action
    reason: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Decision(BaseModel):
    """One outbound decision (decision.schema.json)."""

    model_config = ConfigDict(extra="forbid")

    payment_id: str
    event_id: str
    event_time: str
    event_type: str | None = None
    vendor_id: str | None = None
    company_code: str | None = None
    action: Action
    risk_score: float = Field(ge=0.0, le=1.0)
    severity: Severity | None = None
    rule_hits: list[RuleHit]
    shadow_hits: list[RuleHit] = Field(default_factory=list)
    model_score: float | None = None
    explanation: dict[str, Any] = Field(default_factory=dict)
    ruleset_version: str = "unversioned"
    model_version: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def action_rank(action: str) -> int:
    return ACTIONS.index(action)


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)
