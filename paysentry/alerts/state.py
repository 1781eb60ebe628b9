"""Alert state on a KVStore (Redis in production): alerts and their dedup keys, groups, schedules,
silences, acknowledgements, inhibition marks, the outbox, queues (digests, quiet-hour holds, rate-limit
overflow), rate counters, outcomes and the dead-letter list.

Key schema (all under the store's prefix):
  alert:{id}                 the alert and when it arrived (dedup key: SET NX)
  alerts                     zset of alert ids by arrival, for `alerts list`
  ack:{id}                   an acknowledgement
  silences                   hash id → silence
  inh:{rule}:{labels}        an inhibiting alert is active until the stored time
  group:{key}:meta|members   a group's settings/notification log, and its alert ids
  due:groups|outbox|queues|escalations   zsets of what is due when; claimed with a lease
  outbox:{id} / sent:{id}    a pending delivery / the mark that it went out
  queue:{kind,receiver,ch}   notifications waiting for a digest, the end of quiet hours or a rate window
  rate:{receiver}:{ch}:{n}   notifications sent in rate window n
  notif:{id}                 the alert ids of a notification (to ack them all at once)
  outcomes, metrics, deadletter
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, TypeAdapter

from paysentry.alerts.config import ChannelName
from paysentry.alerts.model import Alert
from paysentry.alerts.notification import Ack, Delivery, Notification, Outcome, Silence, StoredAlert, short_hash
from paysentry.alerts.store import KVStore
from paysentry.alerts.timing import ts
from paysentry.audit import AuditLog

log = logging.getLogger(__name__)

GC_SLACK = 86400.0  # keys outlive their logical lifetime by a day; they are only garbage-collected
OUTCOME_CAP = 10_000
DUE_GROUPS, DUE_OUTBOX, DUE_QUEUES, DUE_ESCALATIONS = "due:groups", "due:outbox", "due:queues", "due:escalations"
T = TypeVar("T")


class GroupMeta(BaseModel):
    key: str
    receiver: str
    route_id: str
    group_labels: dict[str, str]
    group_wait: float
    group_interval: float
    repeat_interval: float
    escalation: str | None = None
    created_at: float
    last_notified_at: float | None = None
    notified: dict[str, float] = Field(default_factory=dict)  # alert id → first notified
    states: dict[str, str] = Field(default_factory=dict)  # alert id → last suppression reason recorded


# What records read back from the store must look like (see `decode_state_record`).
STORED_ALERT = TypeAdapter(StoredAlert)
ACK = TypeAdapter(Ack)
SILENCE = TypeAdapter(Silence)
GROUP_META = TypeAdapter(GroupMeta)
NOTIFICATION = TypeAdapter(Notification)
DELIVERY = TypeAdapter(Delivery)
OUTCOME = TypeAdapter(Outcome)
ALERT_IDS = TypeAdapter(list[str])
DEAD_LETTER = TypeAdapter(dict[str, Any])
QUEUE_MEMBER = TypeAdapter(tuple[str, str, ChannelName])  # kind, receiver, channel
ESCALATION_MEMBER = TypeAdapter(tuple[str, Annotated[int, Field(ge=0)]])  # group key, step


def _has_naive_time(value: Any) -> bool:
    if isinstance(value, datetime):
        return value.tzinfo is None
    if isinstance(value, BaseModel):
        return any(_has_naive_time(getattr(value, name)) for name in type(value).model_fields)
    if isinstance(value, list | tuple):
        return any(_has_naive_time(item) for item in value)
    if isinstance(value, dict):
        return any(_has_naive_time(item) for item in value.values())
    return False


def decode_state_record(schema: TypeAdapter[T], raw: str, key: str) -> T | None:
    """A record read back from the store, or None if it is damaged (an older version's shape, edited by
    hand, garbage): one bad record must not stop the tick or a CLI command. The log names the key and
    the error type only, as the record may hold payment data."""
    try:
        value = schema.validate_json(raw)
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        log.warning("skipping unreadable alert state record %s (%s)", key, type(exc).__name__)
        return None
    # Everything written here carries a time zone; a naive time would raise later, comparing it with `now`.
    if _has_naive_time(value):
        log.warning("skipping unreadable alert state record %s (time without a time zone)", key)
        return None
    return value


class AlertState:
    """Alert state in a KVStore. With `audit`, every silence added, expired or pruned and every
    acknowledgement is also appended to that log, which outlives the records in Redis."""

    def __init__(self, store: KVStore, alert_ttl: timedelta = timedelta(hours=24), audit: AuditLog | None = None):
        self.store = store
        self.alert_ttl = alert_ttl
        self.audit = audit

    def _audit(self, action: str, **fields: Any) -> None:
        if self.audit is None:
            return
        try:
            self.audit.append({"action": action, **fields})
        except OSError as exc:  # muting must keep working; the missing record is logged loudly
            log.error("alerts audit log %s not written (%s): %s %s", self.audit.path, exc, action, fields)

    @property
    def gc_ttl(self) -> float:
        return self.alert_ttl.total_seconds() + GC_SLACK

    # -- alerts -------------------------------------------------------------------------------
    async def record_alert(self, alert: Alert, now: datetime) -> bool:
        """Store a new alert; False if the same alert id is already active (a redelivery)."""
        body = StoredAlert(alert=alert, received_at=now).model_dump_json()
        key = f"alert:{alert.alert_id}"
        if not await self.store.set(key, body, ttl=self.gc_ttl, nx=True):
            existing = await self.get_alert(alert.alert_id)
            if existing is not None and existing.received_at + self.alert_ttl > now:
                return False
            await self.store.set(key, body, ttl=self.gc_ttl)
            await self.store.delete(f"ack:{alert.alert_id}")
        await self.store.zadd("alerts", alert.alert_id, ts(now))
        await self.store.zprune("alerts", ts(now) - self.gc_ttl)
        return True

    async def get_alert(self, alert_id: str) -> StoredAlert | None:
        key = f"alert:{alert_id}"
        raw = await self.store.get(key)
        return decode_state_record(STORED_ALERT, raw, key) if raw else None

    async def get_alerts(self, alert_ids: list[str]) -> dict[str, StoredAlert]:
        return await self._decode_many(STORED_ALERT, [f"alert:{i}" for i in alert_ids], alert_ids)

    async def _decode_many(self, schema: TypeAdapter[T], keys: list[str], ids: list[str]) -> dict[str, T]:
        """The readable records at `keys`, by the matching id; missing and damaged ones are left out."""
        found = {}
        for ident, key, raw in zip(ids, keys, await self.store.mget(keys), strict=True):
            value = decode_state_record(schema, raw, key) if raw else None
            if value is not None:
                found[ident] = value
        return found

    def expired(self, stored: StoredAlert, now: datetime) -> bool:
        return stored.received_at + self.alert_ttl <= now

    async def recent_alerts(self, limit: int = 50) -> list[StoredAlert]:
        items = await self.store.zitems("alerts")
        ids = [member for member, _ in items][-limit:][::-1]
        found = await self.get_alerts(ids)
        return [found[i] for i in ids if i in found]

    # -- acknowledgements ---------------------------------------------------------------------
    async def ack(self, alert_id: str, by: str, comment: str, now: datetime) -> Ack:
        ack = Ack(alert_id=alert_id, by=by, comment=comment, at=now)
        await self.store.set(f"ack:{alert_id}", ack.model_dump_json(), ttl=self.gc_ttl)
        self._audit("ack", alert_id=alert_id, by=by, comment=comment, at=now.isoformat())
        return ack

    async def acks(self, alert_ids: list[str]) -> dict[str, Ack]:
        return await self._decode_many(ACK, [f"ack:{i}" for i in alert_ids], alert_ids)

    async def resolve_ack_target(self, ident: str) -> list[str]:
        """An alert id, or a notification id (n-…) standing for all its alerts."""
        if ident.startswith("n-"):
            key = f"notif:{ident}"
            raw = await self.store.get(key)
            return (decode_state_record(ALERT_IDS, raw, key) or []) if raw else []
        return [ident] if await self.store.get(f"alert:{ident}") else []

    async def remember_notification(self, notification: Notification) -> None:
        await self.store.set(f"notif:{notification.id}", json.dumps(notification.alert_ids), ttl=self.gc_ttl)

    # -- silences -----------------------------------------------------------------------------
    async def add_silence(
        self, matchers: list[str], starts_at: datetime, ends_at: datetime, created_by: str, comment: str,
        now: datetime,
    ) -> Silence:  # fmt: skip
        silence = Silence(
            id=str(uuid.uuid4()), matchers=matchers, starts_at=starts_at, ends_at=ends_at,
            created_by=created_by, comment=comment, created_at=now,
        )  # fmt: skip
        await self.store.hset("silences", silence.id, silence.model_dump_json())
        self._audit_silence("silence_add", silence, now, created_by)
        return silence

    def _audit_silence(self, action: str, silence: Silence, now: datetime, by: str) -> None:
        self._audit(
            action, silence_id=silence.id, by=by, created_by=silence.created_by, matchers=list(silence.matchers),
            starts_at=silence.starts_at.isoformat(), until=silence.ends_at.isoformat(), comment=silence.comment,
            at=now.isoformat(),
        )  # fmt: skip

    async def silences(self, now: datetime | None = None, *, include_expired: bool = False) -> list[Silence]:
        """Silences; with `now`, expired ones (ended over a day ago) are also pruned from the store."""
        out, stale = [], []
        for sid, raw in (await self.store.hgetall("silences")).items():
            silence = decode_state_record(SILENCE, raw, f"silences[{sid}]")
            if silence is None:
                continue
            if now is not None and silence.ends_at.timestamp() + GC_SLACK < ts(now):
                stale.append(sid)
                continue
            if include_expired or now is None or silence.ends_at > now:
                out.append(silence)
        if stale:
            await self.store.hdel("silences", *stale)
            for sid in stale:
                self._audit(
                    "silence_remove",
                    silence_id=sid,
                    by="expiry",
                    reason="ended over a day ago",
                    at=now.isoformat() if now else None,
                )
        return sorted(out, key=lambda s: s.starts_at)

    async def expire_silence(self, silence_id: str, now: datetime, by: str | None = None) -> Silence | None:
        """End a silence now (`by`: who, for the audit; default its author)."""
        raw = await self.store.hget("silences", silence_id)
        silence = decode_state_record(SILENCE, raw, f"silences[{silence_id}]") if raw is not None else None
        if silence is None:
            return None
        silence = silence.model_copy(update={"ends_at": min(silence.ends_at, now)})
        await self.store.hset("silences", silence_id, silence.model_dump_json())
        self._audit_silence("silence_expire", silence, now, by or silence.created_by)
        return silence

    # -- inhibition marks ---------------------------------------------------------------------
    async def mark_inhibitor(self, mark: str, until: datetime) -> None:
        await self.store.set(f"inh:{mark}", str(ts(until)), ttl=self.gc_ttl)

    async def inhibitor_active(self, mark: str, now: datetime) -> bool:
        key = f"inh:{mark}"
        raw = await self.store.get(key)
        if raw is None:
            return False
        try:
            return float(raw) > ts(now)
        except ValueError:
            log.warning("skipping unreadable alert state record %s (ValueError)", key)
            return False

    # -- groups -------------------------------------------------------------------------------
    async def add_to_group(self, meta: GroupMeta, alert_id: str, now: datetime) -> None:
        """Join the group (creating it), and schedule its first flush after group_wait unless it is
        already scheduled."""
        base = f"group:{meta.key}"
        await self.store.sadd(f"{base}:members", alert_id, ttl=self.gc_ttl)
        await self.store.set(f"{base}:meta", meta.model_dump_json(), ttl=self.gc_ttl, nx=True)
        await self.store.zadd(DUE_GROUPS, meta.key, ts(now) + meta.group_wait, nx=True)

    async def group(self, key: str) -> tuple[GroupMeta | None, set[str]]:
        meta_key = f"group:{key}:meta"
        raw = await self.store.get(meta_key)
        members = await self.store.smembers(f"group:{key}:members")
        meta = decode_state_record(GROUP_META, raw, meta_key) if raw else None
        if raw and meta is None:
            # Otherwise it would block the group's next start (SET NX) until it expires, a day later.
            await self.store.delete(meta_key)
        return meta, members

    async def save_group(self, meta: GroupMeta) -> None:
        await self.store.set(f"group:{meta.key}:meta", meta.model_dump_json(), ttl=self.gc_ttl)

    async def drop_members(self, key: str, alert_ids: list[str]) -> None:
        await self.store.srem(f"group:{key}:members", *alert_ids)

    async def finish_group_if_empty(self, key: str) -> bool:
        base = f"group:{key}"
        return await self.store.drop_if_empty(f"{base}:members", DUE_GROUPS, key, f"{base}:meta")

    # -- schedules ----------------------------------------------------------------------------
    async def schedule(self, due_set: str, member: str, at: float, *, nx: bool = False) -> None:
        await self.store.zadd(due_set, member, at, nx=nx)

    async def claim(self, due_set: str, now: datetime, lease: float, limit: int = 200) -> list[str]:
        return await self.store.zclaim(due_set, ts(now), lease, limit)

    async def unschedule(self, due_set: str, member: str) -> None:
        await self.store.zrem(due_set, member)

    async def next_due(self) -> float | None:
        times = [
            s for z in (DUE_GROUPS, DUE_OUTBOX, DUE_QUEUES, DUE_ESCALATIONS) for _, s in await self.store.zitems(z)
        ]
        return min(times) if times else None

    # -- queues (digests, quiet-hour holds, rate-limit overflow) ------------------------------
    @staticmethod
    def queue_member(kind: str, receiver: str, channel: str) -> str:
        return json.dumps([kind, receiver, channel])

    async def enqueue(self, kind: str, receiver: str, channel: str, notification: Notification, due: float) -> None:
        member = self.queue_member(kind, receiver, channel)
        await self.store.rpush(f"queue:{member}", notification.model_dump_json(), ttl=self.gc_ttl)
        await self.store.zadd(DUE_QUEUES, member, due, nx=True)

    async def take_queue(self, member: str) -> list[Notification]:
        await self.store.zrem(DUE_QUEUES, member)
        key = f"queue:{member}"
        items = [
            decode_state_record(NOTIFICATION, raw, f"{key}[{i}]") for i, raw in enumerate(await self.store.drain(key))
        ]
        return [n for n in items if n is not None]

    # -- rate limits --------------------------------------------------------------------------
    async def count_in_window(self, receiver: str, channel: str, window: int, window_seconds: float) -> int:
        key = f"rate:{short_hash(receiver, channel)}:{window}"
        return await self.store.incr(key, ttl=window_seconds + GC_SLACK)

    # -- outbox -------------------------------------------------------------------------------
    async def put_delivery(self, delivery: Delivery, due: float) -> bool:
        """Add a delivery to the outbox; False if it is already there or was already sent."""
        if await self.store.get(f"sent:{delivery.id}"):
            return False
        if not await self.store.set(f"outbox:{delivery.id}", delivery.model_dump_json(), ttl=self.gc_ttl, nx=True):
            return False
        await self.store.zadd(DUE_OUTBOX, delivery.id, due)
        return True

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        key = f"outbox:{delivery_id}"
        raw = await self.store.get(key)
        return decode_state_record(DELIVERY, raw, key) if raw else None

    async def already_sent(self, delivery_id: str) -> bool:
        return await self.store.get(f"sent:{delivery_id}") is not None

    async def retry_later(self, delivery: Delivery, due: float) -> None:
        await self.store.set(f"outbox:{delivery.id}", delivery.model_dump_json(), ttl=self.gc_ttl)
        await self.store.zadd(DUE_OUTBOX, delivery.id, due)

    async def finish_delivery(self, delivery_id: str, sent: bool) -> None:
        if sent:
            await self.store.set(f"sent:{delivery_id}", "1", ttl=self.gc_ttl)
        await self.store.delete(f"outbox:{delivery_id}")
        await self.store.zrem(DUE_OUTBOX, delivery_id)

    async def pending_deliveries(self) -> list[Delivery]:
        ids = [member for member, _ in await self.store.zitems(DUE_OUTBOX)]
        return list((await self._decode_many(DELIVERY, [f"outbox:{i}" for i in ids], ids)).values())

    # -- outcomes, metrics, dead letters ------------------------------------------------------
    async def record(self, outcome: Outcome) -> None:
        await self.store.lpush_capped("outcomes", outcome.model_dump_json(), OUTCOME_CAP)
        await self.store.hincrby("metrics", f"{outcome.status}|{outcome.channel or '-'}|{outcome.reason_code}")

    async def outcomes(self, limit: int = 100) -> list[Outcome]:
        raws = await self.store.lrange("outcomes", 0, limit - 1)
        items = [decode_state_record(OUTCOME, raw, f"outcomes[{i}]") for i, raw in enumerate(raws)]
        return [o for o in items if o is not None]

    async def metrics(self) -> dict[str, int]:
        counts = {}
        for name, raw in (await self.store.hgetall("metrics")).items():
            try:
                counts[name] = int(raw)
            except ValueError:
                log.warning("skipping unreadable alert state record metrics[%s] (ValueError)", name)
        return counts

    async def dead_letter(self, entry: dict[str, Any]) -> None:
        await self.store.rpush("deadletter", json.dumps(entry, default=str))

    async def dead_letters(self) -> list[dict[str, Any]]:
        items = [
            decode_state_record(DEAD_LETTER, raw, f"deadletter[{i}]")
            for i, raw in enumerate(await self.store.lrange("deadletter"))
        ]
        return [e for e in items if e is not None]
