"""The reload signal: one message on Redis pub/sub makes every worker reload its rules together.

Each worker's `ReloadListener` subscribes to the channel and calls `RulesHolder.reload_now()`; the
holder checks the new files and refuses a bad ruleset as it would on a file change. `paysentry rules
reload` publishes the message (after, say, a deploy has written the new files on every machine).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson

from rules.reload import RulesHolder

RELOAD_CHANNEL = "paysentry:rules:reload"
log = logging.getLogger("paysentry.rules.signal")


def publish_reload(client: Any, reason: str = "", channel: str = RELOAD_CHANNEL) -> int:
    """Ask every listening worker to reload; returns how many listeners received the message."""
    return int(client.publish(channel, orjson.dumps({"reason": reason, "at": time.time()})))


class ReloadListener:
    """A background thread that reloads `holder` whenever the reload message arrives."""

    def __init__(self, client: Any, holder: RulesHolder, channel: str = RELOAD_CHANNEL):
        self.holder = holder
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paysentry-rules-reload", daemon=True)
        self.received = 0

    def start(self) -> ReloadListener:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.5)
            except Exception as exc:  # a Redis hiccup must not end reloads for good
                log.warning("rules reload listener: %s; retrying", exc)
                time.sleep(1.0)
                continue
            if message is None:
                continue
            self.received += 1
            log.info("rules reload requested through Redis")
            try:
                self.holder.reload_now(trigger="redis")
            except Exception:  # one bad reload must not end the listener: later messages still count
                log.exception("rules reload through Redis failed; still listening")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()

    def __enter__(self) -> ReloadListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
