"""What every request handler needs: a database session, the client's address, a rendered page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session


def db_session(request: Request) -> Iterator[Session]:
    """One session per request, closed after it (the handler commits what it changed)."""
    with request.app.state.sessions() as session:
        yield session


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    page = request.app.state.templates.get_template(name).render(request=request, **context)
    return Response(page, status_code=status, media_type="text/html")
