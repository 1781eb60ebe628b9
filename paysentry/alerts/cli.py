"""`paysentry alerts …`: check and test routes, silence, acknowledge, list, send a test.

Silences and acks go to the Redis at PAYSENTRY_REDIS_URL, where the running workers read them.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import redis.exceptions
import typer
from rich.console import Console
from rich.table import Table

from paysentry.alerts.config import ChannelName, RoutesConfig
from paysentry.alerts.durations import format_duration, parse_duration
from paysentry.alerts.loader import load_routes
from paysentry.alerts.matchers import Matcher, parse_label_pairs
from paysentry.alerts.redis_store import RedisStore
from paysentry.alerts.routes_yaml import ConfigError
from paysentry.alerts.routing import RouteTree, channels_for
from paysentry.alerts.service import real_channels, send_test
from paysentry.alerts.settings import AlertSettings
from paysentry.alerts.state import AlertState
from paysentry.audit import AuditLog

alerts_app = typer.Typer(help="Alert routing, silences, acknowledgements and test sends.", no_args_is_help=True)
silence_app = typer.Typer(help="Mute alerts that match label matchers, for a while.", no_args_is_help=True)
alerts_app.add_typer(silence_app, name="silence")

console = Console()
err = Console(stderr=True)
T = TypeVar("T")
RoutesOpt = Annotated[Path | None, typer.Option("--routes", help="routes file (default: PAYSENTRY_ALERTS_ROUTES_FILE)")]


def _settings() -> AlertSettings:
    return AlertSettings()


def _routes(path: Path | None) -> RoutesConfig:
    try:
        return load_routes(path or _settings().alerts_routes_file)
    except ConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(1) from None


def _with_state(action: Callable[[AlertState], Awaitable[T]]) -> T:
    settings = _settings()

    async def run() -> T:
        store = RedisStore.from_url(settings.redis_url, settings.alerts_redis_prefix)
        try:
            return await action(AlertState(store, audit=AuditLog(settings.audit_log_path)))
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (OSError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        err.print(f"cannot reach Redis at PAYSENTRY_REDIS_URL: {exc}", markup=False)
        raise typer.Exit(2) from None


def _now() -> datetime:
    return datetime.now(UTC)


@alerts_app.command("check")
def check(routes: Annotated[Path | None, typer.Argument(help="routes file")] = None) -> None:
    """Validate a routes file; print every problem as path:line:col: message."""
    config = _routes(routes)
    tree = RouteTree(config)
    console.print(f"OK: {len(tree.walk())} routes, {len(config.receivers)} receivers", markup=False)


@alerts_app.command("route-test")
def route_test(
    labels: Annotated[list[str], typer.Argument(help="LABEL=VALUE …, e.g. severity=critical vendor=V-1")],
    routes: RoutesOpt = None,
    verify_receivers: Annotated[
        str | None, typer.Option("--verify-receivers", help="comma-separated receivers expected; exit 1 if not")
    ] = None,
) -> None:
    """Which receivers an alert with these labels goes to (like `amtool config routes test`)."""
    try:
        alert_labels = parse_label_pairs(labels)
    except ValueError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(2) from None
    config = _routes(routes)
    nodes = RouteTree(config).match(alert_labels)
    severity = alert_labels.get("severity", "info")
    table = Table("receiver", "route", "matchers", "group_by", "wait/interval/repeat", "channels now")
    for node in nodes:
        receiver = config.receiver(node.receiver)
        chans = ", ".join(channels_for(receiver, severity)) if severity in ("info", "low", "medium", "high",
                                                                            "critical") else "?"  # fmt: skip
        timing = "/".join(format_duration(t) for t in (node.group_wait, node.group_interval, node.repeat_interval))
        table.add_row(node.receiver, node.id, node.describe(), ",".join(node.group_by) or "-", timing,
                      chans or "digest")  # fmt: skip
    console.print(table)
    receivers = list(dict.fromkeys(n.receiver for n in nodes))
    console.print(",".join(receivers), markup=False, highlight=False)
    if verify_receivers is not None:
        expected = [r.strip() for r in verify_receivers.split(",") if r.strip()]
        if expected != receivers:
            err.print(f"WARNING: expected receivers {expected}, got {receivers}", markup=False)
            raise typer.Exit(1)


@silence_app.command("add")
def silence_add(
    matchers: Annotated[list[str], typer.Argument(help="matchers, e.g. vendor=V-1 'rule_id=~\"dup.*\"'")],
    comment: Annotated[str, typer.Option("--comment", "-c", help="why (required)")],
    duration: Annotated[str, typer.Option("--duration", "-d", help="how long, e.g. 2h")] = "1h",
    author: Annotated[str | None, typer.Option("--author", "-a", help="who (default: $USER)")] = None,
) -> None:
    """Add a silence; it stops applying by itself when it expires."""
    try:
        parsed = [Matcher.parse(m) for m in matchers]
        length = parse_duration(duration)
    except ValueError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(2) from None
    if length.total_seconds() <= 0:
        err.print("the duration must be positive", markup=False)
        raise typer.Exit(2)
    if not comment.strip():
        err.print("a silence needs a comment saying why", markup=False)
        raise typer.Exit(2)
    who = author or os.environ.get("USER") or getpass.getuser()
    now = _now()
    silence = _with_state(
        lambda s: s.add_silence([str(m) for m in parsed], now, now + length, who, comment.strip(), now)
    )
    console.print(silence.id, markup=False, highlight=False)
    err.print(f"silenced {', '.join(silence.matchers)} until {silence.ends_at.isoformat()} ({who})", markup=False)


@silence_app.command("list")
def silence_list(all_: Annotated[bool, typer.Option("--all", help="include expired silences")] = False) -> None:
    """Active silences (with --all, expired ones too)."""
    now = _now()
    silences = _with_state(lambda s: s.silences(now, include_expired=all_))
    table = Table("id", "matchers", "ends", "author", "comment", "state")
    for s in silences:
        state = "active" if s.active(now) else ("pending" if s.starts_at > now else "expired")
        table.add_row(s.id, " ".join(s.matchers), s.ends_at.isoformat(timespec="seconds"), s.created_by, s.comment,
                      state)  # fmt: skip
    console.print(table)


@silence_app.command("expire")
def silence_expire(silence_id: str) -> None:
    """End a silence now."""
    now = _now()
    who = os.environ.get("USER") or getpass.getuser()
    silence = _with_state(lambda s: s.expire_silence(silence_id, now, who))
    if silence is None:
        err.print(f"no silence {silence_id}", markup=False)
        raise typer.Exit(1)
    console.print(f"expired {silence_id}", markup=False)


@alerts_app.command("ack")
def ack(
    ids: Annotated[list[str], typer.Argument(help="alert ids, or a notification id (n-…) for all its alerts")],
    by: Annotated[str | None, typer.Option("--by", help="who (default: $USER)")] = None,
    comment: Annotated[str, typer.Option("--comment", "-c")] = "",
) -> None:
    """Acknowledge alerts: they stop repeating and do not escalate."""
    who = by or os.environ.get("USER") or getpass.getuser()
    now = _now()

    async def run(state: AlertState) -> tuple[list[str], list[str]]:
        done, unknown = [], []
        for ident in ids:
            targets = await state.resolve_ack_target(ident)
            if not targets:
                unknown.append(ident)
            for alert_id in targets:
                await state.ack(alert_id, who, comment, now)
                done.append(alert_id)
        return done, unknown

    done, unknown = _with_state(run)
    for alert_id in done:
        console.print(f"acked {alert_id}", markup=False)
    if unknown:
        err.print(f"unknown alert or notification id: {', '.join(unknown)}", markup=False)
        raise typer.Exit(1)


@alerts_app.command("list")
def list_alerts(limit: Annotated[int, typer.Option("--limit", "-n")] = 50) -> None:
    """Recent alerts, newest first, with their acknowledgement state."""

    async def run(state: AlertState) -> tuple[list[Any], dict[str, Any]]:
        alerts = await state.recent_alerts(limit)
        return alerts, await state.acks([s.alert.alert_id for s in alerts])

    alerts, acks = _with_state(run)
    table = Table("id", "received", "severity", "rule", "vendor", "payment", "amount", "ack")
    for stored in alerts:
        a = stored.alert
        acked = acks.get(a.alert_id)
        amount = f"{a.payment.amount or '?'} {a.payment.currency or ''}".strip()
        table.add_row(a.alert_id, stored.received_at.isoformat(timespec="seconds"), a.severity, a.rule_id,
                      a.vendor_id or "-", a.payment_id, amount, f"{acked.by}" if acked else "")  # fmt: skip
    console.print(table)


@alerts_app.command("send-test")
def send_test_cmd(
    receiver: str,
    routes: RoutesOpt = None,
    channel: Annotated[str | None, typer.Option("--channel", help="email or sms (default: all)")] = None,
) -> None:
    """Send a sample alert to a receiver through the real channels."""
    config = _routes(routes)
    if receiver not in config.receiver_names:
        err.print(f"no receiver {receiver!r} (receivers: {', '.join(config.receiver_names)})", markup=False)
        raise typer.Exit(2)
    if channel not in (None, "email", "sms"):
        err.print("--channel is email or sms", markup=False)
        raise typer.Exit(2)

    async def run() -> list[Any]:
        channels = real_channels(_settings())
        try:
            only: ChannelName | None = channel  # type: ignore[assignment]
            return await send_test(config, receiver, channels, only)
        finally:
            for c in channels.values():
                await c.close()

    results = asyncio.run(run())
    for r in results:
        mark = "sent" if r.ok else "FAILED"
        console.print(f"{mark} {r.channel} to {', '.join(r.recipients) or '-'}: {r.detail}", markup=False)
    if not results or not all(r.ok for r in results):
        raise typer.Exit(1)
