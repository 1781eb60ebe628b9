"""A real Prometheus server on a free loopback port, scraping given targets every second, with its
storage in a temporary directory. Used by tests/harness/prometheus_fixtures.py; usable on its own:

    with PrometheusServer(targets=["127.0.0.1:9108"]) as prom:
        prom.wait_for_target_up()
        prom.query("paysentry_payments_total")   # the API's result list
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

PROMETHEUS_BINARIES = ("prometheus", "/usr/bin/prometheus", "/usr/local/bin/prometheus")


def find_prometheus() -> str | None:
    for candidate in PROMETHEUS_BINARIES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrometheusError(RuntimeError):
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


class PrometheusServer:
    """One prometheus process. `start()` waits until /-/ready answers; `stop()` ends it and removes its data."""

    def __init__(
        self, targets: list[str], *, binary: str | None = None, port: int | None = None, startup_timeout: float = 30.0
    ) -> None:
        self.binary = binary or find_prometheus()
        self.targets = targets
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        if self.binary is None:
            raise PrometheusError("prometheus is not installed (apt-get install -y prometheus)")
        self._tmpdir = tempfile.TemporaryDirectory(prefix="paysentry-prometheus-")
        workdir = Path(self._tmpdir.name)
        config = workdir / "prometheus.yml"
        config.write_text(scrape_config(self.targets))
        self._log = (workdir / "prometheus.log").open("wb")
        args = [
            self.binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ]
        self._process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                detail = (workdir / "prometheus.log").read_text(errors="replace")[-800:]
                self.stop()
                raise PrometheusError(f"prometheus exited with {code}: {detail}")
            if self.ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise PrometheusError(f"prometheus did not become ready on port {self.port}")

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

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
