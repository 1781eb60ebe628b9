"""Fixtures for the live-stream tests: `paysentry worker` subprocesses on the test broker (so that a
SIGKILL is a real one), a simulated labelled stream and its replay, readers for the output topics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from paysentry.cli import run_replay
from paysentry.simulate import SimulationConfig, write_simulation
from stream.cli import _produce
from stream.settings import StreamSettings
from stream.sinks import read_topic

REPO = Path(__file__).resolve().parents[2]
HASH_KEY = "stream-tests-key"
MODEL_KEY = "stream-tests-model-signing-key-32-bytes"


@dataclass
class Worker:
    """One `paysentry worker` process."""

    name: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    module: str | None = None  # run `python -m module` instead of `paysentry worker`

    def start(self) -> Worker:
        log = self.log_path.open("ab")
        command = ["-m", self.module] if self.module else ["-c", "from paysentry.cli import app; app()", "worker",
                                                           "--loglevel", "info"]  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, *command],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop (SIGTERM: Faust leaves the group and commits); SIGKILL if it hangs."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_exit(self, timeout: float) -> int | None:
        assert self.proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.proc.wait(timeout)
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class StreamRig:
    """Settings for one test's topics and workers, and the workers it started."""

    settings: StreamSettings
    env: dict[str, str]
    tmp: Path
    workers: list[Worker] = field(default_factory=list)

    def worker(self, name: str, module: str | None = None, **env: str) -> Worker:
        worker = Worker(name, {**self.env, **env}, self.tmp / f"{name}.log", module=module)
        self.workers.append(worker)
        return worker.start()

    def produce(self, path: Path, rate: float = 0.0) -> int:
        return asyncio.run(_produce(self.settings, [line for line in path.read_bytes().splitlines() if line.strip()],
                                    rate, quiet=True))  # fmt: skip

    def read(self, topic: str, expect: int, timeout: float = 120.0, settle: float = 3.0) -> list[dict[str, Any]]:
        """Records of an output topic: wait until `expect` arrived, then `settle` seconds for extras."""
        return asyncio.run(self._read(topic, expect, timeout, settle))

    async def _read(self, topic: str, expect: int, timeout: float, settle: float) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout

        async def collect() -> None:
            async for message in read_topic(self.settings, topic, idle_timeout=None):
                records.append(orjson.loads(message.value))

        task = asyncio.create_task(collect())
        try:
            while len(records) < expect and time.monotonic() < deadline:
                self.check_alive()
                await asyncio.sleep(0.25)
            await asyncio.sleep(settle)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return records

    def wait_for(self, topic: str, at_least: int, timeout: float = 90.0) -> None:
        """Block until `topic` holds at least `at_least` records."""
        self.read(topic, at_least, timeout=timeout, settle=0.0)

    def check_alive(self) -> None:
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() not in (None, -signal.SIGKILL, -signal.SIGTERM, 0):
                raise AssertionError(f"worker {worker.name} died ({worker.proc.returncode}):\n{worker.log()[-3000:]}")

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()


@pytest.fixture
def stream_rig(kafka_bootstrap: str, kafka_topic_prefix: str, tmp_path: Path) -> Iterator[StreamRig]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PAYSENTRY_")},
        "PAYSENTRY_KAFKA_BROKERS": kafka_bootstrap,
        "PAYSENTRY_TOPIC_PREFIX": kafka_topic_prefix,
        "PAYSENTRY_APP_ID": "paysentry",
        "PAYSENTRY_ACCOUNT_HASH_KEY": HASH_KEY,
        "PAYSENTRY_MODEL_SIGNING_KEY": MODEL_KEY,
        "PAYSENTRY_PARTITIONS": "4",
        "PAYSENTRY_STORE": "memory",
        "PAYSENTRY_DATA_DIR": str(tmp_path / "state"),
        "PAYSENTRY_SESSION_TIMEOUT": "6",
        "PAYSENTRY_CHECKPOINT_EVENTS": "200",
        "PAYSENTRY_SHARD_PARTITIONS": "CN01=0,US01=1,DE01=2,_=3",  # three companies on three partitions
        "PAYSENTRY_ALERTS_ENABLED": "false",  # notifications have their own test (test_alerts_agent.py)
        "PYTHONUNBUFFERED": "1",
    }
    settings = StreamSettings(
        kafka_brokers=kafka_bootstrap, topic_prefix=kafka_topic_prefix, partitions=4, account_hash_key=HASH_KEY,
    )  # fmt: skip
    rig = StreamRig(settings, env, tmp_path)
    try:
        yield rig
    finally:
        for worker in rig.workers:
            worker.kill()


@dataclass(frozen=True)
class Simulated:
    """A simulated labelled stream (events and labels in one file, in event-time order) and its replay."""

    path: Path
    decisions: list[dict[str, Any]]
    rejected: list[dict[str, Any]]


def merge_by_time(sources: list[Path], out: Path) -> Path:
    rows = [line for path in sources for line in path.read_bytes().splitlines() if line.strip()]
    rows.sort(key=lambda line: datetime.fromisoformat(orjson.loads(line)["event_time"]))
    out.write_bytes(b"".join(row + b"\n" for row in rows))
    return out


def replay_file(path: Path, workdir: Path) -> Simulated:
    decisions, rejected, _, _ = run_replay(
        path, workdir / "replay.jsonl", workdir / "replay.rejected", None, quiet=True
    )
    return Simulated(path, [d.model_dump(mode="json") for d in decisions],
                     [orjson.loads(r.to_json()) for r in rejected])  # fmt: skip


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Simulated:
    workdir = tmp_path_factory.mktemp("simulated")
    events, labels = workdir / "events.jsonl", workdir / "labels.jsonl"
    write_simulation(SimulationConfig(days=10, seed=7), events, labels)
    return replay_file(merge_by_time([events, labels], workdir / "stream.jsonl"), workdir)


def comparable(decision: dict[str, Any]) -> tuple[Any, ...]:
    """What the stream must decide exactly as replay does (scores depend on each worker's own model)."""
    ids = lambda hits: tuple(sorted(h["rule_id"] for h in hits))  # noqa: E731
    return (decision["action"], decision.get("severity"), ids(decision["rule_hits"]), ids(decision["shadow_hits"]))


def by_event(decisions: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {d["event_id"]: comparable(d) for d in decisions}


def assert_same_decisions(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    ids = [d["event_id"] for d in got]
    duplicated = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    want, have = by_event(expected), by_event(got)
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    differ = [(k, want[k], have[k]) for k in want if k in have and want[k] != have[k]]
    assert not duplicated, f"decided twice: {duplicated[:10]}"
    assert not missing, f"{len(missing)} decisions missing: {missing[:10]}"
    assert not extra, f"{len(extra)} decisions replay does not make: {extra[:10]}"
    assert not differ, f"{len(differ)} decisions differ from replay: {differ[:5]}"


Check = Callable[[], None]
