"""What the loopback servers that run as a child process share (PostgreSQL, Redis, Prometheus): a free
loopback port, a temporary directory of their own, start and wait until the server answers, stop and
clean up.

A subclass says how to tell the binary is there (`_check_installed`), prepares its directory and gives
the command line (`_command`), and says when the server answers (`ready`); the process's output goes
to `log_name` in its directory, whose tail a failed start quotes.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, ClassVar, Self


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(candidates: Iterable[str]) -> str | None:
    """The first of `candidates` (names on PATH or absolute paths) that is an executable."""
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    return None


class ServiceError(RuntimeError):
    """A loopback server could not be started."""


class LoopbackServer(ABC):
    """One server process. `start()` waits until `ready()`; `stop()` ends it and removes its directory."""

    name: ClassVar[str]  # how messages name the server
    log_name: ClassVar[str]
    tmp_prefix: ClassVar[str]
    error: ClassVar[type[ServiceError]] = ServiceError
    not_ready: ClassVar[str] = "did not become ready"  # what a start that timed out says, before "on port N"
    poll_seconds: ClassVar[float] = 0.05
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    stop_seconds: ClassVar[float] = 10.0

    def __init__(self, port: int | None, startup_timeout: float) -> None:
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._log: IO[bytes] | None = None

    # -- what a server says about itself -------------------------------------------------------------
    @abstractmethod
    def _check_installed(self) -> None:
        """Raise `error` saying how to install the server when its binary is missing."""

    @abstractmethod
    def _command(self, workdir: Path) -> list[str]:
        """Prepare `workdir` (configuration, data folder) and give the command line that runs the server."""

    def _popen_options(self) -> dict[str, Any]:
        """Further subprocess.Popen arguments (e.g. the account to run as)."""
        return {}

    @abstractmethod
    def ready(self) -> bool:
        """True once the server answers."""

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> Self:
        self._check_installed()
        self._tmpdir = tempfile.TemporaryDirectory(prefix=self.tmp_prefix)
        workdir = Path(self._tmpdir.name)
        try:
            command = self._command(workdir)
            self._log = (workdir / self.log_name).open("wb")
            self._process = subprocess.Popen(
                command, stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir, **self._popen_options()
            )
            self._wait_until_ready(self._process, workdir / self.log_name)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, process: subprocess.Popen[bytes], log: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                detail = log.read_text(errors="replace")[-800:] if log.exists() else ""
                raise self.error(f"{self.name} exited with {code}: {detail}")
            if self.ready():
                return
            time.sleep(self.poll_seconds)
        raise self.error(f"{self.name} {self.not_ready} on port {self.port}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(self.stop_signal)
            try:
                self._process.wait(timeout=self.stop_seconds)
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
