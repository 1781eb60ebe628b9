"""Hot reload: a good change goes live, a bad one is refused while the old rules keep running, and every
load is in the audit log."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import orjson
import pytest

from rules.reload import RulesHolder
from rules.source import RulesLoadError
from tests.rules.helpers import context, fired, one_rule, write


def audit(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_good_change_is_applied_and_audited(rules_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    holder = RulesHolder(rules_dir, audit_log=log)
    first = holder.current
    assert fired(holder, context({"amount": 150})) == ["r"]
    assert holder.maybe_reload() is False  # nothing changed

    write(rules_dir / "a.rules.yaml", one_rule("amount > 200"))
    (rules_dir / "b.rules.yaml").write_text(one_rule("amount > 1").replace("id: r", "id: s"), encoding="utf-8")
    assert holder.maybe_reload() is True
    assert holder.version != first.version
    assert fired(holder, context({"amount": 150})) == ["s"]

    records = audit(log)
    assert [r["outcome"] for r in records] == ["loaded", "loaded"]
    assert records[0]["trigger"] == "startup" and records[0]["added"] == ["r"]
    last = records[1]
    assert last["trigger"] == "watch"
    assert (last["version"], last["previous_version"]) == (holder.version, first.version)
    assert (last["added"], last["removed"], last["changed"]) == (["s"], [], ["r"])
    assert last["files_changed"] == ["a.rules.yaml", "b.rules.yaml"]
    assert set(last["files"]) == {"a.rules.yaml", "b.rules.yaml"}
    assert "time" in last


def test_bad_change_is_refused_loudly_and_the_old_rules_keep_running(
    rules_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "audit.jsonl"
    holder = RulesHolder(rules_dir, audit_log=log)
    good = holder.version
    write(rules_dir / "a.rules.yaml", one_rule("amount_ratio > 100"))
    with caplog.at_level(logging.ERROR, logger="paysentry.rules.reload"):
        assert holder.maybe_reload() is False
    assert holder.version == good
    assert fired(holder, context({"amount": 150})) == ["r"]  # still the old rule
    assert holder.refused == 1
    assert [str(e).split(": ", 1)[1] for e in holder.last_errors] == [
        "unknown feature 'amount_ratio' — did you mean 'amount_ratio_median_30d'?"
    ]
    assert "REFUSED rules change" in caplog.text and "unknown feature 'amount_ratio'" in caplog.text
    refused = audit(log)[-1]
    assert refused["outcome"] == "refused" and refused["version"] is None
    assert refused["previous_version"] == good
    assert refused["errors"][0].endswith("unknown feature 'amount_ratio' — did you mean 'amount_ratio_median_30d'?")
    assert holder.maybe_reload() is False  # the same bad files are not retried in a loop
    assert len(audit(log)) == 2

    write(rules_dir / "a.rules.yaml", one_rule("amount > 120"))  # fixed: goes live
    assert holder.maybe_reload() is True
    assert holder.last_errors == []


def test_reload_now_is_the_hook_for_a_redis_signal(rules_dir: Path, tmp_path: Path) -> None:
    seen = []
    holder = RulesHolder(rules_dir, audit_log=tmp_path / "audit.jsonl", on_change=seen.append)
    assert holder.reload_now() is False  # same content: no switch, no audit noise
    (rules_dir / "a.rules.yaml").write_text(one_rule("amount > 300"), encoding="utf-8")
    assert holder.reload_now(trigger="redis") is True
    assert seen == [holder.current]
    assert audit(tmp_path / "audit.jsonl")[-1]["trigger"] == "redis"


def test_the_watcher_thread_picks_up_changes(rules_dir: Path) -> None:
    with RulesHolder(rules_dir, poll_interval=0.05) as holder:
        first = holder.version
        write(rules_dir / "a.rules.yaml", one_rule("amount > 999"))
        deadline = time.monotonic() + 5
        while holder.version == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert holder.version != first


def test_an_invalid_ruleset_at_startup_is_an_error(rules_dir: Path, tmp_path: Path) -> None:
    write(rules_dir / "a.rules.yaml", one_rule("amount >"))
    with pytest.raises(RulesLoadError):
        RulesHolder(rules_dir, audit_log=tmp_path / "audit.jsonl")
    assert audit(tmp_path / "audit.jsonl")[0]["outcome"] == "refused"
