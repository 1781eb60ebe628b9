"""`paysentry replay` on careless and hostile input: a streaming sort identical to the in-memory one,
every input line accounted for, bad paths refused before anything is truncated, one failing event
dead-lettered while the run goes on, and a far-future event refused instead of moving the clock."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from paysentry import ordering
from paysentry.cli import ReplayError, app, run_replay
from paysentry.contract import RuleHit
from paysentry.core import Engine
from paysentry.ordering import time_ordered
from paysentry.ports import RuleContext
from paysentry.simulate import SimulationConfig, write_simulation
from tests.builders import at, raw, release, settle, vendor
from tests.test_core import Capturing

NOW = "2026-12-01T00:00:00Z"
NOW_EPOCH = 1_796_083_200.0


def _write(path: Path, events: list[dict | str]) -> Path:
    path.write_bytes(b"".join((e.encode() if isinstance(e, str) else orjson.dumps(e)) + b"\n" for e in events))
    return path


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few days of simulated payments, shuffled a little, with junk lines among them."""
    folder = tmp_path_factory.mktemp("sim")
    write_simulation(SimulationConfig(days=4, seed=3), folder / "events.jsonl", folder / "labels.jsonl")
    lines = (folder / "events.jsonl").read_bytes().splitlines()
    rng = random.Random(5)
    for _ in range(len(lines) // 5):  # out-of-order input: swap neighbours
        i = rng.randrange(len(lines) - 1)
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    lines[10:10] = [b"not json", b"", b'{"type": "payment.released"}', lines[20]]  # junk, blank, a redelivery
    path = folder / "shuffled.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_an_external_sort_decides_byte_for_byte_as_the_in_memory_sort(simulated: Path, tmp_path: Path) -> None:
    memory = run_replay(simulated, tmp_path / "a.jsonl", tmp_path / "a.rej", None, quiet=True, now=NOW_EPOCH)
    spilled = run_replay(simulated, tmp_path / "b.jsonl", tmp_path / "b.rej", None, quiet=True, now=NOW_EPOCH,
                         in_memory_lines=97, collect=False)  # fmt: skip
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.rej").read_bytes() == (tmp_path / "b.rej").read_bytes()
    assert memory.counts.total == spilled.counts.total == len(memory.decisions) > 100
    assert spilled.decisions == [] and spilled.rejected == []  # not collected: written only


def test_time_ordered_merges_many_runs_in_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ordering, "MAX_OPEN_RUNS", 3)
    rng = random.Random(1)
    items = [(rng.randrange(-50, 50), number, b'{"n": %d}\n' % number) for number in range(1, 400)]
    assert list(time_ordered(items, limit=7)) == sorted(items)


def test_every_input_line_is_decided_rejected_a_redelivery_or_state_only(tmp_path: Path) -> None:
    created = raw("payment.created", at(0), event_id="same-id", payment_id="P1", vendor_id="V1", amount="10.00",
                  currency="USD", company_code="US01")  # fmt: skip
    released = release("P1", at(1), event_id="same-id")  # reuses the created event's id: another event
    events: list[dict | str] = [
        vendor("V1", at(-1), "111122223333"), created, released, released, created,
        settle("P1", at(2)), raw("label.confirmed", at(3), payment_id="P1", verdict="legit"), "", "{broken",
    ]  # fmt: skip
    path = _write(tmp_path / "events.jsonl", events)
    run = run_replay(path, tmp_path / "out.jsonl", tmp_path / "out.rej", None, quiet=True, now=NOW_EPOCH)
    assert [d.event_type for d in run.decisions if d.payment_id == "P1"][:3] == [
        "payment.created", "payment.released", "psp.settled"]  # fmt: skip
    assert (run.events, run.decided, run.rejected_lines, run.redelivered, run.state_only) == (8, 3, 1, 2, 2)
    assert run.events == run.decided + run.rejected_lines + run.redelivered + run.state_only
    assert run.counts.total == run.decided + run.timer_decisions

    result = CliRunner().invoke(app, ["replay", str(path), "--out", str(tmp_path / "cli.jsonl"), "--now", NOW, "-q"])
    assert result.exit_code == 0, result.output
    assert "duplicate events (redeliveries)" in result.output and "state-only events" in result.output


class RaisingOn(Capturing):
    """A ruleset that fails on one payment, as a bug in the core would."""

    def __init__(self, payment_id: str) -> None:
        super().__init__()
        self.payment_id = payment_id

    def evaluate(self, ctx: RuleContext) -> tuple[list[RuleHit], list[RuleHit]]:
        if ctx.features.get("payment_id") == self.payment_id:
            raise ArithmeticError("boom on purpose")
        return super().evaluate(ctx)


def test_an_event_the_core_fails_on_is_dead_lettered_and_the_run_goes_on(tmp_path: Path) -> None:
    path = _write(tmp_path / "events.jsonl", [release("P1", at(0)), release("BAD", at(1)), release("P2", at(2))])
    run = run_replay(path, tmp_path / "out.jsonl", tmp_path / "out.rej", None, quiet=True, now=NOW_EPOCH,
                     engine=Engine(RaisingOn("BAD")))  # fmt: skip
    assert [d.payment_id for d in run.decisions] == ["P1", "P2"]
    (dead,) = [orjson.loads(line) for line in (tmp_path / "out.rej").read_bytes().splitlines()]
    assert dead["line"] == 2 and dead["reason"] == "engine error: ArithmeticError: boom on purpose"
    assert run.failed == 1 and run.events == run.decided + run.rejected_lines


