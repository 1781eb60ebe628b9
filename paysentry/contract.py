"""The event contract (../shared/contract/) as pydantic models.

Everything that crosses the engine's edges goes through here: inbound events are parsed and checked by
`parse_event`, which also replaces the clear payee account with a keyed hash and a masked form, so the
clear value never travels further than this module, and masks anything else that looks like an account
(paysentry/redaction.py). Decoding is bounded and exact (paysentry/decode.py), and an event's time must
be plausible (`TimeWindow`). Decisions are built as `Decision` and written with `Decision.to_json`
(deterministic bytes: same decision, same bytes; bounded in size).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from paysentry.decode import MAX_EXTRA_KEYS, MAX_RECORD_BYTES, RecordRefused, decode_record, encode_plain
from paysentry.event_time import DEFAULT_TIME_WINDOW, TimeWindow, check_event_time
from paysentry.iban import iban_problem
from paysentry.redaction import mask_account, normalise_account, scrub_text, scrub_value

# Kept importable from here, where callers look for the contract's pieces.
__all__ = ["DEFAULT_TIME_WINDOW", "TimeWindow", "check_event_time", "mask_account", "normalise_account"]

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
_MONEY_TEXT = re.compile(r"[0-9]{1,15}(\.[0-9]{1,4})?")
_SHOWN_CHARS = 40  # of a bad value, in a reason


def _shown(value: Any) -> str:
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def _money(value: Any, *, allow_zero: bool) -> Decimal:
    """Money arrives as a decimal string or a JSON number; inside the engine it is always a Decimal.
    Both follow the same rules: no sign, at most 15 integer digits and 4 decimals."""
    if isinstance(value, bool):
        raise ValueError("must be a decimal string or a number, not a boolean")
    if isinstance(value, str):
        if value.startswith("-"):
            raise ValueError(f"must be positive, got {_shown(value)}")
        if not _MONEY_TEXT.fullmatch(value):
            raise ValueError(f"{_shown(value)} is not a decimal amount like '125000.00' (no signs, no separators)")
        amount = Decimal(value)
    elif isinstance(value, int | float | Decimal):
        amount = _number_amount(value)
    else:
        raise ValueError("must be a decimal string or a number")
    if amount == 0 and not allow_zero:
        raise ValueError(f"must be positive, got {_shown(value)}")
    return amount


def _number_amount(value: int | float | Decimal) -> Decimal:
    """A JSON number as money: exact (decoding keeps a fraction as its decimal text), same bounds as text."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{_shown(value)} is not a finite number")
        amount = Decimal(repr(value))  # the shortest text that reads back as this double
    else:
        amount = Decimal(value)
    if not amount.is_finite():
        raise ValueError(f"{_shown(value)} is not a finite number")
    if amount.is_signed():
        raise ValueError(f"must be positive, got {_shown(value)}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise ValueError(f"{_shown(value)} has more than 4 decimals")
    if amount >= MAX_MONEY:
        raise ValueError(f"{_shown(value)} is larger than the contract's maximum of 15 integer digits")
    return amount.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else amount


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
    payee_account_problem: str | None = None  # set at ingest: what fails the IBAN check (paysentry.iban)
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

    @classmethod
    def from_checked_dict(cls, data: dict[str, Any]) -> Event:
        """The event `to_dict` wrote, rebuilt without validating it again: only for a record this deployment
        validated itself and signed (the stream's `engine.events`); anything else goes through
        `model_validate`. Converts exactly what JSON cannot carry (times, dates, money) the way validation
        does, so the result equals `Event.model_validate(data)`. Raises ValueError on a key that is not a
        field or a required one missing, never builds a half event."""
        if not data.keys() >= _REQUIRED_KEYS or not data.keys() <= _EVENT_FIELD_SET:
            raise ValueError("not an event as written at ingest (fields missing or unknown)")
        values = dict.fromkeys(_EVENT_FIELDS)
        values.update(data)
        name = "event_time"
        try:
            values[name] = _AWARE_DATETIME.validate_python(_rfc3339_text(data[name]))
            for name in ("amount", "fee"):
                if (money := data.get(name)) is not None:
                    values[name] = Decimal(money)
            name = "due_date"
            if (due := data.get(name)) is not None:
                values[name] = date.fromisoformat(due)
            name = "approved_by"
            if (approvers := data.get(name)) is not None:
                values[name] = list(approvers)
            name = "extra"
            values[name] = dict(data.get(name) or {})
        except (ValueError, TypeError, ArithmeticError) as exc:  # decimal's refusals are ArithmeticErrors
            raise ValueError(f"{name}: not as written at ingest ({type(exc).__name__})") from None
        event = cls.__new__(cls)
        _set = object.__setattr__
        _set(event, "__dict__", values)
        _set(event, "__pydantic_fields_set__", set(data))
        _set(event, "__pydantic_extra__", None)
        _set(event, "__pydantic_private__", None)
        return event


# from_checked_dict: field order as validation gives it; the times parsed by pydantic's own parser (same tzinfo)
_EVENT_FIELDS = tuple(Event.model_fields)
_EVENT_FIELD_SET = frozenset(_EVENT_FIELDS)
_REQUIRED_KEYS = frozenset({"type", "event_id", "event_time"})
_AWARE_DATETIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)

