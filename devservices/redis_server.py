"""A real `redis-server` on a free loopback port, in a temporary directory, without persistence.

Used by the fixtures in `redis_fixtures.py`; usable on its own too:

    with RedisServer() as server:
        url = server.url  # redis://127.0.0.1:PORT/0
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REDIS_SERVER_BINARIES = ("redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server")


def find_redis_server() -> str | None:
    for candidate in REDIS_SERVER_BINARIES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServerError(RuntimeError):
    pass


class RedisServer:
    """One redis-server process. `start()` waits until it answers PING; `stop()` ends it."""

    def __init__(self, binary: str | None = None, port: int | None = None, startup_timeout: float = 10.0):
        self.binary = binary or find_redis_server()
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        if self.binary is None:
            raise RedisServerError("redis-server is not installed (apt-get install -y redis-server)")
        self._tmpdir = tempfile.TemporaryDirectory(prefix="paysentry-redis-")
        workdir = Path(self._tmpdir.name)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(workdir),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--logfile", str(workdir / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                log = workdir / "redis.log"
                detail = log.read_text(errors="replace") if log.exists() else err
                raise RedisServerError(f"redis-server exited with {self._process.returncode}: {detail[-500:]}")
            if self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise RedisServerError(f"redis-server did not answer PING on port {self.port}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
            if self._process.stderr:
                self._process.stderr.close()
            self._process = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
