"""A running worker switches rules without a restart: on the Redis reload signal it loads a good
change, refuses a bad one (keeping the last good rules), and records both in its audit log."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import redis

from rules.loader import DEFAULT_RULES_DIR
from rules.signal import publish_reload
from tests.stream.conftest import StreamRig

pytestmark = pytest.mark.kafka


def _eventually(check: Callable[[], bool], timeout: float = 60.0, poke: Callable[[], object] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if poke is not None:
            poke()
        if check():
            return True
        time.sleep(0.5)
    return check()


def test_worker_reloads_rules_on_the_signal(stream_rig: StreamRig, redis_clean_url: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules)
    data = tmp_path / "worker-data"
    worker = stream_rig.worker("w", PAYSENTRY_RULES_PATH=str(rules), PAYSENTRY_REDIS_URL=redis_clean_url,
                               PAYSENTRY_DATA_DIR=str(data))  # fmt: skip
    audit = data / "rules-audit.jsonl"

    def records() -> list[dict]:
        return [orjson.loads(line) for line in audit.read_bytes().splitlines()] if audit.exists() else []

    assert _eventually(lambda: [r["outcome"] for r in records()] == ["loaded"]), worker.log()[-2000:]
    client = redis.Redis.from_url(redis_clean_url)
    rulebook = rules / "payments.rules.yaml"
    rulebook.write_text(rulebook.read_text().replace("duplicate_invoice_days <= 45", "duplicate_invoice_days <= 30"))
    assert _eventually(lambda: len(records()) >= 2, poke=lambda: publish_reload(client, "test"))
    changed = records()[1]
    assert changed["outcome"] == "loaded" and changed["changed"] == ["duplicate_payment"]

    rulebook.write_text(rulebook.read_text().replace("severity: high", "severity: severe", 1))
    assert _eventually(lambda: len(records()) >= 3, poke=lambda: publish_reload(client, "bad"))
    refused = records()[2]
    assert refused["outcome"] == "refused" and refused["version"] is None
    assert "REFUSED rules change" in worker.log()
    stream_rig.check_alive()
    worker.stop()
