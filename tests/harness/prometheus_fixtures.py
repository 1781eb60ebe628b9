"""Pytest fixtures for a real Prometheus server on loopback (Debian's `prometheus`).

- `start_prometheus` (function): a factory `start_prometheus(targets) -> PrometheusServer` scraping the
  given `host:port` targets every second; every server it started is stopped after the test. The test
  is skipped where `prometheus` is not installed (a failure in CI, which installs it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devservices.prometheus import PrometheusServer, find_prometheus
from tests.harness.services import started, unavailable


@pytest.fixture
def start_prometheus() -> Iterator[Callable[[list[str]], PrometheusServer]]:
    if find_prometheus() is None:
        unavailable("prometheus is not installed (make services installs it)")
    running: list[PrometheusServer] = []

    def start(targets: list[str]) -> PrometheusServer:
        server = started(PrometheusServer(targets))
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()
