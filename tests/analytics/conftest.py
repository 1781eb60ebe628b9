"""Fixtures of the analytics tests: a small simulated stream (written once per session); the Prometheus
fixtures are registered for everyone in tests/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from paysentry.simulate import SimulationConfig, write_simulation
from tests.stream.conftest import simulated, stream_rig

__all__ = ["SimFiles", "sim_files", "simulated", "stream_rig"]


@dataclass(frozen=True)
class SimFiles:
    events: Path
    labels: Path
    config: SimulationConfig


@pytest.fixture(scope="session")
def sim_files(tmp_path_factory: pytest.TempPathFactory) -> SimFiles:
    """Fourteen simulated days (seed 11): events and labels as JSON Lines."""
    folder = tmp_path_factory.mktemp("analytics-sim")
    config = SimulationConfig(days=14, seed=11)
    events, labels = folder / "events.jsonl", folder / "labels.jsonl"
    write_simulation(config, events, labels)
    return SimFiles(events, labels, config)
