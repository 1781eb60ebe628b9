"""A real PostgreSQL server on a free loopback port, in a temporary directory (Debian's `postgresql`
package: `initdb` and `postgres` from /usr/lib/postgresql/<version>/bin).

Used by the fixtures in `tests/harness/postgres_fixtures.py`; usable on its own too:

    with PostgresServer() as server:
        url = server.url  # postgresql+psycopg://paysentry@127.0.0.1:PORT/postgres
        server.create_database("scratch")

Authentication is `trust` on loopback only (the server listens on 127.0.0.1 and a socket in its own
temporary directory): it is a throw-away server for tests and development. PostgreSQL refuses to run
as root; started by root, the server runs as the `postgres` system account (or `nobody`), which owns
the temporary directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from devservices.process import LoopbackServer, ServiceError
from devservices.process import free_port as free_port  # tests take it from here

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "paysentry"


def find_pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder holding initdb and postgres, or one on PATH."""

    def version(path: str) -> int:
        part = Path(path).parent.name
        return int(part) if part.isdigit() else 0

    for candidate in sorted(glob.glob(PG_BIN_GLOB), key=version, reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServerError(ServiceError):
    pass


def _run_as() -> pwd.struct_passwd | None:
    """The account to run as when this process is root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresServerError("running as root and neither a 'postgres' nor a 'nobody' account exists")


class PostgresServer(LoopbackServer):
    """One postgres process. `start()` runs initdb and waits until the server accepts connections."""

    name = "postgres"
    log_name = "postgres.log"
    tmp_prefix = "paysentry-pg-"
    error = PostgresServerError
    not_ready = "did not accept connections"
    stop_signal = signal.SIGINT  # "fast" shutdown: does not wait for clients

    def __init__(self, bin_dir: Path | None = None, port: int | None = None, startup_timeout: float = 30.0):
        super().__init__(port, startup_timeout)
        self.bin_dir = bin_dir or find_pg_bin()
        self._account = _run_as()

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def _popen_options(self) -> dict[str, Any]:
        if self._account is None:
            return {}
        return {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}

    def _check_installed(self) -> None:
        if self.bin_dir is None:
            raise PostgresServerError("PostgreSQL is not installed (apt-get install -y postgresql)")

    def _command(self, root: Path) -> list[str]:
        assert self.bin_dir is not None  # _check_installed
        data = root / "data"
        if self._account is not None:
            os.chown(root, self._account.pw_uid, self._account.pw_gid)
        init = subprocess.run(
            [str(self.bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
             "--no-sync", "--no-instructions"],
            capture_output=True, cwd=root, **self._popen_options(),
        )  # fmt: skip
        if init.returncode != 0:
            raise PostgresServerError(f"initdb failed: {init.stderr.decode(errors='replace')[-800:]}")
        return [
            str(self.bin_dir / "postgres"), "-D", str(data),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={root}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=100",
        ]  # fmt: skip

    def ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self._dsn("postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def create_database(self, name: str) -> str:
        """Create database `name` (letters, digits, underscores) and return its SQLAlchemy URL."""
        import psycopg

        if not name.replace("_", "").isalnum():
            raise ValueError("a database name here is letters, digits and underscores")
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    with PostgresServer() as server:
        print(f"PostgreSQL on {server.url} (Ctrl-C stops it)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
