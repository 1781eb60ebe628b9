"""A real `redis-server` on a free loopback port, in a temporary directory, without persistence.

Used by the fixtures in `redis_fixtures.py`; usable on its own too:

    with RedisServer() as server:
        url = server.url  # redis://127.0.0.1:PORT/0
"""

from __future__ import annotations

import socket
from pathlib import Path

from devservices.process import LoopbackServer, ServiceError, find_binary

REDIS_SERVER_BINARIES = ("redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server")


def find_redis_server() -> str | None:
    return find_binary(REDIS_SERVER_BINARIES)


class RedisServerError(ServiceError):
    pass


class RedisServer(LoopbackServer):
    """One redis-server process. `start()` waits until it answers PING; `stop()` ends it."""

    name = "redis-server"
    log_name = "redis.log"  # redis logs to its standard output when no --logfile is given
    tmp_prefix = "paysentry-redis-"
    error = RedisServerError
    not_ready = "did not answer PING"
    poll_seconds = 0.02
    stop_seconds = 5.0

    def __init__(self, binary: str | None = None, port: int | None = None, startup_timeout: float = 10.0):
        super().__init__(port, startup_timeout)
        self.binary = binary or find_redis_server()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _check_installed(self) -> None:
        if self.binary is None:
            raise RedisServerError("redis-server is not installed (apt-get install -y redis-server)")

    def _command(self, workdir: Path) -> list[str]:
        assert self.binary is not None  # _check_installed
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(workdir),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--daemonize", "no",
        ]  # fmt: skip

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def ready(self) -> bool:
        return self.ping()
