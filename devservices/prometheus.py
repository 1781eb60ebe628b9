"""A real Prometheus server on a free loopback port, scraping given targets every second, with its
storage in a temporary directory. Used by tests/harness/prometheus_fixtures.py; usable on its own:

    with PrometheusServer(targets=["127.0.0.1:9108"]) as prom:
        prom.wait_for("up == 1")
        prom.query("paysentry_payments_total")   # the API's result list
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from devservices.process import LoopbackServer, ServiceError, find_binary
from devservices.process import free_port as free_port  # tests take it from here

PROMETHEUS_BINARIES = ("prometheus", "/usr/bin/prometheus", "/usr/local/bin/prometheus")


def find_prometheus() -> str | None:
    return find_binary(PROMETHEUS_BINARIES)


class PrometheusError(ServiceError):
    pass


def scrape_config(targets: list[str], interval: str = "1s", job: str = "paysentry") -> str:
    """A prometheus.yml scraping `targets` (host:port, /metrics) every `interval`. JSON is YAML."""
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "static_configs": [{"targets": targets}],
            }
        ],
    }
    return json.dumps(config, indent=2)


class PrometheusServer(LoopbackServer):
    """One prometheus process. `start()` waits until /-/ready answers; `stop()` ends it and removes its data."""

    name = "prometheus"
    log_name = "prometheus.log"
    tmp_prefix = "paysentry-prometheus-"
    error = PrometheusError
    poll_seconds = 0.1

    def __init__(
        self, targets: list[str], *, binary: str | None = None, port: int | None = None, startup_timeout: float = 30.0
    ) -> None:
        super().__init__(port, startup_timeout)
        self.binary = binary or find_prometheus()
        self.targets = targets

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _check_installed(self) -> None:
        if self.binary is None:
            raise PrometheusError("prometheus is not installed (apt-get install -y prometheus)")

    def _command(self, workdir: Path) -> list[str]:
        assert self.binary is not None  # _check_installed
        config = workdir / "prometheus.yml"
        config.write_text(scrape_config(self.targets))
        return [
            self.binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` member of a successful answer."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=5) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise PrometheusError(f"query failed: {body}")
        return body["data"]

    def query(self, expression: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        return list(self.api("query", query=expression)["result"])

    def wait_for(self, expression: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll `expression` until it returns a non-empty result (scrapes are every second)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expression)
            if result:
                return result
            time.sleep(0.25)
        raise PrometheusError(f"no result for {expression!r} after {timeout:.0f} s")
