"""Loading and checking `routes.yaml`; `RoutesHolder` keeps the last good config across reloads.

Every problem is reported as `path:line:col: message`, all of them at once, in file order.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from paysentry.alerts.config import Route, RoutesConfig
from paysentry.alerts.routes_yaml import (
    ConfigError,
    ConfigIssue,
    Loc,
    issue_at,
    issues_from_validation,
    load_routes_yaml,
    routes_position,
    scrub,
    substitute_env,
)
from paysentry.alerts.templates import PLACEHOLDERS
from paysentry.yamlsource import InvalidSource, read_source

log = logging.getLogger(__name__)

MAX_ROUTE_DEPTH = 32
"""Levels of nested `routes:` below the root route (real trees use two or three)."""


def parse_routes(text: str, path: str = "routes.yaml", environ: Mapping[str, str] | None = None) -> RoutesConfig:
    root = load_routes_yaml(text, path)
    if not isinstance(root, CommentedMap):
        raise ConfigError([ConfigIssue(path, 1, 1, "a routes file is a mapping with `route` and `receivers`")])
    too_deep = route_too_deep(root)
    if too_deep is not None:
        line, col = routes_position(root, too_deep)
        message = f"routes are nested more than {MAX_ROUTE_DEPTH} levels deep"
        raise ConfigError([ConfigIssue(path, line, col, message)])
    issues, substituted = substitute_env(root, path, environ, skip=("templates",))
    try:
        config = RoutesConfig.model_validate(root)
    except ValidationError as exc:
        # A value emptied by a missing or refused variable fails validation too; report the cause only.
        env_lines = {issue.line for issue in issues}
        found = [i for i in issues_from_validation(exc, root, path, RoutesConfig) if i.line not in env_lines]
        raise ConfigError(scrub(issues + found, substituted)) from None
    issues += [issue_at(root, path, loc, message) for loc, message in check_references(config)]
    if issues:
        raise ConfigError(scrub(issues, substituted))
    return config


def route_too_deep(root: CommentedMap) -> Loc | None:
    """Where the route tree first goes deeper than MAX_ROUTE_DEPTH, found with an explicit stack (the
    checks after validation walk the tree recursively), or None."""
    stack: list[tuple[Any, Loc, int]] = [(root.get("route"), ("route",), 0)]
    while stack:
        route, loc, depth = stack.pop()
        children = route.get("routes") if isinstance(route, CommentedMap) else None
        if not isinstance(children, CommentedSeq):
            continue
        if depth >= MAX_ROUTE_DEPTH:
            return (*loc, "routes")
        stack.extend((child, (*loc, "routes", i), depth + 1) for i, child in enumerate(children))
    return None


def load_routes(path: str | Path, environ: Mapping[str, str] | None = None) -> RoutesConfig:
    path = Path(path)
    try:
        text = read_source(path)
    except InvalidSource as exc:
        raise ConfigError(exc.errors) from None
    return parse_routes(text, str(path), environ)


def check_references(config: RoutesConfig) -> list[tuple[Loc, str]]:
    """What pydantic cannot see: names that must refer to something defined elsewhere in the file."""
    problems: list[tuple[Loc, str]] = []
    names: set[str] = set()
    for i, receiver in enumerate(config.receivers):
        if receiver.name in names:
            problems.append((("receivers", i, "name"), f"receiver {receiver.name!r} is defined twice"))
        names.add(receiver.name)
    known = ", ".join(sorted(names))

    def need_receiver(name: str | None, loc: Loc) -> None:
        if name is not None and name not in names:
            problems.append((loc, f"no receiver named {name!r} (receivers: {known})"))

    root = config.route
    if root.receiver is None:
        problems.append((("route",), "the root route needs a default receiver"))
    if root.matchers:
        problems.append((("route", "matchers"), "the root route matches every alert; it cannot have matchers"))
    if root.continue_:
        problems.append((("route", "continue"), "the root route cannot have continue"))

    def walk(route: Route, loc: Loc) -> None:
        need_receiver(route.receiver, (*loc, "receiver"))
        if route.escalation is not None and route.escalation not in config.escalations:
            problems.append(((*loc, "escalation"), f"no escalation named {route.escalation!r}"))
        for j, child in enumerate(route.routes):
            walk(child, (*loc, "routes", j))

    walk(root, ("route",))
    for i, receiver in enumerate(config.receivers):
        loc = ("receivers", i)
        need_receiver(receiver.fallback, (*loc, "fallback"))
        if receiver.fallback == receiver.name:
            problems.append(((*loc, "fallback"), "a receiver cannot be its own fallback"))
        for channel in ("email", "sms"):
            target = getattr(receiver, channel)
            if target is not None and target.template != "default" and target.template not in config.templates:
                problems.append(((*loc, channel, "template"), f"no template named {target.template!r}"))
        wanted: list[str | None] = [receiver.digest.channel]
        if receiver.quiet_hours is not None:
            wanted.append(receiver.quiet_hours.digest_channel)
        for digest_to in wanted:
            if digest_to is not None and not receiver.has(digest_to):
                problems.append(((*loc,), f"digests go to {digest_to}, but the receiver has no {digest_to}"))
    need_receiver(config.global_.fallback_receiver, ("global", "fallback_receiver"))
    for name, escalation in config.escalations.items():
        for j, step in enumerate(escalation.steps):
            need_receiver(step.receiver, ("escalations", name, "steps", j, "receiver"))
    for name, template_set in config.templates.items():
        for field, text in template_set.model_dump(exclude_none=True).items():
            message = check_template(text, field)
            if message:
                problems.append((("templates", name, field), message))
    return problems


def check_template(text: str, field: str) -> str | None:
    template = string.Template(text)
    if not template.is_valid():
        return "invalid template: a `$` must start ${name} (write $$ for a dollar sign)"
    allowed = PLACEHOLDERS["sms" if field == "sms" else "email"]
    unknown = sorted(set(template.get_identifiers()) - allowed)
    if unknown:
        return f"unknown placeholder(s) {', '.join('${' + u + '}' for u in unknown)}; known: " + ", ".join(
            sorted(allowed)
        )
    return None


class RoutesHolder:
    """The routes in use. `reload()` swaps in a new file only when it is valid; a bad file is logged with
    its `path:line:col` errors and the last good config stays in use."""

    def __init__(self, path: str | Path, environ: Mapping[str, str] | None = None):
        self.path = Path(path)
        self.environ = environ
        self.config: RoutesConfig = load_routes(self.path, environ)
        self.last_error: ConfigError | None = None
        self._mtime = self._stat()

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def reload(self) -> bool:
        """True if a new config was loaded; False if the file was bad (last good kept)."""
        self._mtime = self._stat()
        try:
            self.config = load_routes(self.path, self.environ)
        except ConfigError as exc:
            self.last_error = exc
            log.error("routes reload failed; keeping the last good routes:\n%s", exc)
            return False
        except Exception as exc:  # a checker bug must not stop the worker; the last good routes stay
            log.exception("routes reload failed; keeping the last good routes")
            reason = f"routes could not be checked: {type(exc).__name__}"
            self.last_error = ConfigError([ConfigIssue(str(self.path), 1, 1, reason)])
            return False
        self.last_error = None
        return True

    def reload_if_changed(self) -> bool:
        if self._stat() == self._mtime:
            return False
        return self.reload()
