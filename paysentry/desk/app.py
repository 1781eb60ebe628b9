"""The desk's ASGI app: pages (web.py) and the JSON API (api.py) over one database.

`create_app(settings)` upgrades the database to the newest migration, loads the approval policies
(a broken file stops the start with file:line reasons) and records in the audit log when they changed
since the last start. Every response carries the security headers; the CSP allows no inline script.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from paysentry.desk import audit
from paysentry.desk.api import api_router
from paysentry.desk.approvals import ApprovalConfig, load_or_builtin
from paysentry.desk.dashboard import kpis_file_setting
from paysentry.desk.dashboard_web import dashboard_router
from paysentry.desk.db import AuditEntry, open_database
from paysentry.desk.settings import DeskSettings
from paysentry.desk.totp_vault import TotpVault
from paysentry.desk.web import web_router

log = logging.getLogger("paysentry.desk")

HERE = Path(__file__).parent
MAX_BODY_BYTES = 4 * 1024 * 1024
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def template_environment() -> Environment:
    # Autoescaping everywhere: vendor names and references come from the ERP and are untrusted.
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,
    )


def record_config_change(session: Session, approvals: ApprovalConfig, path: Path) -> None:
    """Audit the approval policies in use when they differ from those of the last start."""
    last = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "config.approvals").order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    previous = (last.after or {}).get("hash") if last else None
    if previous != approvals.source_hash:
        audit.record(session, actor="system", action="config.approvals", target=str(path)[:160],
                     before={"hash": previous}, after={"hash": approvals.source_hash})  # fmt: skip
        session.commit()


def create_app(settings: DeskSettings | None = None) -> FastAPI:
    settings = settings or DeskSettings()
    approvals = load_or_builtin(settings.approvals_path)  # a broken file stops the start before anything opens
    vault = TotpVault.from_setting(settings.desk_totp_key)  # so does a key that is not one
    if not vault.enabled:
        log.warning("TOTP secrets are kept in clear: set PAYSENTRY_DESK_TOTP_KEY (`paysentry totp-key`)")
    engine, sessions = open_database(settings.database_url)
    with sessions() as session:
        record_config_change(session, approvals, settings.approvals_path)

    app = FastAPI(title="paysentry review desk", docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json")
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.approvals = approvals
    app.state.totp_vault = vault
    app.state.templates = template_environment()
    app.state.kpis_file = kpis_file_setting()  # an analytics kpis.json the dashboard shows beside its own figures
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(web_router)
    app.include_router(dashboard_router)
    app.include_router(api_router, prefix="/api/v1")

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return PlainTextResponse("request body too large", status_code=413)
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.scheme == "https":
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> Response:
        # A value the database refuses (a NUL character in a search, an overlong name): the request's
        # fault, not the server's.
        message = "a value in the request cannot be stored or searched (NUL character or too long)"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=422)
        page = app.state.templates.get_template("error.html").render(code=422, message=message, user=None)
        return Response(page, status_code=422, media_type="text/html")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        headers = dict(exc.headers or {})
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
        if exc.status_code in (302, 303):
            return Response(status_code=exc.status_code, headers=headers)
        page = app.state.templates.get_template("error.html").render(
            code=exc.status_code, message=exc.detail, user=None
        )
        return Response(page, status_code=exc.status_code, media_type="text/html", headers=headers)

    return app
