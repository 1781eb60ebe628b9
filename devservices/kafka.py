"""A real single-node Apache Kafka broker (KRaft, combined broker+controller) for tests and local runs.

The broker is assembled from Maven Central: ``org.apache.kafka:kafka_2.13`` with its runtime
dependencies plus the reload4j logging backend, copied by ``mvn dependency:copy-dependencies`` into
``$PAYSENTRY_KAFKA_HOME/libs`` (default ``<repo>/.cache/kafka-3.9.1/libs``). Once the jars are there,
nothing is downloaded again. It needs ``java`` (17+) and, for the first fetch only, ``mvn``.

Python API::

    ensure_kafka_jars() -> Path                      # the libs dir, fetched on first use
    with start_kafka(workdir) as broker:             # a KafkaBroker on free loopback ports
        broker.bootstrap                             # "127.0.0.1:PORT"
    # or: broker = start_kafka(workdir); ...; broker.stop()

Command line (from the repo root; ``scripts/kafka.sh`` wraps it)::

    python -m devservices.kafka fetch     # only download the jars
    python -m devservices.kafka start     # start a background broker under .kafka/, print bootstrap
    python -m devservices.kafka status    # print the running broker's bootstrap
    python -m devservices.kafka stop      # stop it and delete its data

Only the standard library is used here, so the CLI runs with any Python 3.11 before the venv exists.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
SLF4J_RELOAD4J_VERSION = "1.7.36"
RELOAD4J_VERSION = "1.2.25"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_MARKER = "Kafka Server started"
HEAP_OPTS = ("-Xms128m", "-Xmx512m")
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
FETCH_TIMEOUT_S = 900.0

# Broker settings that do not depend on ports or paths. docker-compose.yml uses the same values
# (tests/test_compose.py checks that), so a developer's broker behaves like the test broker.
BROKER_SETTINGS: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "true",
    "delete.topic.enable": "true",
}

# Only for the throwaway test broker: small segments and no fsync pressure.
_TEST_ONLY_SETTINGS: dict[str, str] = {
    "log.segment.bytes": str(8 * 1024 * 1024),
    "log.retention.check.interval.ms": "60000",
    "log.cleaner.dedupe.buffer.size": str(2 * 1024 * 1024),
    "num.network.threads": "2",
    "num.io.threads": "2",
    "num.recovery.threads.per.data.dir": "1",
    "socket.send.buffer.bytes": "102400",
    "socket.receive.buffer.bytes": "102400",
}

_LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.authorizer.logger=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
"""

_TOOLS_LOG4J_PROPERTIES = """\
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


class KafkaHarnessError(RuntimeError):
    """The jars could not be fetched, or the broker did not start."""


# --------------------------------------------------------------------------------------------- jars


def kafka_home() -> Path:
    """Where the jars live: ``$PAYSENTRY_KAFKA_HOME`` or ``<repo>/.cache/kafka-<version>``."""
    override = os.environ.get("PAYSENTRY_KAFKA_HOME")
    if override:
        return Path(override).expanduser().resolve()
    return REPO_ROOT / ".cache" / f"kafka-{KAFKA_VERSION}"


def _pom() -> str:
    deps = [
        ("org.apache.kafka", f"kafka_{SCALA_VERSION}", KAFKA_VERSION),
        ("org.slf4j", "slf4j-reload4j", SLF4J_RELOAD4J_VERSION),
        ("ch.qos.reload4j", "reload4j", RELOAD4J_VERSION),
    ]
    dep_xml = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in deps
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by devservices/kafka.py to fetch the Kafka broker's jars; safe to delete. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.paysentry</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>{KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
{dep_xml}
  </dependencies>
</project>
"""


