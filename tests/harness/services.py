"""What the fixture modules share about the real services they start on loopback."""

from __future__ import annotations

import os
from typing import NoReturn, TypeVar

import pytest

from devservices.process import LoopbackServer, ServiceError

ServerT = TypeVar("ServerT", bound=LoopbackServer)


def unavailable(reason: str) -> NoReturn:
    """A missing service skips the test on a developer's machine and fails it in CI (which installs it)."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def started(server: ServerT) -> ServerT:
    """`server`, started; the test is `unavailable` when it does not start."""
    try:
        return server.start()
    except ServiceError as exc:
        unavailable(f"could not start {server.name}: {exc}")
