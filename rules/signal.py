"""The reload signal: one message on Redis pub/sub makes every worker reload its rules together.

Each worker's `ReloadListener` subscribes to the channel and calls `RulesHolder.reload_now()`; the
holder checks the new files and refuses a bad ruleset as it would on a file change. `paysentry rules
reload` publishes the message (after, say, a deploy has written the new files on every machine).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from paysentry.pubsub import SignalListener
from rules.reload import RulesHolder

RELOAD_CHANNEL = "paysentry:rules:reload"
log = logging.getLogger("paysentry.rules.signal")


def publish_reload(client: Any, reason: str = "", channel: str = RELOAD_CHANNEL) -> int:
    """Ask every listening worker to reload; returns how many listeners received the message."""
    return int(client.publish(channel, orjson.dumps({"reason": reason, "at": time.time()})))


class ReloadListener(SignalListener):
    """A background thread that reloads `holder` whenever the reload message arrives."""

    def __init__(self, client: Any, holder: RulesHolder, channel: str = RELOAD_CHANNEL):
        self.holder = holder
        super().__init__(client, channel, lambda: holder.reload_now(trigger="redis"), "rules reload")
