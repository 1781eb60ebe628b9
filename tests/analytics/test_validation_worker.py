"""The data validation job in real workers: of two `paysentry worker` processes in one group, only the
leader runs it, and it reads the inbound topics through the deployment's own settings."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from paysentry.simulate import SimulationConfig, write_simulation
from tests.stream.conftest import StreamRig

RUN_LINE = re.compile(r"data validation of .*: (\d+) records read")


@pytest.mark.kafka
def test_only_the_leader_runs_the_job(stream_rig: StreamRig, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_simulation(SimulationConfig(days=2, seed=5), events, tmp_path / "labels.jsonl")
    produced = stream_rig.produce(events)
    job = {"PAYSENTRY_VALIDATION_INTERVAL": "15"}
    workers = [stream_rig.worker("w1", **job), stream_rig.worker("w2", **job)]
    deadline = time.monotonic() + 150
    runs: dict[str, list[int]] = {}
    # both workers' timers fire every 15 s; wait for two periods' runs so each worker had its chance
    while time.monotonic() < deadline:
        stream_rig.check_alive()
        runs = {w.name: [int(n) for n in RUN_LINE.findall(w.log())] for w in workers}
        if sum(len(found) for found in runs.values()) >= 2:
            break
        time.sleep(1)
    stream_rig.stop_all()
    ran = {name: found for name, found in runs.items() if found}
    assert len(ran) == 1, runs
    (counts,) = ran.values()
    # the simulator's vendor master and labels are on other topics: only ERP and platform events count
    assert all(0 < n <= produced for n in counts), (counts, produced)
    assert "data validation failed" not in "".join(w.log() for w in workers)