_KNOWN_FIELDS = frozenset(Event.model_fields) - {
    "payee_account_hash",
    "payee_account_masked",
    "payee_account_problem",
    "extra",
}
# Read at ingest and never kept as given: the clear account becomes a hash and a mask, and a hash or mask
# from the producer is not trusted (it could be anything, the clear number included).
_INGEST_ONLY = frozenset(
    {"extra", "payee_account", "payee_account_hash", "payee_account_masked", "payee_account_problem"}
)
# Free text where a producer may paste an account number; identifiers are kept exactly (they join events).
_FREE_TEXT = ("vendor_name", "payee_bank", "status_reason", "typology")
_MAX_REASON_CHARS = 1000
_MAX_ERRORS_SHOWN = 5


def hash_account(account: str, key: bytes) -> str:
    """Keyed hash (HMAC-SHA256, 128 bits shown) so the same account links across events without
    the clear number ever being stored; without the key the hash cannot be brute-forced offline."""
    return hmac.new(key, normalise_account(account).encode(), hashlib.sha256).hexdigest()[:32]


def _safe_reason(reason: str) -> str:
    """A reason goes to the dead-letter sink and logs: no account-like token, bounded."""
    reason = scrub_text(reason)
    return reason if len(reason) <= _MAX_REASON_CHARS else reason[:_MAX_REASON_CHARS] + "…"


def _format_error(exc: ValidationError) -> str:
    parts = []
    errors = exc.errors(include_url=False)
    for error in errors[:_MAX_ERRORS_SHOWN]:
        loc = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
        # pydantic nests the loc of Annotated before-validators under the type's name; drop that noise.
        loc = re.sub(r"\.(decimal|str|list|constrained-str|function-before\[.*?\])", "", loc)
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {message}" if loc else message)
    if len(errors) > _MAX_ERRORS_SHOWN:
        parts.append(f"and {len(errors) - _MAX_ERRORS_SHOWN} more")
    return "; ".join(parts)


def parse_event(
    raw: bytes | str | dict[str, Any],
    *,
    account_key: bytes,
    now: float | None = None,
    window: TimeWindow = DEFAULT_TIME_WINDOW,
) -> Event:
    """Decode and validate one inbound event, or raise InvalidEvent with a reason naming the field.

    `now` is the stream's clock (seconds since 1970): with it, an event whose time is outside `window`
    around it is refused; without it, only the engine's calendar bounds apply (years 1970 to 8999 UTC).
    A dict takes the same road as text (it is encoded first), so both are held to the same rules."""
    try:
        text = raw if isinstance(raw, bytes | str) else encode_plain(raw)
        data = decode_record(text, known_fields=_KNOWN_FIELDS)
    except RecordRefused as exc:
        raise InvalidEvent(_safe_reason(str(exc))) from None
    raw_id = data.get("event_id")
    event_id = scrub_text(raw_id)[:128] if isinstance(raw_id, str) else None

    def refuse(reason: str) -> InvalidEvent:
        return InvalidEvent(_safe_reason(reason), event_id)

    inner = data.get("extra", {})
    if not isinstance(inner, dict):
        raise refuse("extra: must be an object (unknown fields are kept there)")
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = dict(inner)
    for name, value in data.items():
        if name in _KNOWN_FIELDS:
            fields[name] = scrub_text(value) if name in _FREE_TEXT and isinstance(value, str) else value
        elif name in _INGEST_ONLY:
            continue
        elif name in extra:
            raise refuse(f"{name[:64]}: given both as a field and inside extra")
        else:
            extra[name] = value
    if len(extra) > MAX_EXTRA_KEYS:
        raise refuse(f"extra: {len(extra)} unknown fields, more than the {MAX_EXTRA_KEYS} allowed")
    account = data.get("payee_account")
    if account is not None:
        if not isinstance(account, str) or not 4 <= len(account) <= 64:
            raise refuse("payee_account: must be a string of 4 to 64 characters")
        fields["payee_account_hash"] = hash_account(account, account_key)
        fields["payee_account_masked"] = mask_account(account)
        fields["payee_account_problem"] = iban_problem(account)
    fields["extra"] = scrub_value(extra)
    try:
        event = Event.model_validate(fields)
        check_event_time(event.event_time, now=now, window=window)
    except ValidationError as exc:
        raise refuse(_format_error(exc)) from None
    except ValueError as exc:
        raise refuse(str(exc)) from None
    if len(text) > MAX_RECORD_BYTES // 4:
        # Numbers can be written shorter than they are read back (`1e5` is `100000.0`): an accepted event
        # must fit the same bound once written out, so it can be read again.
        written = len(orjson.dumps(event.to_dict()))
        if written > MAX_RECORD_BYTES:
            raise refuse(f"record would be {written} bytes once written out, more than the {MAX_RECORD_BYTES} allowed")
    return event