def test_one_far_future_event_is_refused_and_changes_no_decision(simulated: Path, tmp_path: Path) -> None:
    clean = run_replay(simulated, tmp_path / "clean.jsonl", tmp_path / "clean.rej", None, quiet=True, now=NOW_EPOCH)
    first = orjson.loads(
        next(
            line
            for line in simulated.read_bytes().splitlines()
            if b"payment.released" in line and b"payment_id" in line
        )
    )
    future = settle(first["payment_id"], "2100-01-01T00:00:00Z", type_="psp.submitted", event_id="from-2100")
    poisoned = tmp_path / "poisoned.jsonl"
    poisoned.write_bytes(simulated.read_bytes() + orjson.dumps(future) + b"\n")
    result = CliRunner().invoke(
        app, ["replay", str(poisoned), "--out", str(tmp_path / "p.jsonl"), "--now", NOW, "-q"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.jsonl").read_bytes() == (tmp_path / "clean.jsonl").read_bytes()
    assert clean.counts.by_rule.get("unsettled_sla", 0) < 10
    refused = [orjson.loads(line) for line in (tmp_path / "p.jsonl.rejected").read_bytes().splitlines()]
    assert [r["event_id"] for r in refused if r["event_id"] == "from-2100"] == ["from-2100"]


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["replay", *args, "-q", "--now", NOW])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_output_paths_are_refused_in_one_line_before_anything_is_truncated(tmp_path: Path) -> None:
    events = _write(tmp_path / "events.jsonl", [release("P1", at(0)), release("P2", at(1))])
    before = events.read_bytes()
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"previous decisions\n")
    cases = {
        "the decisions path": ["--out", str(tmp_path)],
        "/proc/version": ["--out", "/proc/version", "--dead-letter", str(tmp_path / "r")],
        "no such file or directory": ["--out", str(out), "--rules", str(tmp_path / "missing-rules")],
        "is the input file": ["--out", str(events)],
        "is the decisions file": ["--out", str(out), "--dead-letter", str(out)],
    }
    for expected, args in cases.items():
        code, output = _cli(str(events), *args)
        assert code != 0 and expected in output, (args, output)
        assert len(output.strip().splitlines()) == 1, output
    assert events.read_bytes() == before and out.read_bytes() == b"previous decisions\n"
    link = tmp_path / "link.jsonl"
    link.symlink_to(events)
    code, output = _cli(str(events), "--out", str(link))
    assert code != 0 and "is the input file" in output and events.read_bytes() == before


def test_a_full_disk_is_one_line_and_a_missing_dead_letter_folder_is_created(tmp_path: Path) -> None:
    events = _write(tmp_path / "events.jsonl", [release(f"P{i}", at(i)) for i in range(200)])
    code, output = _cli(str(events), "--out", "/dev/full", "--dead-letter", str(tmp_path / "r.jsonl"))
    assert code != 0 and "No space left on device" in output and len(output.strip().splitlines()) == 1
    code, output = _cli(str(events), "--out", str(tmp_path / "o.jsonl"), "--dead-letter", str(tmp_path / "new/r"))
    assert code == 0 and (tmp_path / "new" / "r").exists()


def test_run_replay_refuses_with_a_replay_error(tmp_path: Path) -> None:
    events = _write(tmp_path / "events.jsonl", [release("P1", at(0))])
    with pytest.raises(ReplayError, match="is the input file"):
        run_replay(events, events, tmp_path / "rej", None, quiet=True)


def test_rules_reload_with_redis_down_is_one_line_without_the_url_password() -> None:
    result = CliRunner().invoke(app, ["rules", "reload", "--redis-url", "redis://:s3cret-pw@127.0.0.1:1/0"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "cannot send the reload signal through Redis" in result.output and "s3cret-pw" not in result.output


class RaisingOnTimers(Capturing):
    def evaluate(self, ctx: RuleContext) -> tuple[list[RuleHit], list[RuleHit]]:
        if ctx.event_type == "sla.unsettled":
            raise LookupError("timer boom")
        return super().evaluate(ctx)


def test_a_timer_the_core_fails_on_is_dead_lettered_and_the_run_goes_on(tmp_path: Path) -> None:
    path = _write(tmp_path / "events.jsonl", [release("P1", at(0)), release("P2", at(days=3))])
    run = run_replay(path, tmp_path / "out.jsonl", tmp_path / "out.rej", None, quiet=True, now=NOW_EPOCH,
                     engine=Engine(RaisingOnTimers()))  # fmt: skip
    assert [d.payment_id for d in run.decisions] == ["P1", "P2"] and run.timer_failures == 1
    (dead,) = [orjson.loads(line) for line in (tmp_path / "out.rej").read_bytes().splitlines()]
    assert dead["event_id"] == "timer:P1" and dead["reason"] == "timer failed: LookupError: timer boom"


def test_the_demo_replays_its_simulation_as_of_the_simulation_not_today(tmp_path: Path) -> None:
    # The simulator's dates are fixed (from 2026-10-01); 70 days run past any wall clock before
    # 2027, and the plausibility window would refuse them if the demo replayed "as of now".
    result = CliRunner().invoke(app, ["demo", "--workdir", str(tmp_path), "--days", "70", "--no-desk"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "decisions.jsonl").stat().st_size > 0
    assert (tmp_path / "decisions.jsonl.rejected").read_bytes() == b""
