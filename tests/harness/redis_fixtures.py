"""Pytest fixtures for a real Redis on loopback.

- `redis_server` (session): the server process, started on first use; the session is skipped where
  `redis-server` is not installed.
- `redis_url` (session): its URL, `redis://127.0.0.1:PORT/0`.
- `redis_clean_url` (function): the same URL after FLUSHDB, for a test that owns the whole db.
- `redis_key_prefix` (function): a unique key prefix, for tests that share the db without flushing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devservices.redis_server import RedisServer, find_redis_server
from tests.harness.services import started, unavailable


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if find_redis_server() is None:
        unavailable("redis-server is not installed (make services installs it)")
    server = started(RedisServer())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis_clean_url(redis_url: str) -> str:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_url


@pytest.fixture
def redis_key_prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"