class RuleHit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: str
    severity: Severity
    action: Action
    reason: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class PaymentSummary(BaseModel):
    """What a person needs to find and act on a payment, as a decision's `explanation["payment"]`:
    never the clear account, only its masked form; times are RFC 3339 text like `event_time`."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    amount: str | None = None
    currency: str | None = None
    channel: str | None = None
    payee_account_masked: str | None = None
    payee_bank: str | None = None
    payee_country: str | None = None
    vendor_name: str | None = None
    invoice_id: str | None = None
    po_id: str | None = None
    due_date: str | None = None
    created_by: str | None = None
    approved_by: list[str] | None = None
    released_amount: str | None = None
    released_at: str | None = None
    status_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with absent facts left out."""
        return self.model_dump(mode="json", exclude_none=True)


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

    @classmethod
    def from_checked(cls, values: dict[str, Any]) -> Decision:
        """What `model_construct(**values)` gives for values of every field, in field order, already
        checked (the core builds each from checked parts), without its per-field bookkeeping."""
        decision = cls.__new__(cls)
        _set = object.__setattr__
        _set(decision, "__dict__", values)
        _set(decision, "__pydantic_fields_set__", set(values))
        _set(decision, "__pydantic_extra__", None)
        _set(decision, "__pydantic_private__", None)
        return decision

    def to_json(self) -> bytes:
        """The record as written to sinks: at most MAX_DECISION_BYTES (far below a Kafka message's
        default limit of 1 MiB), overlong text cut with a visible mark when needed."""
        data = self.model_dump(mode="json")
        encoded = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        return encoded if len(encoded) <= MAX_DECISION_BYTES else _bounded_decision(data)


MAX_DECISION_BYTES = 256 * 1024
_MAX_HITS_KEPT = 32


def _cut_text(value: Any, limit: int, depth: int = 0) -> Any:
    """Every string longer than `limit` cut, with the mark saying how much was left out."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + f"…[truncated {len(value) - limit} characters]"
    if depth > 32:
        return "…[truncated: nested too deep]"
    if isinstance(value, dict):
        return {_cut_text(str(k), limit, depth + 1): _cut_text(v, limit, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_text(item, limit, depth + 1) for item in value]
    return value


def _bounded_decision(data: dict[str, Any]) -> bytes:
    for limit in (4096, 512, 64):
        data = _cut_text(data, limit)
        encoded = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        if len(encoded) <= MAX_DECISION_BYTES:
            return encoded
    # Still too large: too many entries rather than long ones. Keep the first hits; the action and the
    # score already account for all of them.
    notes = []
    for name in ("rule_hits", "shadow_hits"):
        if len(data.get(name) or ()) > _MAX_HITS_KEPT:
            notes.append(f"{name}: first {_MAX_HITS_KEPT} of {len(data[name])} shown")
            data[name] = data[name][:_MAX_HITS_KEPT]
    explanation = {"truncated": "; ".join(notes)} if notes else {}
    if len(orjson.dumps(data.get("explanation") or {})) > MAX_DECISION_BYTES // 2:
        explanation["truncated"] = "; ".join([*notes, "explanation left out: too large"])
    else:
        explanation = {**(data.get("explanation") or {}), **explanation}
    data["explanation"] = explanation
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def action_rank(action: str) -> int:
    return ACTIONS.index(action)


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)