def _jars_complete(libs: Path) -> bool:
    return (libs / ".complete").is_file() and (libs / f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar").is_file()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_kafka_jars() -> Path:
    """Return the directory holding the broker's jars, fetching them with Maven on first use."""
    home = kafka_home()
    libs = home / "libs"
    if _jars_complete(libs):
        return libs
    with _file_lock(home / ".fetch.lock"):
        if _jars_complete(libs):  # another process fetched them while we waited
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaHarnessError("mvn not found: it is needed once to fetch the Kafka jars")
        (home / "pom.xml").write_text(_pom())
        staging = home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(home / "pom.xml"),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        try:
            proc = subprocess.run(cmd, cwd=home, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise KafkaHarnessError(f"fetching the Kafka jars timed out after {FETCH_TIMEOUT_S:.0f}s") from exc
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
            raise KafkaHarnessError(f"mvn failed to fetch the Kafka jars (exit {proc.returncode}):\n{tail}")
        (staging / ".complete").write_text(f"kafka_{SCALA_VERSION}:{KAFKA_VERSION}\n")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
    return libs


# ------------------------------------------------------------------------------------------- broker


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaHarnessError("java not found (Kafka needs Java 17+)")
    return java


def _free_ports(count: int) -> list[int]:
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def random_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (22 chars)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cid.startswith("-"):  # like Kafka's Uuid.randomUuid: a leading '-' confuses CLIs
            return cid


def server_properties(broker_port: int, controller_port: int, log_dir: Path) -> dict[str, str]:
    props = dict(BROKER_SETTINGS)
    props.update(_TEST_ONLY_SETTINGS)
    props.update(
        {
            "listeners": f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
            "controller.quorum.voters": f"{BROKER_SETTINGS['node.id']}@127.0.0.1:{controller_port}",
            "log.dirs": str(log_dir),
        }
    )
    return props


def _write_properties(path: Path, props: Mapping[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))


def _set_parent_death_signal() -> None:
    """Runs in the child before exec: have Linux SIGTERM the broker if its parent dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _failure_report(path: Path) -> str:
    """The broker log's first ERROR/FATAL lines (the cause usually sits there) and its last lines."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    errors = [line for line in lines if " ERROR " in line or " FATAL " in line or "Exception:" in line][:10]
    parts = []
    if errors:
        parts.append("first errors:\n" + "\n".join(errors))
    parts.append("last log lines:\n" + ("\n".join(lines[-25:]) or "(empty)"))
    return "\n".join(parts)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


@dataclass
class KafkaBroker:
    """A running broker. ``stop()`` is idempotent; the object is also a context manager."""

    bootstrap: str
    pid: int
    data_dir: Path
    log_path: Path
    cluster_id: str
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __enter__(self) -> KafkaBroker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return _pid_alive(self.pid)

    def log_tail(self, lines: int = 40) -> str:
        return _log_tail(self.log_path, lines)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; then delete the data dir."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            if not self._wait(timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self._wait(10.0)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _wait(self, timeout: float) -> bool:
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(self.pid):
                return True
            time.sleep(0.1)
        return False


class _PortTaken(KafkaHarnessError):
    """Another process bound one of the picked ports before the broker did."""


def start_kafka(workdir: Path, *, timeout: float = START_TIMEOUT_S, die_with_parent: bool = True) -> KafkaBroker:
    """Start a broker with its data in a fresh temp dir under ``workdir``; return once it is ready.

    ``die_with_parent`` asks Linux to stop the broker when the calling process (more precisely the
    calling thread) exits, so a crashed test run leaves no stray JVM behind.
    """
    for attempt in range(3):
        try:
            return _start_once(workdir, timeout=timeout, die_with_parent=die_with_parent)
        except _PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start_once(workdir: Path, *, timeout: float, die_with_parent: bool) -> KafkaBroker:
    libs = ensure_kafka_jars()
    java = _java()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="kafka-", dir=workdir))
    log_path = data_dir / "server.log"
    try:
        broker_port, controller_port = _free_ports(2)
        props_path = data_dir / "server.properties"
        _write_properties(props_path, server_properties(broker_port, controller_port, data_dir / "data"))
        (data_dir / "log4j.properties").write_text(_LOG4J_PROPERTIES)
        (data_dir / "tools-log4j.properties").write_text(_TOOLS_LOG4J_PROPERTIES)
        classpath = f"{libs}/*"
        jvm_common = [
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={data_dir / 'logs'}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
        ]

        cluster_id = random_cluster_id()
        fmt = subprocess.run(
            [
                java,
                "-Xmx256m",
                *jvm_common,
                f"-Dlog4j.configuration=file:{data_dir / 'tools-log4j.properties'}",
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(props_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if fmt.returncode != 0:
            raise KafkaHarnessError(f"kafka storage format failed (exit {fmt.returncode}):\n{fmt.stdout}{fmt.stderr}")

        with log_path.open("wb") as log_fh:
            proc = subprocess.Popen(
                [
                    java,
                    *HEAP_OPTS,
                    *jvm_common,
                    f"-Dlog4j.configuration=file:{data_dir / 'log4j.properties'}",
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(props_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                cwd=data_dir,
                start_new_session=True,
                preexec_fn=_set_parent_death_signal if die_with_parent else None,
            )
        broker = KafkaBroker(
            bootstrap=f"127.0.0.1:{broker_port}",
            pid=proc.pid,
            data_dir=data_dir,
            log_path=log_path,
            cluster_id=cluster_id,
            _proc=proc,
        )
        try:
            _wait_ready(broker, proc, timeout)
        except Exception as exc:
            report = _failure_report(log_path)
            broker.stop(timeout=10.0)
            if "Address already in use" in report:
                raise _PortTaken(report) from None
            raise KafkaHarnessError(f"Kafka broker did not start ({exc}):\n{report}") from None
        except BaseException:  # e.g. Ctrl-C while waiting
            broker.stop(timeout=10.0)
            raise
        return broker
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise


def _wait_ready(broker: KafkaBroker, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pos = 0
    carry = b""
    marker = READY_MARKER.encode()
    while True:
        with broker.log_path.open("rb") as fh:
            fh.seek(pos)
            chunk = fh.read()
        if chunk:
            pos += len(chunk)
            buf = carry + chunk
            if marker in buf:
                break
            carry = buf[-len(marker) :]
        if proc.poll() is not None:
            raise KafkaHarnessError(f"Kafka exited with code {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise KafkaHarnessError(f"Kafka not ready after {timeout:g}s")
        time.sleep(0.1)
    # The log line comes once the broker is up; make sure the listener accepts connections too.
    host, port = broker.bootstrap.rsplit(":", 1)
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# ---------------------------------------------------------------------------------------------- CLI

_STATE_DIR = REPO_ROOT / ".kafka"
_STATE_FILE = _STATE_DIR / "broker.json"


def _read_state() -> dict[str, object] | None:
    try:
        state: dict[str, object] = json.loads(_STATE_FILE.read_text())
    except (OSError, ValueError):
        return None
    return state


def _state_broker(state: Mapping[str, object]) -> KafkaBroker:
    return KafkaBroker(
        bootstrap=str(state["bootstrap"]),
        pid=int(str(state["pid"])),
        data_dir=Path(str(state["data_dir"])),
        log_path=Path(str(state["log_path"])),
        cluster_id=str(state["cluster_id"]),
    )


def _is_our_broker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and _pid_alive(pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devservices.kafka", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["fetch", "start", "status", "stop"])
    args = parser.parse_args(argv)

    if args.command == "fetch":
        t0 = time.monotonic()
        libs = ensure_kafka_jars()
        print(f"kafka {KAFKA_VERSION} jars: {libs} ({time.monotonic() - t0:.1f}s)")
        return 0

    state = _read_state()
    running = state is not None and _is_our_broker(int(str(state["pid"])))

    if args.command == "status":
        if state is not None and running:
            print(f"running: bootstrap={state['bootstrap']} pid={state['pid']}")
            return 0
        print("not running")
        return 1

    if args.command == "start":
        if state is not None and running:
            print(f"already running: bootstrap={state['bootstrap']} pid={state['pid']}")
            return 0
        t0 = time.monotonic()
        broker = start_kafka(_STATE_DIR, die_with_parent=False)
        _STATE_FILE.write_text(
            json.dumps(
                {
                    "bootstrap": broker.bootstrap,
                    "pid": broker.pid,
                    "data_dir": str(broker.data_dir),
                    "log_path": str(broker.log_path),
                    "cluster_id": broker.cluster_id,
                },
                indent=2,
            )
        )
        print(f"started in {time.monotonic() - t0:.1f}s: bootstrap={broker.bootstrap} pid={broker.pid}")
        print(f"log: {broker.log_path}")
        return 0

    # stop
    if state is None:
        print("not running")
        return 0
    broker = _state_broker(state)
    if running:
        broker.stop()
        print(f"stopped pid={broker.pid}")
    else:
        shutil.rmtree(broker.data_dir, ignore_errors=True)
        print("not running (removed stale state)")
    _STATE_FILE.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
