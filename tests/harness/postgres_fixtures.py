"""Pytest fixtures for a real PostgreSQL on loopback.

- `postgres_server` (session): the server process, started on first use and stopped at the end; the
  tests that need it are skipped where PostgreSQL is not installed (and fail in CI, which installs it).
- `postgres_database_url` (function): a fresh, empty database on that server for one test, dropped after.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devservices.postgres import PostgresServer, find_pg_bin
from tests.harness.services import started, unavailable


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if find_pg_bin() is None:
        unavailable("PostgreSQL is not installed (make services installs it)")
    server = started(PostgresServer())
    yield server
    server.stop()


@pytest.fixture
def postgres_database_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)
