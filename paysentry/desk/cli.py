"""Commands of the review desk: `web`, `totp-key`, `cases import|export-labels|export-resolved`,
`users add|seal-totp`, `tokens create`, `audit export`. `register_desk_commands(app)` adds them to the
main CLI; `desk_app` holds them all on its own (tests run it with typer's CliRunner).

The database is `PAYSENTRY_DATABASE_URL` (default sqlite:///var/paysentry.db), upgraded to the newest
migration by every command before it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from sqlalchemy.orm import Session

from paysentry.desk.settings import DeskSettings

if TYPE_CHECKING:
    from paysentry.desk.totp_vault import TotpVault

MAX_LINE_BYTES = 512 * 1024

cases_app = typer.Typer(no_args_is_help=True, help="Import decisions into cases; export labels and resolutions.")
users_app = typer.Typer(no_args_is_help=True, help="Desk users and roles.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens with scopes.")
audit_app = typer.Typer(no_args_is_help=True, help="The desk's append-only audit log.")


@contextmanager
def _session() -> Iterator[Session]:
    from paysentry.desk.db import open_database

    engine, sessions = open_database(DeskSettings().database_url)
    try:
        with sessions() as session:
            yield session
    finally:
        engine.dispose()


def _write_lines(lines: Iterable[bytes], out: Path | None) -> int:
    count = 0
    if out is None:
        for line in lines:
            sys.stdout.write(line.decode())
            count += 1
        return count
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as handle:
        for line in lines:
            handle.write(line)
            count += 1
    return count


def web(
    host: Annotated[str, typer.Option(help="address to listen on (loopback unless you mean it)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
    kpis: Annotated[
        Path | None, typer.Option(help="a kpis.json from `paysentry report kpis`, shown on the dashboard")
    ] = None,
) -> None:
    """Serve the review desk (pages and /api/v1) with uvicorn."""
    import uvicorn

    from paysentry.desk.app import create_app
    from paysentry.desk.approvals import ApprovalsError

    try:
        application = create_app()
    except ApprovalsError as exc:
        typer.echo(f"approval policies refused:\n{exc}", err=True)
        raise typer.Exit(2) from None
    if kpis is not None:
        application.state.kpis_file = kpis
    typer.echo(
        f"review desk on http://{host}:{port}/ (database {DeskSettings().database_url.split('@')[-1]})", err=True
    )
    uvicorn.run(application, host=host, port=port, proxy_headers=True, log_level="info")


@cases_app.command("import")
def import_cases(decisions: Annotated[Path, typer.Argument(help="decisions JSON Lines, as `replay` writes")]) -> None:
    """Import decisions (idempotent by decision event id); flagged ones open or update cases."""
    from paysentry.desk.approvals import ApprovalsError, load_or_builtin
    from paysentry.desk.importer import InvalidDecision, import_decision

    try:
        approvals = load_or_builtin(DeskSettings().approvals_path)
    except ApprovalsError as exc:
        typer.echo(f"approval policies refused:\n{exc}", err=True)
        raise typer.Exit(2) from None
    imported = duplicates = refused = 0
    try:
        handle = decisions.open("rb")
    except OSError as exc:
        typer.echo(f"cannot read {decisions}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    with handle, _session() as session:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                if len(line) > MAX_LINE_BYTES:
                    raise InvalidDecision(f"line longer than {MAX_LINE_BYTES} bytes")
                record = orjson.loads(line)
                if not isinstance(record, dict):
                    raise InvalidDecision("not a JSON object")
                if import_decision(session, record, approvals=approvals):
                    imported += 1
                else:
                    duplicates += 1
            except (InvalidDecision, orjson.JSONDecodeError) as exc:
                refused += 1
                typer.echo(f"{decisions}:{number}: refused: {str(exc)[:300]}", err=True)
            if number % 500 == 0:
                session.commit()
        session.commit()
    typer.echo(f"imported {imported}, already known {duplicates}, refused {refused}")
    if refused:
        raise typer.Exit(1)


@cases_app.command("export-labels")
def export_labels(out: Annotated[Path | None, typer.Option(help="file to write; stdout without")] = None) -> None:
    """Every closed case as a `label.confirmed` event (JSON Lines)."""
    from paysentry.desk.labels import label_lines

    with _session() as session:
        count = _write_lines(label_lines(session), out)
    typer.echo(f"{count} labels", err=True)


@cases_app.command("export-resolved")
def export_resolved(out: Annotated[Path | None, typer.Option(help="file to write; stdout without")] = None) -> None:
    """Every closed case as a `case.resolved` record for the ERP (JSON Lines)."""
    from paysentry.desk.labels import resolved_lines

    with _session() as session:
        count = _write_lines(resolved_lines(session, DeskSettings().desk_base_url), out)
    typer.echo(f"{count} resolved cases", err=True)


@users_app.command("add")
def add_user(
    name: str,
    role: Annotated[str, typer.Option(help="viewer, analyst, lead, treasury or admin")],
    erp_user_id: Annotated[str | None, typer.Option(help="the user's id in the ERP (separation of duties)")] = None,
) -> None:
    """Add a user; prints a one-time password and, for roles that release money, a TOTP provisioning URI."""
    from paysentry.desk.security import create_user

    vault = _vault()
    with _session() as session:
        try:
            _user, password, uri = create_user(session, name, role, erp_user_id=erp_user_id, vault=vault)
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        session.commit()
    typer.echo(f"one-time password: {password}")
    if uri:
        typer.echo(f"TOTP provisioning URI: {uri}")


@users_app.command("seal-totp")
def seal_totp() -> None:
    """Seal every TOTP secret with the first key of PAYSENTRY_DESK_TOTP_KEY (after setting or rotating it)."""
    from paysentry.desk.security import seal_all
    from paysentry.desk.totp_vault import VaultError

    vault = _vault()
    with _session() as session:
        try:
            sealed = seal_all(session, vault)
        except VaultError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        session.commit()
    typer.echo(f"{sealed} TOTP secrets sealed")


def totp_key() -> None:
    """Print a new key for PAYSENTRY_DESK_TOTP_KEY (keep it with the desk's other secrets, not in the database)."""
    from paysentry.desk.totp_vault import new_key

    typer.echo(new_key())


def _vault() -> TotpVault:
    from paysentry.desk.totp_vault import TotpVault

    try:
        return TotpVault.from_setting(DeskSettings().desk_totp_key)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@tokens_app.command("create")
def create_token(
    name: str,
    scopes: Annotated[
        str, typer.Option(help="comma-separated: cases:read,cases:write,payments:read,audit:read,kpis:read")
    ],
) -> None:
    """Create an API token; it is printed once and stored only hashed."""
    from paysentry.desk.security import create_token as make_token

    with _session() as session:
        try:
            raw = make_token(session, name, [s.strip() for s in scopes.split(",") if s.strip()])
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        session.commit()
    typer.echo(raw)


@audit_app.command("export")
def export_audit(out: Annotated[Path | None, typer.Option(help="file to write; stdout without")] = None) -> None:
    """The whole audit log, oldest first, as JSON Lines."""
    from paysentry.desk.audit import export_lines

    with _session() as session:
        count = _write_lines(export_lines(session), out)
    typer.echo(f"{count} audit entries", err=True)


def register_desk_commands(app: typer.Typer) -> None:
    """Add the desk's commands to `app` (the main `paysentry` CLI)."""
    app.command("web")(web)
    app.command("totp-key")(totp_key)
    app.add_typer(cases_app, name="cases")
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(audit_app, name="audit")


desk_app = typer.Typer(no_args_is_help=True, help="The review desk.")
register_desk_commands(desk_app)
