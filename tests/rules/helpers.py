"""Build rulesets from YAML text and evaluate them on hand-made contexts (no core needed)."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from paysentry.contract import Event
from paysentry.params import CompanyParams
from paysentry.ports import RuleContext
from rules.loader import load_ruleset
from rules.ruleset import Ruleset


def ruleset_from(tmp_path: Path, rules: str, **files: str) -> Ruleset:
    (tmp_path / "a.rules.yaml").write_text(rules, encoding="utf-8")
    for name, text in files.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return load_ruleset(tmp_path)


def one_rule(expr: str, *, on: str = "", reason: str = "", status: str = "active") -> str:
    lines = [
        "groups:",
        "  - name: g",
        "    labels: {team: t}",
        "    rules:",
        "      - id: r",
        f"        status: {status}",
        "        severity: high",
        "        action: hold",
        f"        expr: {json.dumps(expr)}",
        "        labels: {typology: demo}",
    ]
    if on:
        lines.append(f"        on: [{on}]")
    if reason:
        lines.append(f"        reason: {json.dumps(reason)}")
    return "\n".join(lines) + "\n"


def event(**fields: Any) -> Event:
    base: dict[str, Any] = {
        "type": "payment.released",
        "event_id": "e1",
        "event_time": "2026-10-06T15:00:00Z",
        "payment_id": "P1",
        "vendor_id": "V1",
        "amount": "1000.00",
        "currency": "USD",
    }
    base.update({k: str(v) if isinstance(v, Decimal) else v for k, v in fields.items()})
    return Event.model_validate(base)


def context(
    features: dict[str, Any] | None = None,
    *,
    event_type: str = "payment.released",
    windows: dict[tuple[str, str, int], float] | None = None,
    company: CompanyParams | None = None,
    **event_fields: Any,
) -> RuleContext:
    calls: list[tuple[str, str, int]] = []

    def window(entity: str, stat: str, seconds: int) -> float:
        calls.append((entity, stat, seconds))
        return (windows or {}).get((entity, stat, seconds), 0.0)

    ctx = RuleContext(
        event_type=event_type,
        event=event(type=event_type, **event_fields) if not event_type.startswith("sla.") else None,
        features=features or {},
        window=window,  # type: ignore[arg-type]
        company=company or CompanyParams(approval_limit=Decimal(50000)),
    )
    ctx.window.calls = calls  # type: ignore[attr-defined]
    return ctx


def fired(ruleset: Ruleset, ctx: RuleContext) -> list[str]:
    hits, shadow = ruleset.evaluate(ctx)
    return [h.rule_id for h in hits] + [f"shadow:{h.rule_id}" for h in shadow]


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stat = path.stat()  # make sure the change is visible even within one mtime tick
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
