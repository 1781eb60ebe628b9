"""The alert dispatcher: alerts in, notifications out, with Alertmanager's grouping and on-call's acks
and escalation.

    dispatcher = AlertDispatcher(routes, RedisStore.from_url(url), {"email": EmailChannel(s), "sms": SmsChannel(s)})
    await dispatcher.submit_decision(decision, now)   # or submit(build_alert(decision), now)
    await dispatcher.tick(now)                        # every few seconds: flush what is due

`submit` records the alert (a redelivered alert id is a no-op), marks it as an inhibition source, and
adds it to one group per matching route. `tick(now)` does what is due at `now`: escalations of
unacknowledged alerts, digests / quiet-hour holds / rate-limit summaries, group flushes (first
notification after group_wait, new alerts after group_interval, repeats after repeat_interval), and
the outbox (sends and retries). All state lives in the store; every scheduled item is claimed by one
worker (Lua claim with a lease), so several workers on one Redis send each notification once.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from paysentry.alerts.channels import Channel
from paysentry.alerts.config import RoutesConfig
from paysentry.alerts.delivery import DeadLetterSink, Deliverer
from paysentry.alerts.durations import format_duration
from paysentry.alerts.loader import RoutesHolder
from paysentry.alerts.model import Alert, build_alert
from paysentry.alerts.notification import Notification, Outcome
from paysentry.alerts.routing import RouteTree, all_channels, channels_for
from paysentry.alerts.state import (
    DUE_ESCALATIONS,
    DUE_GROUPS,
    ESCALATION_MEMBER,
    AlertState,
    GroupMeta,
    decode_state_record,
)
from paysentry.alerts.store import KVStore
from paysentry.alerts.suppress import Suppressor
from paysentry.alerts.timing import aware, ts
from paysentry.audit import AuditLog
from paysentry.contract import Decision, severity_rank

log = logging.getLogger("paysentry.alerts")
GROUP_LEASE = 60.0


@contextmanager
def _logged(what: str, item: str) -> Iterator[None]:
    try:
        yield
    except Exception:
        log.exception("alert %s failed for %s; it will be retried", what, item)


@dataclass
class TickReport:
    escalations: int = 0
    queues: int = 0
    groups: int = 0
    deliveries: int = 0


class AlertDispatcher:
    def __init__(
        self,
        routes: RoutesConfig | RoutesHolder,
        store: KVStore,
        channels: Mapping[str, Channel],
        *,
        dead_letter: DeadLetterSink | None = None,
        audit: AuditLog | None = None,
    ):
        self._routes = routes
        self._tree: RouteTree | None = None
        self.store = store
        self.channels = channels
        self.metrics: Counter[str] = Counter()
        self.state = AlertState(store, self.config.global_.alert_ttl, audit)
        self.suppressor = Suppressor(self.state, lambda: self.config)
        self.deliverer = Deliverer(
            self.state, channels, lambda: self.config, self.suppressor, dead_letter=dead_letter, metrics=self.metrics
        )

    @property
    def config(self) -> RoutesConfig:
        return self._routes.config if isinstance(self._routes, RoutesHolder) else self._routes

    @property
    def tree(self) -> RouteTree:
        config = self.config
        if self._tree is None or self._tree.config is not config:
            self._tree = RouteTree(config)
            self.state.alert_ttl = config.global_.alert_ttl
        return self._tree

    # -- intake -------------------------------------------------------------------------------
    async def submit_decision(self, decision: Decision, now: datetime) -> Alert | None:
        alert = build_alert(decision, min_action=self.config.global_.min_action)
        if alert is not None:
            await self.submit(alert, now)
        return alert

    async def submit(self, alert: Alert, now: datetime) -> bool:
        """Take an alert in; False if it was a duplicate of an active alert."""
        now = aware(now)
        tree = self.tree
        if not await self.state.record_alert(alert, now):
            self.metrics["suppressed|-|duplicate"] += 1
            return False
        await self.suppressor.note_sources(alert, now)
        for node in tree.match(alert.labels):
            key = node.group_key(alert.labels)
            meta = GroupMeta(
                key=key, receiver=node.receiver, route_id=node.id, group_labels=node.group_labels(alert.labels),
                group_wait=node.group_wait.total_seconds(), group_interval=node.group_interval.total_seconds(),
                repeat_interval=node.repeat_interval.total_seconds(), escalation=node.escalation, created_at=ts(now),
            )  # fmt: skip
            await self.state.add_to_group(meta, alert.alert_id, now)
        return True

    async def ack(self, ident: str, by: str, comment: str, now: datetime) -> list[str]:
        """Acknowledge an alert id, or every alert of a notification id (n-…); returns the alert ids."""
        ids = await self.state.resolve_ack_target(ident)
        for alert_id in ids:
            await self.state.ack(alert_id, by, comment, aware(now))
        return ids

    # -- the clock ----------------------------------------------------------------------------
    async def tick(self, now: datetime) -> TickReport:
        now = aware(now)
        _ = self.tree  # pick up a reloaded config
        report = TickReport()
        # One broken item must not hold up the others: it is logged, and comes back after its lease.
        for member in await self.state.claim(DUE_ESCALATIONS, now, lease=GROUP_LEASE):
            with _logged("escalation", member):
                await self.state.unschedule(DUE_ESCALATIONS, member)
                await self._escalate(member, now)
            report.escalations += 1
        report.queues = await self.deliverer.flush_queues(now)
        for key in await self.state.claim(DUE_GROUPS, now, lease=GROUP_LEASE):
            with _logged("group flush", key):
                await self._flush_group(key, now)
            report.groups += 1
        # A failed delivery can queue a fallback that is due at once: give it a round or two.
        for _ in range(3):
            sent = await self.deliverer.process_outbox(now)
            report.deliveries += sent
            if not sent:
                break
        return report

    async def _flush_group(self, key: str, now: datetime) -> None:
        meta, members = await self.state.group(key)
        if meta is None:
            await self.state.unschedule(DUE_GROUPS, key)
            return
        stored = await self.state.get_alerts(sorted(members))
        gone = [i for i in members if i not in stored or self.state.expired(stored[i], now)]
        if gone:
            await self.state.drop_members(key, gone)
            for alert_id in gone:
                meta.notified.pop(alert_id, None)
                meta.states.pop(alert_id, None)
        alerts = [stored[i].alert for i in sorted(members) if i not in gone]
        muted = await self.suppressor.reasons(alerts, now)
        for alert in alerts:
            reason = muted.get(alert.alert_id)
            if reason and meta.states.get(alert.alert_id) != reason:
                await self.deliverer.record(
                    Outcome(at=now, status="suppressed", reason=reason, receiver=meta.receiver,
                            alert_ids=[alert.alert_id], kind="firing")
                )  # fmt: skip
                meta.states[alert.alert_id] = reason
            elif not reason:
                meta.states.pop(alert.alert_id, None)
        active = [a for a in alerts if a.alert_id not in muted]
        # New: never notified in this group, or back after its earlier life ended (alert_ttl).
        new = [
            a.alert_id
            for a in active
            if meta.notified.get(a.alert_id, -1.0) < stored[a.alert_id].received_at.timestamp()
        ]
        kind = None
        if new:
            kind = "firing"
        elif active and meta.last_notified_at is not None and ts(now) >= meta.last_notified_at + meta.repeat_interval:
            kind = "repeat"
        if kind is not None:
            n = Notification(
                id=Notification.make_id(kind, meta.receiver, key, [a.alert_id for a in active], now), kind=kind,  # type: ignore[arg-type]
                receiver=meta.receiver, alerts=active, created_at=now, group_key=key,
                group_labels=meta.group_labels, new_alert_ids=new,
            )  # fmt: skip
            meta.last_notified_at = ts(now)
            for alert_id in new:
                meta.notified[alert_id] = ts(now)
            await self.state.save_group(meta)
            await self.deliverer.dispatch(n, now)
            # A chain starts for newly notified alerts only; repeats do not restart it.
            await self._start_escalation(meta, [a for a in active if a.alert_id in new], now)
        else:
            await self.state.save_group(meta)
        if not await self.state.finish_group_if_empty(key):
            await self.state.schedule(DUE_GROUPS, key, ts(now) + meta.group_interval)

    # -- escalation ---------------------------------------------------------------------------
    async def _start_escalation(self, meta: GroupMeta, active: list[Alert], now: datetime) -> None:
        chain = self.config.escalations.get(meta.escalation or "")
        if chain is None or not any(a.rank >= severity_rank(chain.min_severity) for a in active):
            return
        # One chain per group at a time: the flag is taken with SET NX and dropped when the chain ends.
        if await self.store.set(f"esc:{meta.key}", "1", ttl=self.state.gc_ttl, nx=True):
            member = json.dumps([meta.key, 0])
            await self.state.schedule(DUE_ESCALATIONS, member, ts(now + chain.steps[0].after))

    async def _escalate(self, member: str, now: datetime) -> None:
        parsed = decode_state_record(ESCALATION_MEMBER, member, f"{DUE_ESCALATIONS} member")
        if parsed is None:
            return  # already unscheduled; there is no group to escalate
        key, level = parsed
        meta, members = await self.state.group(key)
        chain = self.config.escalations.get(meta.escalation or "") if meta else None
        if meta is None or chain is None or level >= len(chain.steps):
            await self.store.delete(f"esc:{key}")
            return
        stored = await self.state.get_alerts(sorted(members))
        floor = severity_rank(chain.min_severity)
        candidates = [
            s.alert
            for i, s in stored.items()
            if i in meta.notified and not self.state.expired(s, now) and s.alert.rank >= floor
        ]
        muted = await self.suppressor.reasons(candidates, now)
        open_alerts = [a for a in candidates if a.alert_id not in muted]
        if not open_alerts:
            await self.store.delete(f"esc:{key}")
            if candidates:
                await self.deliverer.record(
                    Outcome(at=now, status="suppressed", reason="escalation_stopped: every alert acked or muted",
                            receiver=meta.receiver, alert_ids=[a.alert_id for a in candidates], kind="escalation")
                )  # fmt: skip
            return
        step = chain.steps[level]
        elapsed = sum((s.after for s in chain.steps[: level + 1]), start=timedelta())
        note = (
            f"Escalation {level + 1} of {len(chain.steps)}: not acknowledged {format_duration(elapsed)} after "
            f"the first notification to {meta.receiver}."
        )
        n = Notification(
            id=Notification.make_id("escalation", step.receiver, key, [a.alert_id for a in open_alerts], now),
            kind="escalation", receiver=step.receiver, alerts=open_alerts, created_at=now, group_key=key,
            group_labels=meta.group_labels, note=note,
        )  # fmt: skip
        try:
            receiver = self.config.receiver(step.receiver)
            channels = channels_for(receiver, n.severity) or all_channels(receiver)
        except KeyError:
            channels = None
        await self.deliverer.dispatch(n, now, channels=channels, bypass_quiet=True, bypass_rate=True)
        if level + 1 < len(chain.steps):
            next_member = json.dumps([key, level + 1])
            await self.state.schedule(DUE_ESCALATIONS, next_member, ts(now + chain.steps[level + 1].after))
        else:
            await self.store.delete(f"esc:{key}")

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
