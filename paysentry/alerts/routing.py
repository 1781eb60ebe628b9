"""The route tree, as in Alertmanager, plus the per-receiver severity policy. Pure: no I/O, no clock.

An alert enters at the root (which matches everything). At each route, the children are tried in
order; an alert that matches a child goes down that child, and the search stops there unless the child
has `continue: true`. A route none of whose children match is where the alert ends up. Children inherit
receiver, group_by, the three timings and the escalation from their parent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from paysentry.alerts.config import ALL_LABELS, ChannelName, Receiver, Route, RoutesConfig
from paysentry.alerts.matchers import Matcher, matches_all
from paysentry.contract import severity_rank

DEFAULT_GROUP_WAIT = timedelta(seconds=30)
DEFAULT_GROUP_INTERVAL = timedelta(minutes=5)
DEFAULT_REPEAT_INTERVAL = timedelta(hours=4)


@dataclass(frozen=True)
class RouteNode:
    id: str
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    escalation: str | None
    continue_: bool
    children: tuple[RouteNode, ...] = field(default=())

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if self.group_by == (ALL_LABELS,):
            return dict(sorted(labels.items()))
        return {name: labels.get(name, "") for name in sorted(self.group_by)}

    def group_key(self, labels: Mapping[str, str]) -> str:
        """Alerts with the same key are one group: same route, same receiver, same group_by values."""
        values = ",".join(f"{k}={v}" for k, v in self.group_labels(labels).items())
        digest = hashlib.sha256(values.encode()).hexdigest()[:16]
        return f"{self.id}:{self.receiver}:{digest}"

    def describe(self) -> str:
        return "{" + ", ".join(str(m) for m in self.matchers) + "}"


def _build(route: Route, parent: RouteNode | None, node_id: str) -> RouteNode:
    def inherit(value: object, name: str, default: object) -> object:
        if value is not None:
            return value
        return getattr(parent, name) if parent is not None else default

    group_by = route.group_by if route.group_by is not None else (parent.group_by if parent else ())
    node = RouteNode(
        id=node_id,
        receiver=str(inherit(route.receiver, "receiver", "")),
        matchers=tuple(route.matchers),
        group_by=tuple(group_by),
        group_wait=inherit(route.group_wait, "group_wait", DEFAULT_GROUP_WAIT),  # type: ignore[arg-type]
        group_interval=inherit(route.group_interval, "group_interval", DEFAULT_GROUP_INTERVAL),  # type: ignore[arg-type]
        repeat_interval=inherit(route.repeat_interval, "repeat_interval", DEFAULT_REPEAT_INTERVAL),  # type: ignore[arg-type]
        escalation=inherit(route.escalation, "escalation", None),  # type: ignore[arg-type]
        continue_=route.continue_,
    )
    children = tuple(_build(child, node, f"{node_id}.{i}") for i, child in enumerate(route.routes))
    return RouteNode(**{**node.__dict__, "children": children})


class RouteTree:
    def __init__(self, config: RoutesConfig):
        self.config = config
        self.root = _build(config.route, None, "0")

    def match(self, labels: Mapping[str, str]) -> list[RouteNode]:
        """The routes an alert with these labels ends up at, in tree order."""
        return _match(self.root, labels)

    def receivers(self, labels: Mapping[str, str]) -> list[str]:
        seen: list[str] = []
        for node in self.match(labels):
            if node.receiver not in seen:
                seen.append(node.receiver)
        return seen

    def walk(self) -> list[tuple[int, RouteNode]]:
        out: list[tuple[int, RouteNode]] = []

        def visit(node: RouteNode, depth: int) -> None:
            out.append((depth, node))
            for child in node.children:
                visit(child, depth + 1)

        visit(self.root, 0)
        return out


def _match(node: RouteNode, labels: Mapping[str, str]) -> list[RouteNode]:
    if not matches_all(node.matchers, labels):
        return []
    found: list[RouteNode] = []
    for child in node.children:
        matched = _match(child, labels)
        if matched:
            found.extend(matched)
            if not child.continue_:
                break
    return found or [node]


def channels_for(receiver: Receiver, severity: str) -> list[ChannelName]:
    """The channels a notification of this severity goes out on right away (empty: digest).
    Defaults: critical → SMS and email, high → email, lower → digest."""
    rank = severity_rank(severity)
    out: list[ChannelName] = []
    if receiver.sms is not None and rank >= severity_rank(receiver.min_severity.sms):
        out.append("sms")
    if receiver.email is not None and rank >= severity_rank(receiver.min_severity.email):
        out.append("email")
    return out


def digest_channel(receiver: Receiver, preferred: ChannelName | None = None) -> ChannelName:
    if preferred is not None and receiver.has(preferred):
        return preferred
    return "email" if receiver.email is not None else "sms"


def all_channels(receiver: Receiver) -> list[ChannelName]:
    channels: list[ChannelName] = ["sms", "email"]
    return [c for c in channels if receiver.has(c)]
