"""From a notification to messages on the wire.

`dispatch` applies the receiver's policy channel by channel: below every channel's severity → digest;
inside quiet hours → held for a digest when they end; over the rate limit → folded into a summary when
the window ends; otherwise → the outbox. `process_outbox` sends what is due, retries failures with
exponential backoff, and after the last attempt (or a permanent error) dead-letters the delivery and
tries the fallback receiver. Every step is recorded as an Outcome and counted.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from paysentry.alerts.channels import Channel, DeliveryError, Rendered
from paysentry.alerts.config import ChannelName, DeliveryPolicy, Receiver, RoutesConfig
from paysentry.alerts.model import Alert
from paysentry.alerts.notification import Delivery, Notification, Outcome, short_hash
from paysentry.alerts.routing import all_channels, channels_for, digest_channel
from paysentry.alerts.state import DUE_OUTBOX, DUE_QUEUES, QUEUE_MEMBER, AlertState, decode_state_record
from paysentry.alerts.suppress import Suppressor
from paysentry.alerts.templates import render_email, render_sms
from paysentry.alerts.timing import quiet_until, rate_window, retry_delay, ts
from paysentry.contract import severity_rank

log = logging.getLogger("paysentry.alerts")
DeadLetterSink = Callable[[dict[str, Any]], Awaitable[None] | None]
# Called with every outcome recorded (the Prometheus counters register here when metrics are enabled).
OUTCOME_OBSERVERS: list[Callable[[Outcome], None]] = []
QUEUE_KINDS = {"digest": "digest", "quiet": "quiet_digest", "overflow": "rate_summary"}


class Deliverer:
    def __init__(
        self,
        state: AlertState,
        channels: Mapping[str, Channel],
        config: Callable[[], RoutesConfig],
        suppressor: Suppressor,
        *,
        dead_letter: DeadLetterSink | None = None,
        metrics: Counter[str] | None = None,
        concurrency: int = 16,
    ):
        self.state = state
        self.channels = channels
        self.config = config
        self.suppressor = suppressor
        self.dead_letter_sink = dead_letter
        self.metrics: Counter[str] = metrics if metrics is not None else Counter()
        self._limit = asyncio.Semaphore(concurrency)

    async def record(self, outcome: Outcome) -> None:
        self.metrics[f"{outcome.status}|{outcome.channel or '-'}|{outcome.reason_code}"] += 1
        for observe in OUTCOME_OBSERVERS:
            observe(outcome)
        await self.state.record(outcome)
        log.info(
            "alert notification %s: %s receiver=%s channel=%s kind=%s notification=%s alerts=%s",
            outcome.status, outcome.reason, outcome.receiver, outcome.channel, outcome.kind,
            outcome.notification_id, ",".join(outcome.alert_ids),
        )  # fmt: skip

    async def _note(self, n: Notification, now: datetime, status: str, reason: str, **extra: Any) -> None:
        await self.record(
            Outcome(at=now, status=status, reason=reason, receiver=n.receiver, kind=n.kind,  # type: ignore[arg-type]
                    notification_id=n.id, alert_ids=n.alert_ids, **extra)
        )  # fmt: skip

    # -- policy -------------------------------------------------------------------------------
    async def dispatch(
        self,
        n: Notification,
        now: datetime,
        *,
        channels: list[ChannelName] | None = None,
        bypass_quiet: bool = False,
        bypass_rate: bool = False,
    ) -> None:
        cfg = self.config()
        try:
            receiver = cfg.receiver(n.receiver)
        except KeyError:
            # The routes were reloaded without this receiver: dead-letter, and try the global fallback.
            await self._note(n, now, "failed", f"unknown_receiver: {n.receiver} is not in the routes")
            await self._dead_letter({"notification_id": n.id, "receiver": n.receiver, "error": "unknown receiver",
                                     "alert_ids": n.alert_ids, "at": now.isoformat()})  # fmt: skip
            fallback = cfg.global_.fallback_receiver
            if fallback and fallback != n.receiver and fallback in cfg.receiver_names:
                note = f"Fallback: receiver {n.receiver} is no longer in the routes."
                moved = n.model_copy(update={"receiver": fallback, "note": f"{note} {n.note or ''}".strip()})
                await self.dispatch(moved, now, channels=channels, bypass_quiet=bypass_quiet, bypass_rate=bypass_rate)
            return
        await self.state.remember_notification(n)
        wanted = channels if channels is not None else channels_for(receiver, n.severity)
        if not wanted:
            channel = digest_channel(receiver, receiver.digest.channel)
            await self.state.enqueue("digest", receiver.name, channel, n, ts(now + receiver.digest.interval))
            await self._note(n, now, "deferred", f"digest: {n.severity} is below the receiver's channels",
                             channel=channel)  # fmt: skip
            return
        for channel in wanted:
            if not receiver.has(channel):
                continue
            quiet = receiver.quiet_hours
            if (
                not bypass_quiet
                and quiet is not None
                and channel in quiet.channels
                and severity_rank(n.severity) < severity_rank(quiet.min_severity)
            ):
                until = quiet_until(quiet, now)
                if until is not None:
                    target = digest_channel(receiver, quiet.digest_channel or channel)
                    await self.state.enqueue("quiet", receiver.name, target, n, ts(until))
                    await self._note(n, now, "deferred", f"quiet_hours: held until {until.isoformat()}",
                                     channel=channel)  # fmt: skip
                    continue
            limit = receiver.rate_limit
            if not bypass_rate and limit is not None:
                window, ends = rate_window(limit.per, now)
                count = await self.state.count_in_window(receiver.name, channel, window, limit.per.total_seconds())
                if count > limit.max:
                    await self.state.enqueue("overflow", receiver.name, channel, n, ts(ends))
                    await self._note(n, now, "deferred", f"rate_limited: over {limit.max} per window, summary at "
                                     f"{ends.isoformat()}", channel=channel)  # fmt: skip
                    continue
            await self.enqueue(n, receiver, channel, now)

    async def enqueue(
        self, n: Notification, receiver: Receiver, channel: ChannelName, now: datetime, fallback_for: str | None = None
    ) -> None:
        target = receiver.email if channel == "email" else receiver.sms
        if target is None:
            return
        batches = [list(target.to)] if channel == "email" else [[number] for number in target.to]
        for recipients in batches:
            delivery = Delivery(
                id=Delivery.make_id(n.id, receiver.name, channel, recipients), notification=n, channel=channel,
                recipients=recipients, template=target.template, fallback_for=fallback_for,
            )  # fmt: skip
            await self.state.put_delivery(delivery, ts(now))

    # -- queues -------------------------------------------------------------------------------
    async def flush_queues(self, now: datetime) -> int:
        members = await self.state.claim(DUE_QUEUES, now, lease=60.0)
        for member in members:
            try:
                await self.flush_queue(member, now)
            except Exception:
                log.exception("alert queue flush failed for %s", member)
        return len(members)

    async def flush_queue(self, member: str, now: datetime) -> None:
        parsed = decode_state_record(QUEUE_MEMBER, member, f"{DUE_QUEUES} member")
        if parsed is None:
            # Nobody to send its items to; dropped, or it would come back after every lease.
            await self.state.take_queue(member)
            return
        kind, receiver, channel = parsed
        items = await self.state.take_queue(member)
        if not items:
            return
        latest: dict[str, Alert] = {}
        for item in items:
            for alert in item.alerts:
                latest[alert.alert_id] = alert
        stored = await self.state.get_alerts(list(latest))
        alive = [a for i, a in latest.items() if i in stored and not self.state.expired(stored[i], now)]
        muted = await self.suppressor.reasons(alive, now)
        keep = [a for a in alive if a.alert_id not in muted]
        if not keep:
            return
        label = QUEUE_KINDS.get(kind, "digest")
        notes = {
            "digest": f"Digest of {len(items)} lower-severity notification(s).",
            "quiet_digest": f"Held during quiet hours: {len(items)} notification(s).",
            "rate_summary": f"The rate limit held back {len(items)} notification(s); here they are in one.",
        }
        n = Notification(
            id=Notification.make_id(label, receiver, None, [a.alert_id for a in keep], now), kind=label,  # type: ignore[arg-type]
            receiver=receiver, alerts=keep, created_at=now, new_alert_ids=[a.alert_id for a in keep],
            note=notes[label], folded=len(items),
        )  # fmt: skip
        await self.dispatch(n, now, channels=[channel], bypass_rate=True, bypass_quiet=kind == "quiet")

    # -- outbox -------------------------------------------------------------------------------
    async def process_outbox(self, now: datetime) -> int:
        policy = self.config().global_.delivery
        lease = policy.timeout.total_seconds() * 2 + 5
        ids = await self.state.claim(DUE_OUTBOX, now, lease)
        await asyncio.gather(*(self._attempt(i, now, policy) for i in ids))
        return len(ids)

    def render(self, delivery: Delivery) -> Rendered:
        cfg = self.config()
        template = cfg.templates.get(delivery.template)
        if delivery.channel == "email":
            return render_email(delivery.notification, template, cfg.global_)
        return render_sms(delivery.notification, template, cfg.global_)

    async def _attempt(self, delivery_id: str, now: datetime, policy: DeliveryPolicy) -> None:
        async with self._limit:
            delivery = await self.state.get_delivery(delivery_id)
            if delivery is None or await self.state.already_sent(delivery_id):
                await self.state.finish_delivery(delivery_id, sent=False)
                return
            delivery = delivery.model_copy(update={"attempts": delivery.attempts + 1})
            n = delivery.notification
            channel = self.channels.get(delivery.channel)
            try:
                if channel is None:
                    raise DeliveryError(f"no {delivery.channel} channel is configured", permanent=True)
                try:
                    rendered = self.render(delivery)
                except Exception as exc:  # a template problem is not going to fix itself
                    raise DeliveryError(f"render failed: {type(exc).__name__}", permanent=True) from None
                thread = short_hash(n.group_key or n.id)
                timeout = policy.timeout.total_seconds()
                provider_id = await asyncio.wait_for(
                    channel.send(rendered, delivery.recipients, thread_id=thread), timeout
                )
            except (DeliveryError, TimeoutError) as exc:
                error = exc if isinstance(exc, DeliveryError) else DeliveryError("timed out")
                await self._failed(delivery, error, now, policy)
                return
            except Exception as exc:  # a channel bug or an unforeseen client error: retry, do not lose it
                log.exception("unexpected error sending %s by %s", delivery.id, delivery.channel)
                await self._failed(delivery, DeliveryError(f"unexpected {type(exc).__name__}"), now, policy)
                return
            await self.state.finish_delivery(delivery_id, sent=True)
            await self._note(n, now, "sent", "sent", channel=delivery.channel, delivery_id=delivery.id,
                             attempt=delivery.attempts, provider_id=provider_id)  # fmt: skip

    async def _failed(self, delivery: Delivery, error: DeliveryError, now: datetime, policy: DeliveryPolicy) -> None:
        n = delivery.notification
        delivery = delivery.model_copy(update={"last_error": error.reason})
        common = {"channel": delivery.channel, "delivery_id": delivery.id, "attempt": delivery.attempts}
        if not error.permanent and delivery.attempts < policy.max_attempts:
            due = now + retry_delay(policy, delivery.attempts)
            await self.state.retry_later(delivery, ts(due))
            await self._note(n, now, "retrying", f"retry: {error.reason}; next attempt at {due.isoformat()}", **common)
            return
        await self.state.finish_delivery(delivery.id, sent=False)
        why = "permanent error" if error.permanent else f"gave up after {delivery.attempts} attempts"
        await self._note(n, now, "failed", f"dead_letter: {why}: {error.reason}", **common)
        await self._dead_letter(
            {
                "delivery_id": delivery.id, "notification_id": n.id, "kind": n.kind, "receiver": n.receiver,
                "channel": delivery.channel, "recipients": delivery.recipients, "alert_ids": n.alert_ids,
                "attempts": delivery.attempts, "error": error.reason, "at": now.isoformat(),
                "fallback_for": delivery.fallback_for,
            }
        )  # fmt: skip
        await self._fallback(delivery, error, now)

    async def _dead_letter(self, entry: dict[str, Any]) -> None:
        await self.state.dead_letter(entry)
        if self.dead_letter_sink is not None:
            try:
                result = self.dead_letter_sink(entry)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("dead-letter sink failed (the entry is kept in the Redis dead-letter list)")

    async def _fallback(self, delivery: Delivery, error: DeliveryError, now: datetime) -> None:
        if delivery.fallback_for is not None:
            return  # a failed fallback is dead-lettered, not passed on again
        cfg = self.config()
        n = delivery.notification
        try:
            name = cfg.receiver(n.receiver).fallback or cfg.global_.fallback_receiver
        except KeyError:
            name = cfg.global_.fallback_receiver
        if not name or name == n.receiver or name not in cfg.receiver_names:
            return
        fallback = cfg.receiver(name)
        note = f"Fallback: delivery to {n.receiver} by {delivery.channel} failed ({error.reason})."
        moved = n.model_copy(update={"receiver": name, "note": f"{note} {n.note or ''}".strip()})
        for channel in channels_for(fallback, moved.severity) or all_channels(fallback):
            await self.enqueue(moved, fallback, channel, now, fallback_for=n.receiver)
        await self._note(moved, now, "deferred", f"fallback: to {name} after {delivery.channel} failed")
