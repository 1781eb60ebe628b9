"""The demo's closing report: the top alerts, and which injected anomalies the engine caught.

It reads the decisions back from the replay's decisions file, one at a time (`read_decisions`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from paysentry.contract import Decision


def _money(amount: Any) -> str:
    try:
        return f"{float(amount):,.2f}"
    except (TypeError, ValueError):
        return "n/a"


def read_decisions(path: Path) -> Iterator[Decision]:
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield Decision.model_validate_json(line)


def print_demo_report(decisions: Iterable[Decision], labels: list[dict[str, Any]], console: Console) -> None:
    flagged: dict[str, Decision] = {}
    payment_ids: set[str] = set()
    for decision in decisions:
        payment_ids.add(decision.payment_id)
        if decision.action == "allow":
            continue
        best = flagged.get(decision.payment_id)
        if best is None or decision.risk_score > best.risk_score:
            flagged[decision.payment_id] = decision
    top = sorted(flagged.values(), key=lambda d: (-d.risk_score, d.payment_id))[:10]
    table = Table(title="top alerts (one line per payment, highest risk first)")
    for column in ("risk", "action", "payment", "vendor", "amount", "why"):
        table.add_column(column, overflow="fold")
    for decision in top:
        payment = decision.explanation.get("payment", {})
        why = "; ".join(f"{h.rule_id}: {h.reason}" for h in decision.rule_hits[:2]) or (
            f"model score {decision.model_score:.3f}" if decision.model_score is not None else ""
        )
        table.add_row(
            f"{decision.risk_score:.2f}", decision.action, decision.payment_id, decision.vendor_id or "",
            f"{_money(payment.get('amount'))} {payment.get('currency', '')}", why,
        )  # fmt: skip
    console.print(table)

    labelled: dict[str, str] = {label["payment_id"]: label.get("typology", "unknown") for label in labels}
    per_typology: dict[str, list[int]] = {}
    for payment_id, typology in labelled.items():
        caught, total = per_typology.setdefault(typology, [0, 0])
        per_typology[typology] = [caught + (payment_id in flagged), total + 1]
    coverage = Table(title="injected anomalies caught (flagged review or above)")
    coverage.add_column("typology")
    coverage.add_column("caught", justify="right")
    for typology, (caught, total) in sorted(per_typology.items()):
        coverage.add_row(typology, f"{caught}/{total}")
    false_alarms = sum(1 for payment_id in flagged if payment_id not in labelled)
    payments = len(payment_ids)
    coverage.add_row("[dim]flagged payments with no label[/]", f"{false_alarms}/{payments}")
    console.print(coverage)


def print_alert_summary(decisions: Iterable[Decision], console: Console) -> None:
    """Route the demo's decisions through the default alert routes (nothing is really sent) and show
    what on-call staff would have received: grouped, deduplicated, rate limited."""
    from datetime import datetime

    from paysentry.alerts.embedded import EmbeddedAlerts

    latest: datetime | None = None
    with EmbeddedAlerts() as alerts:
        for decision in decisions:
            if decision.action == "allow":
                continue
            moment = datetime.fromisoformat(decision.event_time)
            latest = moment if latest is None or moment > latest else latest
            alerts.handle(decision, now=latest)
        if latest is not None:
            alerts.drain(latest)
        summary = alerts.summary()
    table = Table(title="notifications on-call would have received (config/routes.yaml)")
    table.add_column("outcome")
    table.add_column("receiver / channel")
    table.add_column("count", justify="right")
    for outcome, counts in summary.items():
        for target, count in sorted(counts.items()):
            table.add_row(outcome, target, f"{count:,}")
    console.print(table)


def report_kpis(events: Path, labels: Path, decisions: Path, out_dir: Path, console: Console) -> Path:
    """Compute the demo's KPIs, print the headline and write the KPI report; returns its kpis.json."""
    from paysentry.analytics import compute_kpis
    from paysentry.analytics.kpi_report import headline, write_kpi_report

    kpis = compute_kpis(events, decisions, labels_path=labels)
    files = write_kpi_report(kpis, out_dir)
    table = Table(title="headline KPIs (the whole simulated period)")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for name, value in headline(kpis):
        table.add_row(name, str(value))
    console.print(table)
    console.print(f"KPI report: {files['html']} (with {files['json'].name}, {files['csv'].name} and charts/)")
    return files["json"]


def flagged_payment_ids(decisions: Path) -> set[str]:
    return {d.payment_id for d in read_decisions(decisions) if d.action != "allow"}


def import_flagged_into_desk(decisions: Path, database_url: str, approvals_path: Path) -> tuple[int, int, int]:
    """Import every decision on the payments the demo flagged into the desk's database (so each case
    shows the payment's whole story); idempotent by decision event id. Returns (imported, already
    known, cases in the database)."""
    import orjson
    from sqlalchemy import func, select

    from paysentry.desk.approvals import load_or_builtin
    from paysentry.desk.db import Case, open_database
    from paysentry.desk.importer import import_decision

    approvals = load_or_builtin(approvals_path)
    flagged = flagged_payment_ids(decisions)
    engine, sessions = open_database(database_url)
    imported = known = 0
    try:
        with sessions() as session, decisions.open("rb") as handle:
            for line in handle:
                record = orjson.loads(line) if line.strip() else None
                if not record or record.get("payment_id") not in flagged:
                    continue
                if import_decision(session, record, approvals=approvals, actor="demo"):
                    imported += 1
                else:
                    known += 1
            session.commit()
            cases = session.scalar(select(func.count()).select_from(Case)) or 0
    finally:
        engine.dispose()
    return imported, known, cases


def print_desk_howto(
    database_url: str, kpis_json: Path, imported: int, known: int, cases: int, console: Console
) -> None:
    from sqlalchemy.engine import make_url

    shown = make_url(database_url).render_as_string(hide_password=True)
    console.print(
        f"review desk: imported {imported} decisions on the flagged payments ({known} already there); "
        f"{cases} cases in {shown}"
    )
    console.print(
        "open the desk (the user command prints a one-time password and a TOTP URI for an authenticator app):"
    )
    console.print("  paysentry users add lead1 --role lead", markup=False)
    console.print(f"  PAYSENTRY_DESK_KPIS_FILE={kpis_json} paysentry web", markup=False)
    console.print("  then http://127.0.0.1:8080/cases (the queue) and http://127.0.0.1:8080/dashboard", markup=False)
