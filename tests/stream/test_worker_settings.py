"""A worker refuses missing or weak keys in one line, before it starts anything, without printing the
key; its web server listens on loopback unless told otherwise. (No broker needed.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from paysentry.core import Engine
from stream.app import create_app
from stream.settings import StreamSettings, settings_error

REPO = Path(__file__).resolve().parents[2]
STRONG = "a-model-signing-key-of-at-least-32-bytes"


def _worker(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PAYSENTRY_")}
    base |= {"PAYSENTRY_KAFKA_BROKERS": "127.0.0.1:1", "PAYSENTRY_DATA_DIR": str(tmp_path / "state"),
             "PAYSENTRY_ACCOUNT_HASH_KEY": "worker-settings-test-key"}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", "from paysentry.cli import app; app()", "worker"],
        cwd=REPO, env=base | env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PAYSENTRY_MODEL_SIGNING_KEY": "x"}, "PAYSENTRY_MODEL_SIGNING_KEY is too short (1 bytes)"),
        ({"PAYSENTRY_MODEL_SIGNING_KEY": "0123456789abcdef0123456789abcde"}, "too short (31 bytes)"),
        ({"PAYSENTRY_REDIS_URL": "redis://127.0.0.1:1/0"}, "PAYSENTRY_MODEL_SIGNING_KEY is not set"),
        ({"PAYSENTRY_REDIS_URL": "redis://127.0.0.1:1/0", "PAYSENTRY_MODEL_SIGNING_KEY": ""}, "is not set"),
        ({"PAYSENTRY_ACCOUNT_HASH_KEY": ""}, "PAYSENTRY_ACCOUNT_HASH_KEY must be set"),
    ],
)
def test_weak_or_missing_keys_stop_the_worker_in_one_line(tmp_path: Path, env: dict[str, str], message: str) -> None:
    done = _worker(tmp_path, **env)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert message in output
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1, output
    assert not (tmp_path / "state").exists(), "the worker started something before refusing"
    secret = env.get("PAYSENTRY_MODEL_SIGNING_KEY")
    if secret and len(secret) > 8:  # (a one-letter key is in every sentence)
        assert secret not in output


def test_settings_error_names_the_variable_not_the_value() -> None:
    with pytest.raises(ValueError) as refused:
        StreamSettings(model_signing_key="hunter2", partitions=0)
    line = settings_error(refused.value)
    assert "PAYSENTRY_MODEL_SIGNING_KEY is too short (7 bytes)" in line and "PAYSENTRY_PARTITIONS" in line
    assert "hunter2" not in line and "\n" not in line


def test_the_web_server_binds_loopback_unless_configured(tmp_path: Path) -> None:
    settings = StreamSettings(account_hash_key="k", web_port=6067, data_dir=tmp_path, model_signing_key=STRONG)
    assert create_app(settings, engine=Engine()).app.conf.web_bind == "127.0.0.1"
    wide = StreamSettings(account_hash_key="k", web_port=6067, web_bind="0.0.0.0", data_dir=tmp_path)
    assert create_app(wide, engine=Engine()).app.conf.web_bind == "0.0.0.0"


def test_the_consumer_fetch_size_reaches_faust(tmp_path: Path) -> None:
    default = StreamSettings(account_hash_key="k", data_dir=tmp_path)
    assert create_app(default, engine=Engine()).app.conf.consumer_max_fetch_size == 4 * 1024**2
    small = StreamSettings(account_hash_key="k", data_dir=tmp_path, consumer_fetch_bytes=256 * 1024)
    assert create_app(small, engine=Engine()).app.conf.consumer_max_fetch_size == 256 * 1024


def test_the_producer_batch_size_reaches_faust(tmp_path: Path) -> None:
    default = StreamSettings(account_hash_key="k", data_dir=tmp_path)
    assert create_app(default, engine=Engine()).app.conf.producer_max_batch_size == 512 * 1024
    small = StreamSettings(account_hash_key="k", data_dir=tmp_path, producer_batch_bytes=16 * 1024)
    assert create_app(small, engine=Engine()).app.conf.producer_max_batch_size == 16 * 1024
    with pytest.raises(ValidationError):  # one batch must fit in the broker's default message.max.bytes
        StreamSettings(account_hash_key="k", data_dir=tmp_path, producer_batch_bytes=2 * 1024**2)


def test_the_empty_fetch_hold_is_bounded(tmp_path: Path) -> None:
    # what the worker's client is set to is checked on a real broker (test_failover.py)
    assert StreamSettings(account_hash_key="k", data_dir=tmp_path).consumer_fetch_wait_ms == 100
    for refused in (0, 5, 1501):  # a busy loop of fetches, or longer than Faust's own 1,500 ms
        with pytest.raises(ValidationError, match="consumer_fetch_wait_ms"):
            StreamSettings(account_hash_key="k", data_dir=tmp_path, consumer_fetch_wait_ms=refused)
