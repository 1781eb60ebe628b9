"""Pytest fixtures for a real Prometheus server on loopback (Debian's `prometheus`).

- `start_prometheus` (function): a factory `start_prometheus(targets) -> PrometheusServer` scraping the
  given `host:port` targets every second; every server it started is stopped after the test. The test
  is skipped where `prometheus` is not installed (a failure in CI, which installs it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from devservices.prometheus import PrometheusError, PrometheusServer, find_prometheus


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def start_prometheus() -> Iterator[Callable[[list[str]], PrometheusServer]]:
    if find_prometheus() is None:
        _unavailable("prometheus is not installed (make services installs it)")
    started: list[PrometheusServer] = []

    def start(targets: list[str]) -> PrometheusServer:
        server = PrometheusServer(targets)
        try:
            server.start()
        except PrometheusError as exc:
            _unavailable(f"could not start prometheus: {exc}")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
