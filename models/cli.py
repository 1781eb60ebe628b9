"""`paysentry model train | register | evaluate | shadow | promote | rollback | list`: the data scientist's loop.

`train` learns a logistic regression online (`--kind logistic`) or a gradient-boosted tree ensemble offline
(`--kind hgb`) from an events file with its verdicts; `register FILE` signs a model trained in a notebook
(models.offline.save_model_file). Either kind is served the same way.

The registry is a directory or a Redis URL (`--registry`, or PAYSENTRY_MODEL_REGISTRY), signed with
PAYSENTRY_MODEL_SIGNING_KEY. With Redis, `promote`, `shadow` and `rollback` also tell every worker to
switch. Every registration, promotion and rollback is appended to the audit log.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer
from rich.console import Console
from rich.table import Table

from models.learning import Scores, evaluate, events_of, train
from models.lifecycle import SnapshotRefused, WeakSigningKey
from models.offline import read_model_file, train_boosted
from models.registry import ModelRegistry, RegistryError, registry_from_location
from models.serving import KEY_ENV, REGISTRY_ENV, Served
from paysentry.audit import os_user

model_app = typer.Typer(help="Train, compare, shadow, promote and roll back supervised models.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

RegistryOption = Annotated[str, typer.Option("--registry", envvar=REGISTRY_ENV,
                                             help="registry directory or redis:// URL")]  # fmt: skip
AuditOption = Annotated[Path, typer.Option(help="audit log (JSON Lines) of every registry change")]
ByOption = Annotated[str, typer.Option("--by", help="who does this (recorded beside the OS user)")]
DEFAULT_AUDIT = Path("var/model-audit.jsonl")
PROMOTE_DELAY = 60  # seconds: every worker has switched before the first payment the new model scores


def _registry(location: str, audit_log: Path) -> ModelRegistry:
    try:
        return registry_from_location(location, os.environ.get(KEY_ENV, "").encode(), audit_log=audit_log)
    except WeakSigningKey as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None


def _moment(text: str | None, default: int | None = None) -> int | None:
    """An ISO 8601 time (naive means UTC) or 'now', in epoch seconds."""
    if text is None:
        return default
    if text == "now":
        return int(time.time())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time (e.g. 2026-03-01T00:00:00Z) or 'now'") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _version(text: str) -> tuple[str, int]:
    model_id, _, version = text.rpartition("@v")
    if not model_id or not version.isdigit():
        raise typer.BadParameter(f"{text!r}: expected MODEL@vN, e.g. fraud-lr@v3")
    return model_id, int(version)


def _print_scores(results: list[Scores]) -> None:
    table = Table("model", "payments", "frauds", "ROC AUC", "avg precision")
    for r in results:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        table.add_row(r.name, str(r.scored), str(r.frauds), fmt(r.roc_auc), fmt(r.average_precision))
    out.print(table)


def _ruleset(rules: Path | None) -> object | None:
    if rules is None:
        return None
    from paysentry.rulebook import load_rulebook

    return load_rulebook(rules)


@model_app.command("train")
def train_command(
    events: Annotated[Path, typer.Argument(help="events with their label.confirmed verdicts (JSON Lines)")],
    model_id: Annotated[str, typer.Option(help="registry name of the model")],
    registry: RegistryOption,
    until: Annotated[str | None, typer.Option(help="learn from events before this time (ISO 8601)")] = None,
    test_from: Annotated[str | None, typer.Option(help="measure on payments released from this time")] = None,
    horizon_days: Annotated[float, typer.Option(help="a payment with no verdict this long is legitimate")] = 21.0,
    rules: Annotated[Path | None, typer.Option(help="rules directory (default: the built-in rulebook)")] = None,
    notes: Annotated[str, typer.Option(help="free text kept on the model card")] = "",
    kind: Annotated[
        Literal["logistic", "hgb"], typer.Option(help="logistic: online; hgb: boosted trees, offline")
    ] = "logistic",
    max_iter: Annotated[int, typer.Option(min=1, max=2000, help="hgb: boosting iterations (trees)")] = 100,
    by: ByOption = "",
    audit_log: AuditOption = DEFAULT_AUDIT,
) -> None:
    """Learn from an events file (label delay respected), freeze, and register a new version.

    logistic: an online learner follows the events up to --until; its prequential scores from --test-from
    are the metrics. hgb: a gradient-boosted tree ensemble learns from the payments released before --until
    (or --test-from) with the verdicts known by then, and is measured on those released from --test-from."""
    target = _registry(registry, audit_log)
    if kind == "hgb":
        _train_boosted(target, events, model_id, until, test_from, rules, notes, max_iter, by)
        return
    learner, scores = train(events_of(events), _ruleset(rules), horizon=int(horizon_days * 86400),  # type: ignore[arg-type]
                            until=_moment(until), test_from=_moment(test_from))  # fmt: skip
    if learner.frauds == 0:
        err.print("[red]no payment of the events was confirmed as fraud before --until: nothing to learn from[/]")
        raise typer.Exit(1)
    card = target.register(learner.freeze(), model_id=model_id, by=by or os_user(), metrics=scores.metrics(),
                           trained_to=until, notes=notes)  # fmt: skip
    _print_scores([scores])
    out.print(f"registered {card.name} ({learner.learned} payments learnt, {learner.frauds} frauds)")


def _train_boosted(target: ModelRegistry, events: Path, model_id: str, until: str | None, test_from: str | None,
                   rules: Path | None, notes: str, max_iter: int, by: str) -> None:  # fmt: skip
    try:
        trained = train_boosted(events_of(events), _ruleset(rules), until=_moment(until),  # type: ignore[arg-type]
                                test_from=_moment(test_from), params={"max_iter": max_iter})  # fmt: skip
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    card = target.register(trained.model, model_id=model_id, by=by or os_user(), metrics=trained.scores.metrics(),
                           trained_to=until or test_from, notes=notes)  # fmt: skip
    _print_scores([trained.scores])
    out.print(f"registered {card.name} (hgb, {len(trained.model.trees)} trees; {trained.payments} payments learnt, "
              f"{trained.frauds} frauds)")  # fmt: skip


@model_app.command("register")
def register_command(
    model_file: Annotated[Path, typer.Argument(help="a model file (models.offline.save_model_file)")],
    model_id: Annotated[str, typer.Option(help="registry name of the model")],
    registry: RegistryOption,
    notes: Annotated[str | None, typer.Option(help="free text kept on the model card (default: the file's)")] = None,
    by: ByOption = "",
    audit_log: AuditOption = DEFAULT_AUDIT,
) -> None:
    """Check, sign and register a model trained elsewhere (e.g. a notebook) as a new version."""
    target = _registry(registry, audit_log)
    try:
        model, record = read_model_file(model_file)
        card = target.register(model, model_id=model_id, by=by or os_user(), metrics=record.metrics,
                               trained_from=record.trained_from, trained_to=record.trained_to,
                               notes=record.notes if notes is None else notes)  # fmt: skip
    except (RegistryError, SnapshotRefused, ValueError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    out.print(f"registered {card.name} ({card.kind}, {len(card.inputs)} inputs)")


@model_app.command("evaluate")
def evaluate_command(
    events: Annotated[Path, typer.Argument(help="events with their label.confirmed verdicts (JSON Lines)")],
    versions: Annotated[list[str], typer.Argument(help="versions to compare, as MODEL@vN")],
    registry: RegistryOption,
    since: Annotated[str | None, typer.Option(help="score payments released from this time (ISO 8601)")] = None,
    rules: Annotated[Path | None, typer.Option(help="rules directory (default: the built-in rulebook)")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the figures here")] = None,
    audit_log: AuditOption = DEFAULT_AUDIT,
) -> None:
    """Score the same released payments with each version and compare ROC AUC and average precision."""
    target = _registry(registry, audit_log)
    try:
        served = [Served(text, target.load(*_version(text)).model) for text in versions]
    except (RegistryError, SnapshotRefused) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    results = evaluate(events_of(events), served, _ruleset(rules), since=_moment(since))  # type: ignore[arg-type]
    _print_scores(results)
    if json_out is not None:
        json_out.write_bytes(orjson.dumps([{"model": r.name, **r.metrics()} for r in results]))


def _change(action: str, run: object) -> None:
    try:
        entry = run()  # type: ignore[operator]
    except (RegistryError, SnapshotRefused) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    when = datetime.fromtimestamp(entry.effective_from, UTC).isoformat()
    out.print(f"{action}: {entry.role} model is {entry.name or 'none'} from {when} (event time)")


@model_app.command("promote")
def promote_command(
    version: Annotated[str, typer.Argument(help="MODEL@vN")],
    registry: RegistryOption,
    effective_from: Annotated[str | None, typer.Option(help="event time it takes effect (default: in 1 min)")] = None,
    reason: Annotated[str, typer.Option(help="why, for the audit log")] = "",
    by: ByOption = "",
    audit_log: AuditOption = DEFAULT_AUDIT,
) -> None:
    """Make a version the live model: its model_score may act (rules, combined risk) from then on."""
    target = _registry(registry, audit_log)
    start = _moment(effective_from, int(time.time()) + PROMOTE_DELAY)
    _change("promoted", lambda: target.promote(*_version(version), by=by or os_user(), effective_from=start,
                                               reason=reason))  # fmt: skip


@model_app.command("rollback")
def rollback_command(
    registry: RegistryOption,
    effective_from: Annotated[str | None, typer.Option(help="event time it takes effect (default: now)")] = None,
    reason: Annotated[str, typer.Option(help="why, for the audit log")] = "",
    by: ByOption = "",
    audit_log: AuditOption = DEFAULT_AUDIT,
) -> None:
    """Make the previously promoted version live again (or none, after the first promotion)."""
    target = _registry(registry, audit_log)
    _change("rolled back", lambda: target.rollback(by=by or os_user(), effective_from=_moment(effective_from),
                                                   reason=reason))  # fmt: skip


@model_app.command("shadow")
def shadow_command(
    version: Annotated[str, typer.Argument(help="MODEL@vN, or 'none' to stop shadowing")],
    registry: RegistryOption,
    reason: Annotated[str, typer.Option(help="why, for the audit log")] = "",
    by: ByOption = "",
    audit_log: AuditOption = DEFAULT_AUDIT,
) -> None:
    """Score a version beside the live one (decisions show its shadow_score; it never acts)."""
    target = _registry(registry, audit_log)
    model_id, number = (None, None) if version == "none" else _version(version)
    _change("shadowing", lambda: target.shadow(model_id, number, by=by or os_user(), reason=reason))


@model_app.command("list")
def list_command(registry: RegistryOption, audit_log: AuditOption = DEFAULT_AUDIT) -> None:
    """Every version with its metrics, and which is live and in shadow now."""
    target = _registry(registry, audit_log)
    try:
        live, shadow = target.current("live"), target.current("shadow")
        table = Table("version", "kind", "created", "by", "trained to", "metrics", "role")
        for model_id, number in target.versions():
            card = target.load(model_id, number).card
            role = ", ".join(r for r, e in (("live", live), ("shadow", shadow)) if e and e.name == card.name)
            metrics = " ".join(f"{k}={v:g}" for k, v in card.metrics.items())
            table.add_row(card.name, card.kind, card.created_at[:19], card.created_by, card.trained_to or "-", metrics,
                          role)  # fmt: skip
    except SnapshotRefused as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    out.print(table)
