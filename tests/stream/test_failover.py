"""Losing nothing and deciding nothing twice when workers come, go, or die.

- Scale-out: two workers share the partitions; one leaves mid-stream, the other takes its partitions
  over with their state, and the decisions equal replay's: none missing, none duplicated.
- Crash: a worker is SIGKILLed at the worst moments of a checkpoint (injected with PAYSENTRY_FAULT:
  outputs on the broker but no state; half a checkpoint written; a checkpoint record without its
  entities) and twice more from outside at arbitrary instants; each time a new worker resumes, and in
  the end every decision is there exactly once.
"""

from __future__ import annotations

import random
import re
import signal
import time

import pytest

from tests.stream.conftest import Simulated, StreamRig, assert_same_decisions

pytestmark = pytest.mark.kafka


def _engine_partitions(log: str) -> set[int]:
    found: set[int] = set()
    for match in re.finditer(r"deciding for engine partitions \[([0-9, ]*)\]", log):
        found |= {int(p) for p in match.group(1).split(",") if p.strip()}
    return found


def _fetching_tuned(log: str) -> list[tuple[int, set[str]]]:
    """Per rebalance, the empty-fetch hold and the changelog partitions the worker's own Kafka client
    reported once the tables were restored."""
    found = []
    for line in re.finditer(
        r"fetching tuned in the client: empty fetches held (\d+) ms; changelog partitions paused: (.*)", log
    ):
        pairs = re.findall(r"(\S+-changelog)\[([0-9, ]*)\]", line.group(2))
        paused = {f"{topic}:{p.strip()}" for topic, parts in pairs for p in parts.split(",") if p.strip()}
        found.append((int(line.group(1)), paused))
    return found


def test_two_workers_share_the_work_and_one_takes_over(stream_rig: StreamRig, simulated: Simulated) -> None:
    stream_rig.produce(simulated.path)
    first = stream_rig.worker("w1", PAYSENTRY_CHECKPOINT_EVENTS="100", PAYSENTRY_CONSUMER_FETCH_WAIT_MS="70")
    second = stream_rig.worker("w2", PAYSENTRY_CHECKPOINT_EVENTS="100")
    stream_rig.wait_for("decisions", at_least=len(simulated.decisions) // 4)
    assert _engine_partitions(first.log()) and _engine_partitions(second.log()), "both workers had partitions"
    second.stop()
    assert second.proc is not None and second.proc.returncode == 0, second.log()[-3000:]
    decisions = stream_rig.read("decisions", expect=len(simulated.decisions))
    assert_same_decisions(decisions, simulated.decisions)
    assert _engine_partitions(first.log()) == {0, 1, 2, 3}
    # Once restored, no changelog partition is fetched again (records nobody takes stall all fetching),
    # taken-over ones included: the survivor's client paused all eight after its last rebalance, and
    # holds an empty fetch as long as the setting says (Faust's own 1,500 ms stopped decisions for 1 s).
    tables = {f"{stream_rig.settings.group_id}-{name}-changelog" for name in ("routes", "shard-state")}
    expected = (70, {f"{t}:{p}" for t in tables for p in range(4)})
    assert _fetching_tuned(first.log())[-1] == expected, first.log()[-3000:]
    stream_rig.stop_all()


@pytest.mark.parametrize("faults", [("emitted:2", "state:2", "redo:2")])
def test_sigkill_loses_nothing_and_decides_nothing_twice(
    stream_rig: StreamRig, simulated: Simulated, faults: tuple[str, ...]
) -> None:
    stream_rig.produce(simulated.path)
    for number, fault in enumerate(faults):
        crashing = stream_rig.worker(f"crash{number}", PAYSENTRY_FAULT=fault)
        assert crashing.wait_exit(120) == -signal.SIGKILL, f"{fault} did not fire:\n{crashing.log()[-3000:]}"
    total = len(simulated.decisions)
    for name, share in (("victim1", 0.4), ("victim2", 0.8)):  # killed from outside, at no chosen point
        victim = stream_rig.worker(name)
        stream_rig.wait_for("decisions", at_least=min(total - 1, int(total * share)))
        time.sleep(random.uniform(0.0, 1.0))
        victim.kill()
    stream_rig.worker("survivor")
    decisions = stream_rig.read("decisions", expect=total)
    assert_same_decisions(decisions, simulated.decisions)
    stream_rig.stop_all()
