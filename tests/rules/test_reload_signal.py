"""The Redis reload signal: one message and every worker switches to the new rules together; a bad
change is refused by every worker, which keeps running the old rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import redis

from rules.reload import RulesHolder
from rules.signal import ReloadListener, publish_reload
from tests.rules.helpers import context, fired, one_rule, write


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_every_worker_reloads_on_one_message(rules_dir: Path, redis_url: str, redis_key_prefix: str) -> None:
    channel = redis_key_prefix + "reload"
    workers = [RulesHolder(rules_dir), RulesHolder(rules_dir)]  # no polling: only the signal reloads
    client = redis.Redis.from_url(redis_url)
    listeners = [ReloadListener(redis.Redis.from_url(redis_url), h, channel).start() for h in workers]
    try:
        old_version = workers[0].version
        write(rules_dir / "a.rules.yaml", one_rule("amount > 500"))
        assert all(h.version == old_version for h in workers)  # nothing happens before the signal
        assert wait_for(lambda: publish_reload(client, "deploy", channel) == 2 or False, 5)
        assert wait_for(lambda: all(h.version != old_version for h in workers))
        assert all(fired(h, context({"amount": 150})) == [] for h in workers)

        write(rules_dir / "a.rules.yaml", "groups: [oops")
        good_version = workers[0].version
        publish_reload(client, "bad deploy", channel)
        assert wait_for(lambda: all(h.refused == 1 for h in workers))
        assert all(h.version == good_version for h in workers)
        assert all(fired(h, context({"amount": 600})) == ["r"] for h in workers)
    finally:
        for listener in listeners:
            listener.stop()


def test_cli_reload_reaches_a_listening_worker(rules_dir: Path, redis_url: str) -> None:
    from typer.testing import CliRunner

    from rules.cli import rules_app

    holder = RulesHolder(rules_dir)
    with ReloadListener(redis.Redis.from_url(redis_url), holder):
        write(rules_dir / "a.rules.yaml", one_rule("amount > 7"))
        result = None
        for _ in range(50):  # the subscription may take a moment to register
            result = CliRunner().invoke(rules_app, ["reload", "--reason", "t", "--redis-url", redis_url])
            if "sent to 1 worker" in result.output:
                break
            time.sleep(0.05)
        assert result is not None and "sent to 1 worker(s)" in result.output
        assert wait_for(lambda: fired(holder, context({"amount": 8})) == ["r"])


def test_the_listener_survives_a_ruleset_that_used_to_crash_it(
    rules_dir: Path, redis_url: str, redis_key_prefix: str, tmp_path: Path
) -> None:
    import json

    channel = redis_key_prefix + "reload-bad"
    audit = tmp_path / "audit.jsonl"
    holder = RulesHolder(rules_dir, audit_log=audit)
    client = redis.Redis.from_url(redis_url)
    with ReloadListener(redis.Redis.from_url(redis_url), holder, channel):
        assert wait_for(lambda: client.pubsub_numsub(channel)[0][1] == 1)
        # 200 nested parentheses (once a RecursionError that ended the listener thread), then a 5,000-digit
        # number and a python tag: each is refused and audited, and the listener keeps going.
        bad_files = [
            one_rule("(" * 200 + "amount > 1" + ")" * 200),
            one_rule("amount > " + "9" * 5000),
            one_rule("amount > 1").replace('"amount > 1"', '!!python/object/apply:os.system ["true"]'),
        ]
        for refused, text in enumerate(bad_files, start=1):
            write(rules_dir / "a.rules.yaml", text)
            publish_reload(client, "bad deploy", channel)
            assert wait_for(lambda n=refused: holder.refused == n)
        old_version = holder.version
        write(rules_dir / "a.rules.yaml", one_rule("amount > 500"))
        publish_reload(client, "fixed", channel)
        assert wait_for(lambda: holder.version != old_version)
        assert fired(holder, context({"amount": 600})) == ["r"]
    outcomes = [json.loads(line)["outcome"] for line in audit.read_text().splitlines()]
    assert outcomes == ["loaded", "refused", "refused", "refused", "loaded"]
